"""Relay on loopback behind a real Pub/Sub push subscription on Google's emulator (end-to-end tests).

Shared by the end-to-end test modules through the ``pipeline`` fixture in tests/conftest.py.
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
from shared.ledger.sqlite import SqliteLedger
from tests.fakes.slack_server import FakeSlackServer

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


def make_pipeline(
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
