"""Steady-state throughput of the relay pipeline, in process, on one core.

Each event goes decode -> normalise -> ledger -> route -> format -> deliver through
``Relay.handle`` (built with ``shared.wiring.build_relay`` / ``shared.config.load_settings``; no
HTTP front). Events are distinct (Argo workflow name, uid and cron label vary, so each is new and
none is folded as a repeat; ~20% are Cloud Monitoring incidents, which routing sends to two
channels). Variants, all measured in the same run on the same events:

- floor:              memory ledger + Slack sink on the console transport, writing to an in-memory
                      StringIO (pure CPU)
- render, memory:     memory ledger + Slack sink on the Web API transport, whose calls are skipped:
                      everything is rendered (and incident state kept), nothing is sent
- render, sqlite:     SQLite ledger (tmp file) + the same render-only Slack sink
- full:               SQLite ledger + Slack sink posting to a loopback fake Slack (slack_sdk, real HTTP)

The fake Slack runs in a separate process (on the other core when there is one), so its work is not
counted against the relay's core. Logs are at INFO (production level) into a discarding stream, so
their formatting cost is included. Peak memory: tracemalloc (a separate, slower pass) and the
process's max RSS.

    .venv/bin/python bench/throughput.py [--events 2000]
"""

from __future__ import annotations

import argparse
import gc
import io
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The bench decides every setting itself; nothing from the caller's shell leaks in.
for _name in list(os.environ):
    if _name.startswith(("RELAY_", "SLACK_", "GOOGLE_", "PUBSUB_", "FIRESTORE_", "K_SERVICE")):
        del os.environ[_name]

from shared import logs  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.envelope import decode, push_envelope  # noqa: E402
from shared.pipeline import Relay  # noqa: E402
from shared.wiring import build_relay  # noqa: E402

EXAMPLES = ROOT / "examples" / "events"
SLACK_TOKEN = "xoxb-bench"
TARGET_EVENTS_PER_S = 2000.0
TARGET_MIB = 100.0
WARMUP_EVENTS = 50
HEADERS = {"Content-Type": "application/json"}
MIB = 1024 * 1024


class Discard(io.StringIO):
    """An in-memory text stream that keeps nothing (so thousands of events do not pile up)."""

    def write(self, s: str) -> int:
        return len(s)


# -- events ----------------------------------------------------------------------------------------


def make_bodies(count: int, tag: str) -> list[bytes]:
    """``count`` push-envelope bodies of distinct events; every 5th is a Cloud Monitoring incident."""
    argo = json.loads((EXAMPLES / "argo_failed.json").read_text())
    monitoring = json.loads((EXAMPLES / "monitoring_open.json").read_text())
    bodies = []
    for i in range(count):
        if i % 5 == 4:
            payload = json.loads(json.dumps(monitoring))
            payload["incident"]["incident_id"] = f"0.bench-{tag}-{i:06d}"
            payload["incident"]["started_at"] = monitoring["incident"]["started_at"] + i
        else:
            payload = json.loads(json.dumps(argo))
            workflow = payload["workflow"]
            workflow["name"] = f"bench-{tag}-{i:06d}-x7k2p"
            workflow["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{tag}/{i}"))
            labels = json.loads(workflow["labels"])
            labels["workflows.argoproj.io/cron-workflow"] = f"bench-{tag}-{i:06d}"  # distinct fingerprint
            workflow["labels"] = json.dumps(labels)
        envelope = push_envelope(payload, message_id=f"{tag}-{i}", delivery_attempt=1)
        bodies.append(json.dumps(envelope).encode())
    return bodies


# -- relays ----------------------------------------------------------------------------------------


@contextmanager
def sends_skipped() -> Iterator[None]:
    """Slack Web API calls answer at once, without I/O: the sinks still render (and keep their
    incident state), only the transport's chat.postMessage / chat.update do nothing."""
    from shared.sinks.slack import WebApiTransport

    counter = itertools.count(1)

    def post(self: Any, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"channel": str(args.get("channel", "")), "ts": f"1767225600.{next(counter):06d}"}

    def update(self: Any, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"channel": str(args.get("channel", "")), "ts": str(args.get("ts", ""))}

    with (
        mock.patch.object(WebApiTransport, "post", post),
        mock.patch.object(WebApiTransport, "update", update),
    ):
        yield


def _settings(ledger: str, slack_api_url: str | None) -> Any:
    common: dict[str, Any] = {
        "relay_routes": None,
        "relay_ledger": ledger,
        "relay_dead_letter_topic": None,
        "google_cloud_project": None,
        "slack_webhook_url": None,
        "relay_log_level": "INFO",
    }
    if slack_api_url is None:
        return load_settings(slack_bot_token=None, **common)
    return load_settings(slack_bot_token=SLACK_TOKEN, slack_api_url=slack_api_url, **common)


