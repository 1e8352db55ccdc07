"""Each sink classifies every failure as retryable or permanent, with a reason (table-driven)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from shared.errors import DeliveryError
from shared.model import AlertEvent, Source, Status
from shared.sinks.pubsub import Publisher, PubSubSink
from shared.sinks.slack import SlackChannelSink, SlackWebhookSink, WebApiTransport
from shared.sinks.webhook import WebhookSink
from tests.fakes.http import Respond, Stall
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.webhook_server import FakeWebhookServer

EVENT = AlertEvent(
    event_id="e1",
    source=Source.ARGO,
    fingerprint="fp",
    status=Status.FIRING,
    title="Workflow x failed",
    labels={"env": "prod", "team": "ml"},
)


def no_sleep(_: float) -> None:
    return None


def api_sink(server: FakeSlackServer, channel: str = "#alerts", api_url: str = "") -> SlackChannelSink:
    transport = WebApiTransport(
        token=SecretStr(server.token), api_url=api_url or server.api_url, timeout=0.5, sleep=no_sleep
    )
    return SlackChannelSink(key="k", channel=channel, transport=transport)


def failure(sink: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        sink.deliver(EVENT)
    return info.value


SLACK_API_CASES = [
    (
        Respond(status=429, headers={"Retry-After": "60"}, body={"ok": False, "error": "ratelimited"}),
        "rate_limited",
        True,
    ),
    (Respond(status=500, body={"ok": False, "error": "internal_error"}), "server_error", True),
    (Respond(status=503, body="unavailable"), "server_error", True),
    (Respond(body={"ok": False, "error": "fatal_error"}), "server_error", True),
    (Respond(body={"ok": False, "error": "service_unavailable"}), "server_error", True),
    (Stall(seconds=1.5), "timeout", True),
    (Respond(body={"ok": False, "error": "channel_not_found"}), "channel_error", False),
    (Respond(body={"ok": False, "error": "is_archived"}), "channel_error", False),
    (Respond(body={"ok": False, "error": "invalid_auth"}), "auth_error", False),
    (Respond(body={"ok": False, "error": "token_revoked"}), "auth_error", False),
    (Respond(body={"ok": False, "error": "missing_scope"}), "auth_error", False),
    (Respond(body={"ok": False, "error": "invalid_blocks"}), "invalid_request", False),
    (Respond(status=404, body="not found"), "client_error", False),
]


@pytest.mark.parametrize(
    ("answer", "reason", "retryable"),
    SLACK_API_CASES,
    ids=[
        "429",
        "500",
        "503-text",
        "fatal_error",
        "service_unavailable",
        "timeout",
        "channel_not_found",
        "is_archived",
        "invalid_auth",
        "token_revoked",
        "missing_scope",
        "invalid_blocks",
        "404",
    ],
)
def test_slack_api_failure_classification(
    slack_server: FakeSlackServer, answer: Any, reason: str, retryable: bool
) -> None:
    """Every chat.postMessage failure maps to one reason and says whether to retry."""
    slack_server.script("chat.postMessage", [answer, answer])
    error = failure(api_sink(slack_server))
    assert (error.reason.value, error.retryable) == (reason, retryable)


def test_slack_api_success_returns_channel_and_ts(slack_server: FakeSlackServer) -> None:
    """The receipt keeps what a later chat.update needs."""
    receipt = api_sink(slack_server).deliver(EVENT)
    assert receipt["channel"] == "C0ALERTS"
    assert receipt["ts"] == slack_server.posts[0].ts


def test_slack_connection_refused_is_retryable(slack_server: FakeSlackServer) -> None:
    """Nothing listening: a connection error, retried by Pub/Sub."""
    error = failure(api_sink(slack_server, api_url="http://127.0.0.1:9/api/"))
    assert (error.reason.value, error.retryable) == ("connection_error", True)


@pytest.mark.parametrize(
    ("answer", "reason", "retryable"),
    [
        (Respond(status=429, headers={"Retry-After": "60"}, body="rate_limited"), "rate_limited", True),
        (Respond(status=500, body="rollup_error"), "server_error", True),
        (Respond(status=404, body="channel_not_found"), "channel_error", False),
        (Respond(status=410, body="channel_is_archived"), "channel_error", False),
        (Respond(status=403, body="invalid_token"), "auth_error", False),
        (Respond(status=404, body="no_service"), "auth_error", False),
        (Respond(status=400, body="invalid_payload"), "invalid_request", False),
    ],
    ids=["429", "500", "channel-not-found", "archived", "invalid-token", "no-service", "invalid-payload"],
)
def test_slack_webhook_failure_classification(
    slack_server: FakeSlackServer, answer: Respond, reason: str, retryable: bool
) -> None:
    """Incoming-webhook failures (status + text body) map like the Web API's."""
    slack_server.script("webhook", [answer, answer])
    sink = SlackWebhookSink(key="k", url=SecretStr(slack_server.webhook_url), timeout=0.5, sleep=no_sleep)
    error = failure(sink)
    assert (error.reason.value, error.retryable) == (reason, retryable)


