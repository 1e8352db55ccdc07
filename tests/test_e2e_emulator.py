"""End to end through Google's Pub/Sub emulator: topic -> push subscription -> relay -> fake Slack.

The relay is the real functions-framework app on loopback (localdev.local.serve_relay); the push
subscription has a dead-letter policy and a short retry backoff, as deployed. Observed with emulator
0.8.20: its push body carries no ``deliveryAttempt`` (real Pub/Sub sends one when a dead-letter policy
is set) and it redelivers a nacked message at once, so attempts are asserted by counting handlings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.envelope import decode
from shared.ledger import DeadLetterRecord, TraceEntry
from shared.ledger.sqlite import SqliteLedger
from shared.sources import parse
from tests.fakes.http import Respond
from tests.fakes.pubsub_pipeline import WAIT, Pipeline, poll
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.emulator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "events"
ARGO_FAILED = (EXAMPLES / "argo_failed.json").read_bytes()


def event_id(data: bytes) -> str:
    return parse(decode(data)).event_id


def trace_until_handled(ledger: SqliteLedger, trace_id: str, acked: bool = True) -> list[TraceEntry]:
    """The trace once the relay recorded an ack (``handled`` with ``ack: ...``)."""
    return poll(
        lambda: ledger.trace(trace_id),
        lambda entries: any(e.outcome == "handled" and e.detail.startswith("ack") for e in entries) == acked,
        f"an acked handling of {trace_id}",
    )


def test_published_argo_failure_reaches_slack_exactly_once(
    pipeline: Pipeline, slack_server: FakeSlackServer
) -> None:
    """Publish -> push -> relay -> one post in #alerts; no second post follows."""
    pipeline.publish(ARGO_FAILED)

    slack_server.wait_for(
        lambda s: len(s.posts_in("C0ALERTS")) == 1, timeout=WAIT, what="one post in #alerts"
    )
    entries = trace_until_handled(pipeline.ledger, event_id(ARGO_FAILED))
    assert [e.outcome for e in entries] == ["received", "delivered", "handled"]
    assert " via push message " in entries[0].detail
    assert entries[1].sink == "alerts/slack:#alerts"
    with pytest.raises(AssertionError, match="timed out"):
        slack_server.wait_for(lambda s: len(s.posts) > 1, timeout=1.0, what="a second post")
    assert [p.channel for p in slack_server.posts] == ["C0ALERTS"]


def test_slack_outage_is_retried_by_pubsub_until_one_post(
    pipeline: Pipeline, slack_server: FakeSlackServer
) -> None:
    """Slack 500 for two push attempts (the relay retries once inside each), then OK: one post."""
    slack_server.script("chat.postMessage", [Respond(status=500)] * 4)

    pipeline.publish(ARGO_FAILED)

    slack_server.wait_for(
        lambda s: len(s.posts_in("C0ALERTS")) == 1, timeout=WAIT, what="one post in #alerts"
    )
    entries = trace_until_handled(pipeline.ledger, event_id(ARGO_FAILED))
    outcomes = [(e.outcome, e.reason) for e in entries if e.outcome in ("failed", "delivered")]
    assert outcomes == [("failed", "server_error"), ("failed", "server_error"), ("delivered", "")]
    answers = [e.detail for e in entries if e.outcome == "handled"]
    assert answers == ["nack: Pub/Sub will redeliver", "nack: Pub/Sub will redeliver", "ack: delivered"]
    assert [e.outcome for e in entries].count("received") == 3  # three push deliveries of one message
    assert len(slack_server.calls_to("chat.postMessage")) == 5
    assert slack_server.pending() == 0
    assert pipeline.ledger.dead_letters() == []
    with pytest.raises(AssertionError, match="timed out"):
        slack_server.wait_for(lambda s: len(s.posts) > 1, timeout=1.0, what="a second post")


def test_malformed_message_is_dead_lettered_by_the_relay_and_acked(
    pipeline: Pipeline, slack_server: FakeSlackServer
) -> None:
    """Malformed data: the relay keeps it with its reason and acks, so Pub/Sub's DLQ stays empty."""
    raw = (EXAMPLES / "malformed.txt").read_bytes()
    message_id = pipeline.publish(raw)

    records: list[DeadLetterRecord] = poll(
        pipeline.ledger.dead_letters, lambda found: len(found) == 1, "the relay's dead letter"
    )
    (record,) = records
    assert (record.key, record.reason, record.data) == (message_id, "malformed_payload", raw)
    entries = trace_until_handled(pipeline.ledger, f"message:{message_id}")
    assert [e.outcome for e in entries] == ["dead_lettered", "handled"]
    assert entries[1].detail == "ack: dead_lettered"

    assert pipeline.pull_dead_letters() == []  # acked: never redelivered, never dead-lettered by Pub/Sub
    assert len(pipeline.ledger.dead_letters()) == 1
    assert slack_server.calls == []
