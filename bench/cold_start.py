"""Cold start of the relay function vs a bare functions-framework hello world, measured in one run.

For each run, the wall time from exec of ``functions-framework --target X --source FILE`` (the venv's
binary, default gunicorn mode) until the first request is answered, polling the port every 5 ms:
hello gets a GET; the relay gets a POST of a push envelope carrying examples/events/argo_failed.json,
with a fresh SQLite ledger and SLACK_API_URL pointing at a loopback fake Slack, so the first request
does a real chat.postMessage. Runs are interleaved (the order rotates each round) after one unmeasured
warm-up each (compiles .pyc, warms the page cache). The relay is served from its staged deployable
source (``localdev.package.build``), exactly what Cloud Functions receives.

Also: ``python -X importtime -c "import main"`` for both, and a child that serves the relay's first
request through functions-framework's test client, to show what that first request imports and how
much each piece costs.

    .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes lives in the repository, not in the installed package

from localdev.package import build  # noqa: E402
from shared.envelope import push_envelope  # noqa: E402
from tests.fakes.slack_server import FakeSlackServer  # noqa: E402

PYTHON = sys.executable
FUNCTIONS_FRAMEWORK = str(Path(sys.executable).parent / "functions-framework")
EXAMPLE = ROOT / "examples" / "events" / "argo_failed.json"
SLACK_TOKEN = "xoxb-bench"
TARGET_RATIO = 1.5
POLL_SECONDS = 0.005
START_TIMEOUT = 60.0
HEAVY_MODULES = (
    "google.cloud.pubsub_v1",
    "google.cloud.logging",
    "google.cloud.firestore",
    "slack_sdk",
    "pydantic",
    "pydantic_settings",
    "yaml",
)
HELLO_SOURCE = """\
import functions_framework


@functions_framework.http
def hello(request):
    return "hello"
"""


# -- helpers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(scratch: Path, **extra: str) -> dict[str, str]:
    """A from-scratch environment: no Google credentials/project, empty HOME and gcloud config."""
    home = scratch / "home"
    gcloud = scratch / "gcloud"
    home.mkdir(exist_ok=True)
    gcloud.mkdir(exist_ok=True)
    env = {
        "PATH": str(Path(PYTHON).parent) + os.pathsep + "/usr/bin:/bin",
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(gcloud),
        "LANG": "C.UTF-8",
        "TMPDIR": str(scratch),
        "PYTHONNOUSERSITE": "1",
    }
    env.update(extra)
    return env


@dataclass
class Stats:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict[str, float]:
        return {"median": round(self.median, 1), "min": round(self.min, 1), "max": round(self.max, 1)}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server we started: its own process group (gunicorn master + worker)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _request(port: int, method: str, body: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def time_to_first_response(
    *, source: Path, target: str, method: str, body: bytes | None, env: dict[str, str], log: Path
) -> tuple[float, int, bytes]:
    """ms from exec of functions-framework until the first request is answered."""
    port = free_port()
    command = [FUNCTIONS_FRAMEWORK, "--target", target, "--source", str(source)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=source.parent, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while True:
                try:
                    status, answer = _request(port, method, body)
                    break
                except ConnectionRefusedError:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{target} server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                        ) from None
                    if time.perf_counter() - start > START_TIMEOUT:
                        raise TimeoutError(f"{target} server did not answer in {START_TIMEOUT}s") from None
                    time.sleep(POLL_SECONDS)
            elapsed_ms = (time.perf_counter() - start) * 1000
        finally:
            _stop(proc)
    return elapsed_ms, status, answer


# -- import-time analysis --------------------------------------------------------------------------

_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class ImportLine:
    self_us: int
    cumulative_us: int
    level: int
    name: str


def parse_importtime(text: str) -> list[ImportLine]:
    lines = []
    for raw in text.splitlines():
        match = _IMPORTTIME.match(raw)
        if match:
            self_us, cum_us, indent, name = match.groups()
            lines.append(ImportLine(int(self_us), int(cum_us), max(0, (len(indent) - 1) // 2), name))
    return lines


def import_main_cost(directory: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """``python -X importtime -c "import main"`` in ``directory``: median cumulative ms of ``main``."""
    cumulative, total_self, wall = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", "import main"],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall.append((time.perf_counter() - start) * 1000)
        lines = parse_importtime(proc.stderr)
        main_line = next(line for line in lines if line.name == "main" and line.level == 0)
        cumulative.append(main_line.cumulative_us / 1000)
        total_self.append(sum(line.self_us for line in lines) / 1000)
    return {
        "main_cumulative_ms": round(statistics.median(cumulative), 1),
        "all_imports_self_ms": round(statistics.median(total_self), 1),
        "process_wall_ms": round(statistics.median(wall), 1),
    }


FIRST_REQUEST_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    HEAVY = json.loads(os.environ["BENCH_HEAVY"])
    t0 = time.perf_counter()
    import functions_framework
    t1 = time.perf_counter()
    app = functions_framework.create_app(target="relay", source=os.path.join(os.getcwd(), "main.py"))
    client = app.test_client()
    t2 = time.perf_counter()
    at_import = {name: name in sys.modules for name in HEAVY}
    modules_before = len(sys.modules)
    print("@@FIRST_REQUEST_BEGIN", file=sys.stderr, flush=True)
    first = client.post("/", data=os.environ["BENCH_BODY_1"], content_type="application/json")
    print("@@FIRST_REQUEST_END", file=sys.stderr, flush=True)
    t3 = time.perf_counter()
    second = client.post("/", data=os.environ["BENCH_BODY_2"], content_type="application/json")
    t4 = time.perf_counter()
    json.dump(
        {
            "import_functions_framework_ms": (t1 - t0) * 1000,
            "create_app_ms": (t2 - t1) * 1000,
            "first_request_ms": (t3 - t2) * 1000,
            "second_request_ms": (t4 - t3) * 1000,
            "statuses": [first.status_code, second.status_code],
            "outcomes": [first.get_json().get("outcome"), second.get_json().get("outcome")],
            "at_import": at_import,
            "after_first_request": {name: name in sys.modules for name in HEAVY},
            "modules_at_import": modules_before,
            "modules_after_first_request": len(sys.modules),
        },
        open(sys.argv[1], "w"),
    )
    """
)