def test_slack_webhook_posts_blocks(slack_server: FakeSlackServer) -> None:
    """Webhook mode posts the same Block Kit message to the webhook's channel."""
    sink = SlackWebhookSink(key="k", url=SecretStr(slack_server.webhook_url), timeout=0.5, sleep=no_sleep)
    sink.deliver(EVENT)
    [post] = slack_server.posts
    assert post.channel == "C0ALERTS"
    assert post.blocks


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
        (408, "timeout", True),
        (400, "client_error", False),
        (401, "auth_error", False),
        (403, "auth_error", False),
        (404, "client_error", False),
        (410, "client_error", False),
    ],
)
def test_webhook_status_classification(
    webhook_server: FakeWebhookServer, status: int, reason: str, retryable: bool
) -> None:
    """2xx delivers; 429, 408 and 5xx are retried; other 4xx are permanent."""
    webhook_server.script("/hook", Respond(status=status, body="nope"))
    error = failure(WebhookSink(key="k", url=webhook_server.url_for("/hook"), timeout=0.5))
    assert (error.reason.value, error.retryable) == (reason, retryable)


def test_webhook_timeout_is_retryable(webhook_server: FakeWebhookServer) -> None:
    """A receiver that does not answer in time is retried later."""
    webhook_server.script("/hook", Stall(seconds=1.5))
    error = failure(WebhookSink(key="k", url=webhook_server.url_for("/hook"), timeout=0.3))
    assert (error.reason.value, error.retryable) == ("timeout", True)


def test_webhook_render_shows_what_is_sent_without_the_secret() -> None:
    """`render` shows headers and body; the signature is computed only when sending."""
    request = WebhookSink(key="k", url="https://h.example/x", secret=SecretStr("s3cr3t")).render(EVENT)
    assert request["headers"]["Idempotency-Key"] == "e1"
    assert "s3cr3t" not in json.dumps(request)
    assert request["body"]["event_id"] == "e1"


@pytest.mark.emulator
def test_pubsub_sink_publishes_the_event_with_filter_attributes(pubsub_env: str) -> None:
    """The downstream topic receives the normalised event as JSON with attributes for filters."""
    from google.cloud import pubsub_v1

    from localdev.emulators import PROJECT, unique_name

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, unique_name("status"))).name
    sub = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, unique_name("s")), topic=topic
    ).name
    sink = PubSubSink(key="k", topic=topic, publisher=Publisher(timeout=10))
    receipt = sink.deliver(EVENT)
    response = subscriber.pull(subscription=sub, max_messages=1, timeout=10)
    [received] = response.received_messages
    assert received.message.message_id == receipt["message_id"]
    assert json.loads(received.message.data)["event_id"] == "e1"
    assert dict(received.message.attributes) == {
        "schema_version": "1",
        "event_id": "e1",
        "source": "argo",
        "fingerprint": "fp",
        "status": "firing",
        "severity": "error",
        "env": "prod",
        "team": "ml",
    }


@pytest.mark.emulator
def test_pubsub_sink_missing_topic_is_permanent(pubsub_env: str) -> None:
    """Publishing to a topic that does not exist will not fix itself."""
    sink = PubSubSink(
        key="k", topic="projects/local-project/topics/does-not-exist", publisher=Publisher(timeout=10)
    )
    error = failure(sink)
    assert (error.reason.value, error.retryable) == ("client_error", False)