def build_variant(name: str, scratch: Path, slack_api_url: str) -> Relay:
    ledger_path = scratch / f"ledger-{time.monotonic_ns()}.sqlite3"
    if name == "floor":
        return build_relay(_settings("memory", None), env={}, console=Discard())
    if name == "render, memory":
        return build_relay(_settings("memory", slack_api_url), env={})
    if name in ("render, sqlite", "full"):
        return build_relay(_settings(f"sqlite:///{ledger_path}", slack_api_url), env={})
    raise ValueError(name)


VARIANTS = ("floor", "render, memory", "render, sqlite", "full")


# -- measurement -----------------------------------------------------------------------------------


@dataclass
class Result:
    variant: str
    events: int
    seconds: float
    cpu_seconds: float
    outcomes: Counter[str]
    deliveries: int
    max_rss_mib: float
    tracemalloc_peak_mib: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def ms_per_event(self) -> float:
        return self.seconds * 1000 / self.events

    @property
    def cpu_ms_per_event(self) -> float:
        return self.cpu_seconds * 1000 / self.events


def handle_all(relay: Relay, bodies: list[bytes]) -> tuple[Counter[str], int]:
    outcomes: Counter[str] = Counter()
    deliveries = 0
    for body in bodies:
        outcome = relay.handle(decode(body, HEADERS))
        outcomes[outcome.summary] += 1
        deliveries += len(outcome.results)
    return outcomes, deliveries


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(name: str, relay: Relay, warmup: list[bytes], bodies: list[bytes]) -> Result:
    handle_all(relay, warmup)  # opens connections, loads lazily imported modules, fills caches
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    outcomes, deliveries = handle_all(relay, bodies)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Result(name, len(bodies), seconds, cpu, outcomes, deliveries, max_rss_mib())


def traced_peak(relay: Relay, warmup: list[bytes], bodies: list[bytes]) -> float:
    """tracemalloc peak (MiB) of allocations made while handling ``bodies`` (inputs excluded)."""
    handle_all(relay, warmup)
    gc.collect()
    tracemalloc.start()
    try:
        handle_all(relay, bodies)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


# -- the fake Slack, in its own process ------------------------------------------------------------

_SLACK_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.fakes.slack_server import FakeSlackServer
with FakeSlackServer(token=sys.argv[2]) as server:
    print(server.api_url, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    print(len(server.posts), flush=True)
"""


class FakeSlackProcess:
    """tests/fakes/slack_server.py's FakeSlackServer, served from a child process of ours."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.api_url = ""
        self.posts = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeSlackProcess:
        cpu = self.cpu
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SLACK_CHILD, str(ROOT), SLACK_TOKEN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,  # noqa: PLW1509
        )
        assert self._proc.stdout is not None
        self.api_url = self._proc.stdout.readline().strip()
        if not self.api_url.startswith("http"):
            self.__exit__()
            raise RuntimeError(f"fake Slack did not start: {self.api_url!r}")
        return self

    def stop(self) -> None:
        """Stop the server and read how many posts it accepted."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        self.posts = int(proc.stdout.readline().strip() or 0)
        proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=10)


# -- main ------------------------------------------------------------------------------------------


def pin_to_one_core() -> tuple[int | None, int | None]:
    """Pin this process to one core; return (our core, another core for the fake Slack)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    mine = cores[-1]
    os.sched_setaffinity(0, {mine})
    other = cores[0] if len(cores) > 1 else None
    return mine, other


def run(events: int) -> dict[str, Any]:
    logs.configure("INFO", stream=Discard())
    core, slack_core = pin_to_one_core()
    bodies = make_bodies(events, "run")
    warmup = make_bodies(WARMUP_EVENTS, "warm")
    traced_bodies = make_bodies(events, "traced")
    rss_before = max_rss_mib()

    results: dict[str, Result] = {}
    with (
        tempfile.TemporaryDirectory(prefix="relay-throughput-") as tmp,
        FakeSlackProcess(slack_core) as slack,
    ):
        scratch = Path(tmp)
        for name in VARIANTS:
            relay = build_variant(name, scratch, slack.api_url)
            with sends_skipped() if name.startswith("render") else nullcontext():
                results[name] = measure(name, relay, warmup, bodies)
        # tracemalloc slows everything down a lot: its own pass, after the timed ones, on new events.
        for name in ("floor", "full"):
            relay = build_variant(name, scratch, slack.api_url)
            results[name].tracemalloc_peak_mib = traced_peak(relay, warmup, traced_bodies)
        slack.stop()
    posts = slack.posts

    floor = results["floor"]
    full = results["full"]
    return {
        "events": events,
        "core": core,
        "fake_slack_core": slack_core,
        "rss_after_setup_mib": round(rss_before, 1),
        "fake_slack_posts": posts,
        "variants": {
            name: {
                "events_per_s": round(r.events_per_s, 1),
                "ms_per_event": round(r.ms_per_event, 3),
                "cpu_ms_per_event": round(r.cpu_ms_per_event, 3),
                "deliveries_per_event": round(r.deliveries / r.events, 2),
                "outcomes": dict(r.outcomes),
                "max_rss_mib": round(r.max_rss_mib, 1),
                "tracemalloc_peak_mib": (
                    round(r.tracemalloc_peak_mib, 1) if r.tracemalloc_peak_mib is not None else None
                ),
                "ratio_to_floor": round(r.events_per_s / floor.events_per_s, 2),
            }
            for name, r in results.items()
        },
        "full_events_per_s": round(full.events_per_s, 1),
        "floor_events_per_s": round(floor.events_per_s, 1),
        "full_vs_floor": round(full.events_per_s / floor.events_per_s, 2),
        "throughput_ok": full.events_per_s >= TARGET_EVENTS_PER_S,
        "max_rss_mib": round(max(r.max_rss_mib for r in results.values()), 1),
        "memory_ok": max(r.max_rss_mib for r in results.values()) < TARGET_MIB,
    }