def first_request_profile(
    staged: Path, env: dict[str, str], scratch: Path, runs: int
) -> tuple[dict[str, Any], list[ImportLine]]:
    """Timings of the relay's phases (median of ``runs``), then one -X importtime run for attribution."""
    payload = json.loads(EXAMPLE.read_text())
    second = json.loads(json.dumps(payload))
    second["workflow"]["uid"] = "bench-second-request"
    bodies = {
        "BENCH_BODY_1": json.dumps(push_envelope(payload, message_id="fr-1")),
        "BENCH_BODY_2": json.dumps(push_envelope(second, message_id="fr-2")),
        "BENCH_HEAVY": json.dumps(HEAVY_MODULES),
    }
    reports: list[dict[str, Any]] = []
    request_lines: list[ImportLine] = []
    profiled_request_ms = 0.0
    for index in range(runs + 1):
        ledger = scratch / f"profile-{index}" / "l.sqlite3"
        child_env = {**env, **bodies, "RELAY_LEDGER": f"sqlite:///{ledger}"}
        out = scratch / f"profile-{index}.json"
        profiled = index == runs  # the last run is under -X importtime (slower), only for attribution
        flags = ["-X", "importtime"] if profiled else []
        proc = subprocess.run(
            [PYTHON, *flags, "-c", FIRST_REQUEST_CHILD, str(out)],
            cwd=staged,
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"first-request child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        report = json.loads(out.read_text())
        if profiled:
            section = proc.stderr.split("@@FIRST_REQUEST_BEGIN", 1)[1].split("@@FIRST_REQUEST_END", 1)[0]
            request_lines = parse_importtime(section)
            profiled_request_ms = report["first_request_ms"]
        else:
            reports.append(report)
    keys = ("import_functions_framework_ms", "create_app_ms", "first_request_ms", "second_request_ms")
    summary = {key: round(statistics.median(r[key] for r in reports), 1) for key in keys}
    last = reports[-1]
    summary.update({k: last[k] for k in last if k not in keys})
    # Same run as the import attribution: the request's time split into imports and everything else.
    summary["profiled_first_request_ms"] = round(profiled_request_ms, 1)
    return summary, request_lines


def attribute(lines: list[ImportLine]) -> tuple[float, dict[str, float], dict[str, float]]:
    """Total import ms, Σself ms per top-level package (non-overlapping), cumulative ms per heavy module."""
    total = sum(line.cumulative_us for line in lines if line.level == 0) / 1000
    per_package: dict[str, float] = defaultdict(float)
    for line in lines:
        per_package[line.name.split(".")[0]] += line.self_us / 1000
    heavy = {}
    for name in HEAVY_MODULES:
        match = next((line for line in lines if line.name == name), None)
        if match:
            heavy[name] = match.cumulative_us / 1000
    return total, dict(sorted(per_package.items(), key=lambda kv: -kv[1])), heavy


# -- main ------------------------------------------------------------------------------------------


def run(runs: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="relay-cold-start-") as tmp,
        FakeSlackServer(token=SLACK_TOKEN) as slack,
    ):
        scratch = Path(tmp)
        staged = build("relay", scratch / "relay")
        hello_dir = scratch / "hello"
        hello_dir.mkdir()
        (hello_dir / "main.py").write_text(HELLO_SOURCE)
        relay_env = clean_env(scratch, SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=slack.api_url)
        hello_env = clean_env(scratch)
        envelope = json.dumps(push_envelope(EXAMPLE.read_bytes(), message_id="cold-start")).encode()

        def hello_once() -> float:
            ms, status, answer = time_to_first_response(
                source=hello_dir / "main.py",
                target="hello",
                method="GET",
                body=None,
                env=hello_env,
                log=scratch / "hello.log",
            )
            if status != 200 or answer != b"hello":
                raise RuntimeError(f"hello answered {status} {answer[:200]!r}")
            return ms

        def relay_once(index: int, *, source: Path = staged, **extra: str) -> float:
            ledger = scratch / f"run-{index}" / "l.sqlite3"  # a new instance starts with an empty /tmp
            env = {**relay_env, **extra, "RELAY_LEDGER": f"sqlite:///{ledger}"}
            posts_before = len(slack.posts)
            ms, status, answer = time_to_first_response(
                source=source / "main.py",
                target="relay",
                method="POST",
                body=envelope,
                env=env,
                log=scratch / "relay.log",
            )
            body = json.loads(answer)
            if status != 200 or body.get("outcome") != "delivered":
                raise RuntimeError(f"relay answered {status}: {body}")
            if len(slack.posts) <= posts_before:
                raise RuntimeError("relay answered but the fake Slack got no chat.postMessage")
            return ms

        # A second staged copy that never gets .pyc files: shared/ is compiled on every start, as
        # when the deployed source has no __pycache__ (site-packages keeps its .pyc either way).
        uncompiled = build("relay", scratch / "relay-no-pyc")

        hello_once()  # warm-up: .pyc, page cache (not measured)
        relay_once(-1)
        relay_once(-2, source=uncompiled, PYTHONDONTWRITEBYTECODE="1")
        hello_ms, relay_ms, no_pyc_ms = [], [], []

        def no_pyc_once(index: int) -> float:
            return relay_once(runs + index, source=uncompiled, PYTHONDONTWRITEBYTECODE="1")

        series: list[tuple[list[float], Callable[[int], float]]] = [
            (hello_ms, lambda index: hello_once()),
            (relay_ms, relay_once),
            (no_pyc_ms, no_pyc_once),
        ]
        for index in range(runs):
            # Interleaved, and the order rotates each round so no series always runs first.
            for offset in range(len(series)):
                values, once = series[(index + offset) % len(series)]
                values.append(once(index))
        if any((uncompiled / "shared").rglob("__pycache__")):
            raise RuntimeError("the no-.pyc copy got compiled files")
        hello, relay, no_pyc = Stats(hello_ms), Stats(relay_ms), Stats(no_pyc_ms)

        import_runs = max(3, min(runs, 5))
        hello_import = import_main_cost(hello_dir, hello_env, import_runs)
        relay_import = import_main_cost(staged, relay_env, import_runs)
        profile, request_lines = first_request_profile(staged, relay_env, scratch, runs=3)
        posts = len(slack.posts)

    total_request_imports, per_package, heavy_cost = attribute(request_lines)
    ratio = relay.median / hello.median
    return {
        "runs": runs,
        "hello_ms": hello.as_dict(),
        "relay_ms": relay.as_dict(),
        "relay_no_pyc_ms": no_pyc.as_dict(),
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "ratio_ok": ratio <= TARGET_RATIO,
        "import_main": {"hello": hello_import, "relay": relay_import},
        "first_request": profile,
        "first_request_imports_ms": round(total_request_imports, 1),
        "first_request_self_ms_by_package": {k: round(v, 1) for k, v in list(per_package.items())[:10]},
        "first_request_heavy_cumulative_ms": {k: round(v, 1) for k, v in heavy_cost.items()},
        "fake_slack_posts": posts,
    }


