"""The README's run command: the relay on embedded defaults, fed the bundled example events.

The relay function is served by functions-framework on loopback. Messages reach it through Google's
Pub/Sub emulator (topic -> push subscription -> relay) when it is installed, otherwise through an
in-process hand-off that POSTs the same push envelopes. Slack output is printed as Block Kit JSON
unless SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL is set. Each event's fate is read back from the ledger.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared import sources
from shared.envelope import InboundMessage, push_envelope
from shared.errors import UnsupportedPayload
from shared.ledger import TraceEntry
from shared.ledger.sqlite import SqliteLedger

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "events"
RELAY_SOURCE = ROOT / "functions" / "relay" / "main.py"
INGEST_SOURCE = ROOT / "functions" / "ingest" / "main.py"
PROJECT = "local-project"
WAIT_SECONDS = 30.0
_TERMINAL = "handled"  # the pipeline's last trace entry for each handling of a message


@dataclass(frozen=True)
class Example:
    title: str
    file: str
    redelivery: bool = False  # replay the previous message as Pub/Sub's redelivery would


EXAMPLES_IN_ORDER = (
    Example("Argo workflow failed", "argo_failed.json"),
    Example("the same message redelivered", "argo_failed.json", redelivery=True),
    Example("Argo workflow succeeded on its next run", "argo_succeeded.json"),
    Example("Cloud Monitoring incident opened", "monitoring_open.json"),
    Example("Cloud Monitoring incident closed", "monitoring_closed.json"),
    Example("a malformed message", "malformed.txt"),
)

# Sends one payload to the relay and returns the Pub/Sub message id it travelled under.
Send = Callable[[bytes, str | None], str]


@contextmanager
def serve_function(target: str, source: Path, port: int = 0) -> Iterator[str]:
    """A function served by functions-framework on 127.0.0.1 (threaded werkzeug server)."""
    import functions_framework
    from werkzeug.serving import make_server

    app = functions_framework.create_app(target=target, source=str(source), signature_type="http")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def serve_relay(port: int = 0) -> Iterator[str]:
    """The relay function on loopback (it builds itself from the environment on its first request)."""
    with serve_function("relay", RELAY_SOURCE, port) as url:
        yield url


@contextmanager
def serve_ingest(port: int = 0) -> Iterator[str]:
    """The ingest function on loopback."""
    with serve_function("ingest", INGEST_SOURCE, port) as url:
        yield url


def post_envelope(url: str, envelope: dict[str, object]) -> int:
    request = urllib.request.Request(  # noqa: S310 (loopback only)
        url, data=json.dumps(envelope).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def in_process(url: str) -> Iterator[Send]:
    counter = iter(range(1, 1_000_000))

    def send(data: bytes, message_id: str | None) -> str:
        message_id = message_id or f"local-{next(counter)}"
        post_envelope(url, push_envelope(data, message_id=message_id))
        return message_id

    yield send


@contextmanager
def via_emulator(url: str) -> Iterator[Send]:
    from google.cloud import pubsub_v1

    from localdev.emulators import PubSubEmulator

    with PubSubEmulator(project=PROJECT) as emulator:
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        try:
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
            topic = publisher.topic_path(PROJECT, "alerts")
            subscription = subscriber.subscription_path(PROJECT, "alert-relay-push")
            publisher.create_topic(name=topic)
            subscriber.create_subscription(
                request={"name": subscription, "topic": topic, "push_config": {"push_endpoint": url}}
            )

            def send(data: bytes, message_id: str | None) -> str:
                if message_id is not None:
                    # The emulator cannot be told to redeliver an acked message; replay its envelope.
                    post_envelope(url, push_envelope(data, message_id=message_id, subscription=subscription))
                    return message_id
                return str(publisher.publish(topic, data).result(timeout=30))

            yield send
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous


def trace_id(data: bytes, message_id: str) -> str:
    """The id the relay files this message's fate under: its event id, or the message id if unreadable."""
    try:
        return sources.parse(InboundMessage(data=data, message_id=message_id)).event_id
    except UnsupportedPayload:
        return f"message:{message_id}"