def report(result: dict[str, Any]) -> None:
    rows = result["variants"]
    print(
        f"\nThroughput: {result['events']} distinct events per variant, in process, pinned to core "
        f"{result['core']} (fake Slack in its own process on core {result['fake_slack_core']})"
    )
    print(
        f"{'variant':<16} {'events/s':>9} {'ms/event':>9} {'cpu ms/ev':>9} {'sends/ev':>8}"
        f" {'x floor':>8} {'trace MiB':>9} {'maxRSS MiB':>10}  outcomes"
    )
    for name, row in rows.items():
        traced = row["tracemalloc_peak_mib"]
        cells = [
            f"{name:<16}",
            f"{row['events_per_s']:>9.0f}",
            f"{row['ms_per_event']:>9.3f}",
            f"{row['cpu_ms_per_event']:>9.3f}",
            f"{row['deliveries_per_event']:>8.2f}",
            f"{row['ratio_to_floor']:>8.2f}",
            f"{traced:9.1f}" if traced is not None else f"{'-':>9}",
            f"{row['max_rss_mib']:>10.1f} ",
            str(row["outcomes"]),
        ]
        print(" ".join(cells))

    ms = {name: row["ms_per_event"] for name, row in rows.items()}
    steps = [
        ("floor: decode..format + console transport (json.dumps indent=2)", ms["floor"]),
        ("render, memory: decode..format, Web API transport skipped", ms["render, memory"]),
        ("+ SQLite ledger instead of memory", ms["render, sqlite"] - ms["render, memory"]),
        ("+ Web API calls to the fake Slack (slack_sdk + loopback HTTP)", ms["full"] - ms["render, sqlite"]),
    ]
    print("\nWhere a full event's time goes (from the variants above, ms/event):")
    for label, value in steps:
        print(f"  {label:<62} {value:+8.3f}")

    ok = "OK" if result["throughput_ok"] else "BELOW TARGET"
    print(
        f"\nfull pipeline: {result['full_events_per_s']:.0f} events/s "
        f"(target >= {TARGET_EVENTS_PER_S:.0f}: {ok}); floor {result['floor_events_per_s']:.0f} events/s; "
        f"full/floor = {result['full_vs_floor']:.2f}"
    )
    ok = "OK" if result["memory_ok"] else "OVER TARGET"
    print(
        f"memory: max RSS {result['max_rss_mib']:.1f} MiB (target < {TARGET_MIB:.0f}: {ok}; "
        f"{result['rss_after_setup_mib']:.1f} MiB after imports and building the events); "
        f"tracemalloc peak: full {rows['full']['tracemalloc_peak_mib']} MiB, "
        f"floor {rows['floor']['tracemalloc_peak_mib']} MiB"
    )
    print(f"fake Slack accepted {result['fake_slack_posts']} posts")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per variant (default 2000)")
    args = parser.parse_args(argv)
    result = run(args.events)
    report(result)
    summary = {
        "bench": "throughput",
        "events": result["events"],
        "events_per_s": {name: row["events_per_s"] for name, row in result["variants"].items()},
        "full_vs_floor": result["full_vs_floor"],
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "throughput_ok": result["throughput_ok"],
        "max_rss_mib": result["max_rss_mib"],
        "tracemalloc_peak_mib": {
            name: row["tracemalloc_peak_mib"]
            for name, row in result["variants"].items()
            if row["tracemalloc_peak_mib"] is not None
        },
        "target_mib": TARGET_MIB,
        "memory_ok": result["memory_ok"],
    }
    print("\n" + json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main()