def report(result: dict[str, Any]) -> None:
    hello, relay = result["hello_ms"], result["relay_ms"]
    print(f"\nCold start: exec of functions-framework -> first answer ({result['runs']} interleaved runs)")
    print(f"{'function':<10} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    print(f"{'hello':<10} {hello['median']:>10.1f} {hello['min']:>8.1f} {hello['max']:>8.1f}")
    print(f"{'relay':<10} {relay['median']:>10.1f} {relay['min']:>8.1f} {relay['max']:>8.1f}")
    cold = result["relay_no_pyc_ms"]
    print(
        f"{'relay*':<10} {cold['median']:>10.1f} {cold['min']:>8.1f} {cold['max']:>8.1f}"
        "   * shared/ without .pyc (compiled at every start)"
    )
    verdict = "OK" if result["ratio_ok"] else "OVER TARGET"
    print(
        f"ratio relay/hello (medians): {result['ratio']:.2f}  (target <= {result['target_ratio']}: {verdict})"
    )

    imports = result["import_main"]
    print('\nImport only: python -X importtime -c "import main" (median)')
    print(f"{'function':<10} {'main cum ms':>12} {'Σself ms':>9} {'process ms':>11}")
    for name in ("hello", "relay"):
        row = imports[name]
        print(
            f"{name:<10} {row['main_cumulative_ms']:>12.1f} {row['all_imports_self_ms']:>9.1f}"
            f" {row['process_wall_ms']:>11.1f}"
        )

    profile = result["first_request"]
    print("\nRelay in-process phases (functions-framework test client, median of 3)")
    for key in ("import_functions_framework_ms", "create_app_ms", "first_request_ms", "second_request_ms"):
        print(f"  {key.removesuffix('_ms'):<28} {profile[key]:>8.1f} ms")
    imports_ms = result["first_request_imports_ms"]
    other_ms = profile["profiled_first_request_ms"] - imports_ms
    print(
        f"  under -X importtime the first request took {profile['profiled_first_request_ms']:.1f} ms: "
        f"{imports_ms:.1f} ms imports + {other_ms:.1f} ms everything else"
    )
    print(
        f"  modules loaded: {profile['modules_at_import']} after import, "
        f"{profile['modules_after_first_request']} after the first request"
    )

    print("\nHeavy modules: loaded by `import main` / by the first request / cumulative import ms")
    for name in HEAVY_MODULES:
        at_import = "yes" if profile["at_import"][name] else "no"
        after = "yes" if profile["after_first_request"][name] else "no"
        cost = result["first_request_heavy_cumulative_ms"].get(name)
        cost_text = f"{cost:8.1f}" if cost is not None else "       -"
        print(f"  {name:<24} import: {at_import:<4} first request: {after:<4} {cost_text}")
    print(
        f"\nImports during the first request: {result['first_request_imports_ms']:.1f} ms in total "
        "(under -X importtime); Σself by top-level package:"
    )
    for name, ms in result["first_request_self_ms_by_package"].items():
        print(f"  {name:<24} {ms:8.1f} ms")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per function (default 7)")
    args = parser.parse_args(argv)
    result = run(args.runs)
    report(result)
    summary = {
        "bench": "cold_start",
        "hello_median_ms": result["hello_ms"]["median"],
        "relay_median_ms": result["relay_ms"]["median"],
        "relay_no_pyc_median_ms": result["relay_no_pyc_ms"]["median"],
        "ratio": result["ratio"],
        "target_ratio": result["target_ratio"],
        "ratio_ok": result["ratio_ok"],
        "import_main_ms": {k: v["main_cumulative_ms"] for k, v in result["import_main"].items()},
        "first_request_ms": result["first_request"]["first_request_ms"],
        "first_request_imports": sorted(
            name for name, loaded in result["first_request"]["after_first_request"].items() if loaded
        ),
    }
    print("\n" + json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main()