def wait_handled(
    ledger: SqliteLedger, trace_id: str, already: int, timeout: float = WAIT_SECONDS
) -> list[TraceEntry]:
    """Entries added to a trace since ``already``, once the relay recorded its answer (pushes are async)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = ledger.trace(trace_id)[already:]
        if any(e.outcome == _TERMINAL for e in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def describe(entry: TraceEntry) -> str:
    parts = [entry.outcome.replace("_", " ")]
    if entry.sink:
        parts.append(f"to {entry.sink}")
    if entry.route:
        parts.append(f"(route {entry.route})")
    if entry.reason:
        parts.append(f"reason={entry.reason}")
    if entry.detail:
        parts.append(f"- {entry.detail}")
    return " ".join(parts)


def run(*, use_emulator: bool = True, state_dir: Path = Path(".alert-relay")) -> int:
    from localdev.emulators import missing_reason

    state_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = (state_dir / "ledger.sqlite3").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)  # a fresh demo every run
    os.environ["RELAY_LEDGER"] = f"sqlite:///{ledger_path}"
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
    # Keep the demo readable: the relay's per-event JSON log lines only from WARNING up.
    os.environ.setdefault("RELAY_LOG_LEVEL", "WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    unavailable = missing_reason("pubsub") if use_emulator else "disabled with --no-emulator"
    slack = (
        "Slack Web API (SLACK_BOT_TOKEN)"
        if os.environ.get("SLACK_BOT_TOKEN")
        else "Slack incoming webhook (SLACK_WEBHOOK_URL)"
        if os.environ.get("SLACK_WEBHOOK_URL")
        else "console: Block Kit JSON printed as it would be posted"
    )
    print("alert-relay: local run")
    print(f"  routes    {os.environ.get('RELAY_ROUTES') or 'bundled example (shared/defaults/routes.yaml)'}")
    print(f"  ledger    {os.environ['RELAY_LEDGER']}")
    if unavailable is None:
        print("  transport Pub/Sub emulator: topic 'alerts' -> push subscription -> relay")
    else:
        print(f"  transport in-process hand-off of push envelopes ({unavailable})")
    print(f"  slack     {slack}\n")

    ledger = SqliteLedger(ledger_path)
    fates: list[tuple[Example, str, list[TraceEntry]]] = []
    with serve_relay() as url:
        transport = in_process(url) if unavailable is not None else via_emulator(url)
        with transport as send:
            last: tuple[str, str] | None = None  # (message id, trace id) of the previous example
            for example in EXAMPLES_IN_ORDER:
                data = (EXAMPLES / example.file).read_bytes()
                print(f">>> {example.title} ({example.file})", flush=True)
                if example.redelivery and last is not None:
                    message_id, event_trace = last
                    already = len(ledger.trace(event_trace))
                    send(data, message_id)
                else:
                    message_id = send(data, None)
                    event_trace, already = trace_id(data, message_id), 0
                last = (message_id, event_trace)
                fates.append((example, event_trace, wait_handled(ledger, event_trace, already)))

    print("\nWhat became of each event (read back from the ledger):")
    for number, (example, traced, entries) in enumerate(fates, 1):
        print(f"{number}. {example.title}  [alert-relay trace {traced}]")
        for entry in entries:
            if entry.outcome not in ("received", _TERMINAL):
                print(f"     {describe(entry)}")
        if not entries:
            print("     no outcome recorded in time")
    dead = ledger.dead_letters()
    print(f"\nDead letters kept in the local ledger: {len(dead)}")
    for record in dead:
        print(f"  message {record.key}: {record.reason}: {record.detail}")
    print(f"\nInspect any event again with: alert-relay trace ID --ledger {os.environ['RELAY_LEDGER']}")
    ledger.close()
    return 0
