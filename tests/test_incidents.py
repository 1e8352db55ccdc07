"""One Slack message per incident, updated in place: exact call sequences at a loopback Slack.

Each scenario runs on the SQLite ledger and, where Google's emulator is installed, on Firestore.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.emulators import unique_name
from shared.config import load_settings
from shared.envelope import InboundMessage, push_envelope
from shared.ledger import Ledger
from shared.ledger.sqlite import SqliteLedger
from shared.pipeline import Disposition, Relay
from shared.routing import load_routes_text
from shared.wiring import build_relay
from tests.fakes.slack_server import FakeSlackServer

ROUTES = """
version: 1
receivers:
  alerts: {slack: [{channel: "#alerts"}]}
routes:
  - name: all
    receivers: [alerts]
    suppress_for: 1h
default: {receivers: [alerts]}
"""
INCIDENT_STARTED = 1777712400


def monitoring(state: str, incident: str = "0.incident-1") -> bytes:
    closed = state == "closed"
    return json.dumps(
        {
            "version": "1.2",
            "incident": {
                "incident_id": incident,
                "state": state,
                "started_at": INCIDENT_STARTED,
                "ended_at": INCIDENT_STARTED + 900 if closed else None,
                "policy_name": "Argo workflow failures",
                "severity": "Error",
                "summary": "returned to normal" if closed else "failures above threshold",
                "url": f"https://console.cloud.google.com/monitoring/alerting/alerts/{incident}?project=p",
            },
        }
    ).encode()


def argo(uid: str, status: str, created: str) -> bytes:
    return json.dumps(
        {
            "source": "argo",
            "version": 1,
            "workflow": {
                "name": f"asr-nightly-{uid[:5]}",
                "namespace": "ml",
                "uid": uid,
                "status": status,
                "created_at": created,
                "duration": "600.0",
                "failures": '"null"',
                "labels": {"workflows.argoproj.io/cron-workflow": "asr-nightly"},
            },
        }
    ).encode()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    request.getfixturevalue("firestore_env")
    monkeypatch.setenv("RELAY_FIRESTORE_PREFIX", unique_name("inc").replace("-", "_"))
    return "firestore"


class Relays:
    """Relay instances as separate processes would build them: own ledger client, same store."""

    def __init__(self, slack: FakeSlackServer, ledger_url: str, clock: Any) -> None:
        self.slack, self.ledger_url, self.clock = slack, ledger_url, clock
        self.built: list[Relay] = []
        self.count = 0

    def new(self) -> Relay:
        settings = load_settings(
            slack_bot_token=self.slack.token,
            slack_api_url=self.slack.api_url,
            relay_ledger=self.ledger_url,
            google_cloud_project="local-project",
        )
        relay = build_relay(settings, routing=load_routes_text(ROUTES), clock=self.clock.now, env={})
        self.built.append(relay)
        return relay

    def message(self, data: bytes) -> InboundMessage:
        self.count += 1
        return InboundMessage(data=data, message_id=f"msg-{self.count}", transport="push")

    def close(self) -> None:
        for relay in self.built:
            relay.ledger.close()


@pytest.fixture
def relays(slack_server: FakeSlackServer, ledger_url: str, fixed_clock: Any) -> Iterator[Relays]:
    made = Relays(slack_server, ledger_url, fixed_clock)
    yield made
    made.close()


def calls(slack: FakeSlackServer) -> list[tuple[str, str | None]]:
    """(method, ts or thread_ts) of every successful call, in order: the shape of the conversation."""
    out = []
    for call in slack.calls:
        if call.status != 200:
            continue
        body = call.body if isinstance(call.body, dict) else {}
        out.append((call.route, body.get("ts") or body.get("thread_ts")))
    return out


def final_text(slack: FakeSlackServer, ts: str) -> str:
    message = slack.message("C0ALERTS", ts)
    assert message is not None
    return json.dumps(message)


def test_open_then_close_updates_the_original_and_replies_in_its_thread(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """Opened: one post. Closed: that post updated to resolved, plus a reply in its thread."""
    relay = relays.new()
    relay.handle(relays.message(monitoring("open")))
    relay.handle(relays.message(monitoring("closed")))
    [original, reply] = slack_server.posts
    assert calls(slack_server) == [
        ("chat.postMessage", None),
        ("chat.update", original.ts),
        ("chat.postMessage", original.ts),
    ]
    assert reply.thread_ts == original.ts
    text = final_text(slack_server, original.ts)
    assert "RESOLVED" in text and "after 15m" in text


def test_close_before_open_posts_resolved_and_a_late_open_does_not_reopen(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """Out of order: the close posts a resolved message; the late open changes nothing."""
    relay = relays.new()
    relay.handle(relays.message(monitoring("closed")))
    late = relay.handle(relays.message(monitoring("open")))
    assert late.disposition is Disposition.ACK
    assert calls(slack_server) == [("chat.postMessage", None)]
    assert "RESOLVED" in final_text(slack_server, slack_server.posts[0].ts)


def test_duplicate_open_after_close_never_reopens(relays: Relays, slack_server: FakeSlackServer) -> None:
    """A renotified open arriving after the close leaves the incident resolved."""
    relay = relays.new()
    for state in ("open", "closed", "open"):
        relay.handle(relays.message(monitoring(state)))
    original = slack_server.posts[0]
    assert [c[0] for c in calls(slack_server)] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert "RESOLVED" in final_text(slack_server, original.ts)


def test_open_repeated_five_times_then_closed(relays: Relays, slack_server: FakeSlackServer) -> None:
    """Repeats inside the window update the original's counter; the close resolves it with the count."""
    relay = relays.new()
    relay.handle(relays.message(monitoring("open")))
    for _ in range(5):
        relay.handle(relays.message(monitoring("open")))
    relay.handle(relays.message(monitoring("closed")))
    original = slack_server.posts[0]
    assert calls(slack_server) == [
        ("chat.postMessage", None),
        *[("chat.update", original.ts)] * 5,
        ("chat.update", original.ts),
        ("chat.postMessage", original.ts),
    ]
    assert "repeated 5 times" in json.dumps(slack_server.updates[4].blocks)
    text = final_text(slack_server, original.ts)
    assert "RESOLVED" in text and "repeated 5 times" in text


