"""End to end through Google's Pub/Sub emulator: topic -> push subscription -> relay -> fake Slack.

The relay is the real functions-framework app on loopback (localdev.local.serve_relay); the push
subscription has a dead-letter policy and a short retry backoff, as deployed. Observed with emulator
0.8.20: its push body carries no ``deliveryAttempt`` (real Pub/Sub sends one when a dead-letter policy
is set) and it redelivers a nacked message at once, so attempts are asserted by counting handlings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localdev.emulators import PROJECT, unique_name
from localdev.local import serve_relay
from shared.envelope import decode
from shared.ledger import DeadLetterRecord, TraceEntry
from shared.ledger.sqlite import SqliteLedger
from shared.sources import parse
from tests.fakes.http import Respond
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.emulator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "events"
ARGO_FAILED = (EXAMPLES / "argo_failed.json").read_bytes()
MAX_DELIVERY_ATTEMPTS = 5
WAIT = 10.0  # bound on any single wait; each test stays well under 15 s in practice


@dataclass
class Pipeline:
    publisher: Any
    subscriber: Any
    topic: str
    dead_letter_subscription: str
    ledger: SqliteLedger

    def publish(self, data: bytes) -> str:
        return str(self.publisher.publish(self.topic, data).result(timeout=WAIT))

    def pull_dead_letters(self, timeout: float = 1.5) -> list[Any]:
        """Whatever reached the Pub/Sub dead-letter topic; [] when the pull times out empty."""
        from google.api_core import exceptions

        try:
            response = self.subscriber.pull(
                request={"subscription": self.dead_letter_subscription, "max_messages": 10}, timeout=timeout
            )
        except exceptions.DeadlineExceeded:
            return []
        return list(response.received_messages)


def poll(read: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = WAIT) -> Any:
    """Re-read until ``done(value)``; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        time.sleep(0.05)


@pytest.fixture
def pipeline(
    pubsub_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack_server: FakeSlackServer
) -> Iterator[Pipeline]:
    """Relay served on loopback; unique topic, dead-letter topic (+ pull sub) and push subscription."""
    from google.cloud import pubsub_v1

    ledger_path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("RELAY_LEDGER", f"sqlite:///{ledger_path}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_server.token)
    monkeypatch.setenv("SLACK_API_URL", slack_server.api_url)
    # Matches the subscription, so the relay would dead-letter itself on the last attempt.
    monkeypatch.setenv("RELAY_MAX_ATTEMPTS", str(MAX_DELIVERY_ATTEMPTS))

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, unique_name("alerts"))
    dead_topic = publisher.topic_path(PROJECT, unique_name("alerts-dead"))
    dead_sub = subscriber.subscription_path(PROJECT, unique_name("alerts-dead-pull"))
    push_sub = subscriber.subscription_path(PROJECT, unique_name("alerts-relay-push"))
    ledger = SqliteLedger(ledger_path)
    with serve_relay() as url:
        publisher.create_topic(name=topic)
        publisher.create_topic(name=dead_topic)
        subscriber.create_subscription(request={"name": dead_sub, "topic": dead_topic})
        subscriber.create_subscription(
            request={
                "name": push_sub,
                "topic": topic,
                "push_config": {"push_endpoint": url},
                "ack_deadline_seconds": 10,
                "dead_letter_policy": {
                    "dead_letter_topic": dead_topic,
                    "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
                },
                "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
            }
        )
        try:
            yield Pipeline(publisher, subscriber, topic, dead_sub, ledger)
        finally:
            # Stop pushes before the relay goes away, then drop everything this test created.
            subscriber.delete_subscription(request={"subscription": push_sub})
            subscriber.delete_subscription(request={"subscription": dead_sub})
            publisher.delete_topic(request={"topic": topic})
            publisher.delete_topic(request={"topic": dead_topic})
            subscriber.close()
            ledger.close()


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