def test_argo_failure_then_success_resolves_the_failure_message(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """The cron workflow's next run succeeding updates the failed run's message in place."""
    relay = relays.new()
    relay.handle(relays.message(argo("aaaaa-1", "Failed", "2026-05-02T09:00:00Z")))
    relay.handle(relays.message(argo("bbbbb-2", "Succeeded", "2026-05-02T10:00:00Z")))
    original = slack_server.posts[0]
    assert calls(slack_server) == [
        ("chat.postMessage", None),
        ("chat.update", original.ts),
        ("chat.postMessage", original.ts),
    ]
    text = final_text(slack_server, original.ts)
    assert "RESOLVED" in text and "asr-nightly-bbbbb succeeded" in text


def test_argo_failure_older_than_the_success_does_not_reopen(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """A failure of an earlier run delivered after a later run's success is stale: no new message."""
    relay = relays.new()
    relay.handle(relays.message(argo("bbbbb-2", "Succeeded", "2026-05-02T10:00:00Z")))
    relay.handle(relays.message(argo("aaaaa-1", "Failed", "2026-05-02T09:00:00Z")))
    assert calls(slack_server) == [("chat.postMessage", None)]


def test_argo_failure_after_resolution_opens_a_new_message(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """A later run failing again is a new incident: a new message, the resolved one untouched."""
    relay = relays.new()
    relay.handle(relays.message(argo("aaaaa-1", "Failed", "2026-05-02T09:00:00Z")))
    relay.handle(relays.message(argo("bbbbb-2", "Succeeded", "2026-05-02T10:00:00Z")))
    relay.handle(relays.message(argo("ccccc-3", "Failed", "2026-05-02T11:00:00Z")))
    top_level = [p for p in slack_server.posts if p.thread_ts is None]
    assert len(top_level) == 2
    assert "RESOLVED" in final_text(slack_server, top_level[0].ts)


def test_restart_between_open_and_close_still_updates_the_original(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """A new relay instance (fresh clients, same store) finds the incident's message and updates it."""
    relays.new().handle(relays.message(monitoring("open")))
    relays.close()
    relays.new().handle(relays.message(monitoring("closed")))
    original = slack_server.posts[0]
    assert calls(slack_server) == [
        ("chat.postMessage", None),
        ("chat.update", original.ts),
        ("chat.postMessage", original.ts),
    ]


_HANDLE_ONE = """
import sys
from shared.envelope import decode
from shared.wiring import relay_from_environment
outcome = relay_from_environment().handle(decode(sys.stdin.buffer.read()))
print(outcome.summary)
"""


def test_restart_in_a_new_process_still_updates_the_original(
    slack_server: FakeSlackServer, ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open and close handled by two separate processes sharing the ledger: one message, updated."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    monkeypatch.setenv("RELAY_LEDGER", ledger_url)
    monkeypatch.setenv("RELAY_ROUTES", str(routes))
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_server.token)
    monkeypatch.setenv("SLACK_API_URL", slack_server.api_url)
    monkeypatch.setenv("RELAY_LOG_LEVEL", "WARNING")
    for n, state in enumerate(("open", "closed")):
        envelope = json.dumps(push_envelope(monitoring(state), message_id=f"proc-{n}")).encode()
        done = subprocess.run(
            [sys.executable, "-c", _HANDLE_ONE], input=envelope, capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode().strip() == "delivered"
    original = slack_server.posts[0]
    assert [c[0] for c in calls(slack_server)] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert "RESOLVED" in final_text(slack_server, original.ts)


def _until_acked(relay: Relay, message: InboundMessage, errors: list[BaseException]) -> None:
    """What Pub/Sub does: redeliver, with a short backoff, until the relay acks (bounded)."""
    try:
        for attempt in range(400):
            if relay.handle(message).disposition is Disposition.ACK:
                return
            time.sleep(min(0.005 * (attempt + 1), 0.05))  # real threads racing: a real, short backoff
        raise AssertionError(f"message {message.message_id} never acked")
    except BaseException as exc:  # surfaced by the test: a thread's failure must fail it
        errors.append(exc)


def test_concurrent_instances_post_once_and_end_consistent(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """Workers racing on the same open (and its repeats), then the close: one post, ending resolved."""
    workers = [relays.new() for _ in range(4)]
    same_open = relays.message(monitoring("open"))
    repeats = [relays.message(monitoring("open")) for _ in range(4)]
    errors: list[BaseException] = []
    threads = [
        # Daemon threads: a failing test must not keep the test process alive after it.
        threading.Thread(target=_until_acked, args=(relay, msg, errors), daemon=True)
        for relay, msg in [*zip(workers, [same_open] * 4, strict=True), *zip(workers, repeats, strict=True)]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    close = relays.message(monitoring("closed"))
    closers = [
        threading.Thread(target=_until_acked, args=(relay, close, errors), daemon=True) for relay in workers
    ]
    for thread in closers:
        thread.start()
    for thread in closers:
        thread.join(60)

    assert errors == []
    top_level = [p for p in slack_server.posts if p.thread_ts is None]
    assert len(top_level) == 1
    replies = [p for p in slack_server.posts if p.thread_ts is not None]
    assert len(replies) == 1  # one "Resolved" reply, however many instances saw the close
    assert "RESOLVED" in final_text(slack_server, top_level[0].ts)


def test_sqlite_ledger_survives_reopening_with_incident_state(tmp_path: Path) -> None:
    """The incident's message is still known after the file is reopened (the local run relies on it)."""
    path = tmp_path / "l.sqlite3"
    ledger: Ledger = SqliteLedger(path)
    from datetime import UTC, datetime

    now = datetime(2026, 5, 2, tzinfo=UTC)
    ledger.put_incident("k", {"channel": "C1", "ts": "1.0", "status": "firing"}, now)
    ledger.close()
    assert SqliteLedger(path).get_incident("k", now) == {"channel": "C1", "ts": "1.0", "status": "firing"}


def test_resolution_is_posted_anew_when_the_original_cannot_be_edited(
    relays: Relays, slack_server: FakeSlackServer
) -> None:
    """chat.update answering message_not_found (deleted message): the resolution becomes a new post."""
    from tests.fakes.http import Respond

    relay = relays.new()
    relay.handle(relays.message(monitoring("open")))
    slack_server.script("chat.update", Respond(body={"ok": False, "error": "message_not_found"}))
    closed = relay.handle(relays.message(monitoring("closed")))
    assert closed.disposition is Disposition.ACK
    # The refused update, then the resolution as a new top-level message (no thread: the original is gone).
    assert [c[0] for c in calls(slack_server)] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    original, resolved = slack_server.posts
    assert resolved.thread_ts is None
    assert "RESOLVED" in final_text(slack_server, resolved.ts)
    assert "RESOLVED" not in final_text(slack_server, original.ts)
