"""The test doubles behave like the real services, as seen through the real client libraries."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.http_retry import builtin_handlers as slack_retry_handlers
from slack_sdk.webhook import WebhookClient

from localdev.emulators import PROJECT, missing_reason, unique_name
from tests.fakes import FakeClock, FakeSlackServer, FakeWebhookServer, Respond, SleepRecorder, Stall

TS_RE = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
def client(slack_server: FakeSlackServer) -> WebClient:
    return WebClient(token=slack_server.token, base_url=slack_server.api_url, timeout=5)


# -- chat.postMessage ------------------------------------------------------------------------------


def test_post_message_ok_returns_real_looking_increasing_ts(
    client: WebClient, slack_server: FakeSlackServer
) -> None:
    first = client.chat_postMessage(channel="C0ALERTS", text="disk full", blocks=[{"type": "divider"}])
    second = client.chat_postMessage(channel="C0PLATFORM", text="cpu hot")

    assert first["ok"] is True and first["channel"] == "C0ALERTS"
    assert TS_RE.match(first["ts"]) and TS_RE.match(second["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["text"] == "disk full"
    assert first["message"]["blocks"] == [{"type": "divider"}]

    assert [(p.channel, p.ts, p.text, p.via) for p in slack_server.posts] == [
        ("C0ALERTS", first["ts"], "disk full", "chat.postMessage"),
        ("C0PLATFORM", second["ts"], "cpu hot", "chat.postMessage"),
    ]
    call = slack_server.calls[0]
    assert (call.method, call.path, call.route, call.status) == (
        "POST",
        "/api/chat.postMessage",
        "chat.postMessage",
        200,
    )
    assert call.header("Authorization") == "Bearer xoxb-test-token"
    assert call.header("content-type").startswith("application/json")
    assert call.body["channel"] == "C0ALERTS"


def test_post_by_channel_name_answers_channel_id(client: WebClient, slack_server: FakeSlackServer) -> None:
    resp = client.chat_postMessage(channel="#alerts", text="hi")

    assert resp["channel"] == "C0ALERTS"
    assert [p.ts for p in slack_server.posts_in("#alerts")] == [resp["ts"]]
    assert slack_server.posts_in("C0PLATFORM") == []


def test_form_encoded_post_is_parsed_like_slack(client: WebClient, slack_server: FakeSlackServer) -> None:
    # Some callers send form bodies; Slack then carries blocks as a JSON string.
    resp = client.api_call(
        "chat.postMessage",
        data={"channel": "C0RESOLVED", "text": "resolved", "blocks": json.dumps([{"type": "divider"}])},
    )

    assert resp["ok"] is True
    assert slack_server.posts[0].blocks == [{"type": "divider"}]
    assert slack_server.calls[0].header("content-type").startswith("application/x-www-form-urlencoded")


def test_unknown_channel_raises_channel_not_found(client: WebClient, slack_server: FakeSlackServer) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0NOPE", text="x")

    assert exc.value.response.status_code == 200
    assert exc.value.response["error"] == "channel_not_found"
    assert slack_server.posts == []


@pytest.mark.parametrize(("token", "error"), [("xoxb-wrong", "invalid_auth"), (None, "not_authed")])
def test_bad_or_missing_token(slack_server: FakeSlackServer, token: str | None, error: str) -> None:
    client = WebClient(token=token, base_url=slack_server.api_url, timeout=5)

    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0ALERTS", text="x")

    assert exc.value.response["error"] == error
    assert slack_server.posts == []


def test_no_text_and_too_many_blocks_are_rejected(client: WebClient, slack_server: FakeSlackServer) -> None:
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="`text` argument is missing"):
        client.chat_postMessage(channel="C0ALERTS", text="")
    assert exc.value.response["error"] == "no_text"

    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0ALERTS", text="x", blocks=[{"type": "divider"}] * 51)
    assert exc.value.response["error"] == "invalid_blocks"
    assert exc.value.response["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert slack_server.posts == []


# -- scripted failures -----------------------------------------------------------------------------


def test_429_exposes_retry_after_and_is_not_recorded(
    client: WebClient, slack_server: FakeSlackServer
) -> None:
    slack_server.script(
        "chat.postMessage",
        [Respond(status=429, headers={"Retry-After": "1"}, body={"ok": False, "error": "ratelimited"})],
    )

    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0ALERTS", text="x")

    assert exc.value.response.status_code == 429
    assert exc.value.response["error"] == "ratelimited"
    assert exc.value.response.headers["Retry-After"] == "1"
    assert slack_server.posts == []
    assert slack_server.pending() == 0
    # The script is consumed: the next call gets normal behaviour.
    assert client.chat_postMessage(channel="C0ALERTS", text="x")["ok"] is True
    assert [c.status for c in slack_server.calls] == [429, 200]


def test_scripts_apply_in_order_to_matching_calls_only(
    client: WebClient, slack_server: FakeSlackServer
) -> None:
    slack_server.script(
        "chat.postMessage",
        [
            Respond(status=500, body={"ok": False, "error": "internal_error"}),
            Respond(body={"ok": False, "error": "channel_not_found"}),
        ],
    )

    assert client.auth_test()["ok"] is True  # other routes are unaffected
    errors = []
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C0ALERTS", text="x")
        errors.append((exc.value.response.status_code, exc.value.response["error"]))

    assert errors == [(500, "internal_error"), (200, "channel_not_found")]
    assert slack_server.posts == []
    assert [(c.route, c.status) for c in slack_server.calls] == [
        ("auth.test", 200),
        ("chat.postMessage", 500),
        ("chat.postMessage", 200),
    ]


def test_rate_limit_retry_handler_retries_and_succeeds(
    slack_server: FakeSlackServer, sleeps: SleepRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack_sdk sleeps Retry-After + random() seconds; record the sleep instead of waiting for it.
    monkeypatch.setattr(slack_retry_handlers, "time", SimpleNamespace(sleep=sleeps))
    slack_server.script(
        "chat.postMessage",
        Respond(status=429, headers={"Retry-After": "0"}, body={"ok": False, "error": "ratelimited"}),
    )
    client = WebClient(
        token=slack_server.token,
        base_url=slack_server.api_url,
        timeout=5,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )

    resp = client.chat_postMessage(channel="C0ALERTS", text="after backoff")

    assert resp["ok"] is True
    assert [c.status for c in slack_server.calls] == [429, 200]
    assert [p.text for p in slack_server.posts] == ["after backoff"]
    assert len(sleeps.calls) == 1 and 0 <= sleeps.calls[0] < 1


def test_stall_triggers_client_timeout_and_is_not_recorded(slack_server: FakeSlackServer) -> None:
    slack_server.script("chat.postMessage", Stall(seconds=0.6))
    client = WebClient(token=slack_server.token, base_url=slack_server.api_url, timeout=0.3)

    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C0ALERTS", text="lost")

    assert slack_server.posts == []
    [call] = slack_server.calls
    assert call.status is None and isinstance(call.action, Stall)
    # The server is not wedged by the stalled request.
    assert client.chat_postMessage(channel="C0ALERTS", text="next")["ok"] is True
    assert [p.text for p in slack_server.posts] == ["next"]


def test_stall_with_deliver_posts_although_client_timed_out(slack_server: FakeSlackServer) -> None:
    # The duplicate-post hazard: Slack did the work, the client never saw the answer.
    slack_server.script("chat.postMessage", Stall(seconds=0.4, deliver=True))
    client = WebClient(token=slack_server.token, base_url=slack_server.api_url, timeout=0.15)

    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C0ALERTS", text="maybe")

    slack_server.wait_for(lambda s: len(s.posts) == 1, timeout=2, what="the stalled post")
    assert slack_server.posts[0].text == "maybe"


def test_reset_forgets_calls_posts_and_scripts(client: WebClient, slack_server: FakeSlackServer) -> None:
    first = client.chat_postMessage(channel="C0ALERTS", text="x")
    slack_server.script("chat.postMessage", Respond(status=500))

    slack_server.reset()

    assert (slack_server.calls, slack_server.posts, slack_server.pending()) == ([], [], 0)
    second = client.chat_postMessage(channel="C0ALERTS", text="y")
    assert float(second["ts"]) > float(first["ts"])  # ts stay unique across resets


# -- chat.update -----------------------------------------------------------------------------------


def test_update_of_posted_message(client: WebClient, slack_server: FakeSlackServer) -> None:
    posted = client.chat_postMessage(channel="#alerts", text="FIRING")

    resp = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="RESOLVED")

    assert (resp["ok"], resp["channel"], resp["ts"], resp["text"]) == (
        True,
        "C0ALERTS",
        posted["ts"],
        "RESOLVED",
    )
    assert resp["message"]["text"] == "RESOLVED"
    assert [(u.channel, u.ts, u.text) for u in slack_server.updates] == [
        ("C0ALERTS", posted["ts"], "RESOLVED")
    ]
    assert slack_server.message("C0ALERTS", posted["ts"])["text"] == "RESOLVED"
    assert len(slack_server.posts) == 1  # an update is not a new post


def test_update_of_unknown_ts_is_message_not_found(client: WebClient, slack_server: FakeSlackServer) -> None:
    client.chat_postMessage(channel="C0ALERTS", text="FIRING")

    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C0ALERTS", ts="1767225600.999900", text="RESOLVED")

    assert exc.value.response["error"] == "message_not_found"
    assert slack_server.updates == []


# -- incoming webhooks -----------------------------------------------------------------------------


def test_incoming_webhook_ok(slack_server: FakeSlackServer) -> None:
    resp = WebhookClient(slack_server.webhook_url, timeout=5).send(text="hello", blocks=[{"type": "divider"}])

    assert (resp.status_code, resp.body) == (200, "ok")
    [post] = slack_server.posts
    assert (post.channel, post.text, post.blocks, post.via) == (
        "C0ALERTS",
        "hello",
        [{"type": "divider"}],
        "webhook",
    )


def test_incoming_webhook_unknown_path_is_404_no_service(slack_server: FakeSlackServer) -> None:
    resp = WebhookClient(f"{slack_server.url}/services/T0/B0/nope", timeout=5).send(text="hello")

    assert (resp.status_code, resp.body) == (404, "no_service")
    assert slack_server.posts == []


def test_incoming_webhook_scripted_rate_limit(slack_server: FakeSlackServer) -> None:
    slack_server.script("webhook", Respond(status=429, headers={"Retry-After": "3"}, body="rate_limited"))

    resp = WebhookClient(slack_server.webhook_url, timeout=5).send(text="hello")

    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    assert slack_server.posts == []


# -- generic webhook receiver ----------------------------------------------------------------------


def _post(url: str, payload: object, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "X-Relay-Signature": "sig"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def test_webhook_server_records_and_scripts(webhook_server: FakeWebhookServer) -> None:
    url = webhook_server.url_for("/hooks/sink")
    webhook_server.script("/hooks/sink", [Respond(status=503, body={"error": "busy"})])

    assert _post(url, {"n": 1}) == (503, b'{"error": "busy"}')
    assert _post(url, {"n": 2}) == (200, b"")

    [received] = webhook_server.received  # only what the sink accepted
    assert (received.method, received.path, received.json()) == ("POST", "/hooks/sink", {"n": 2})
    assert received.body == b'{"n": 2}'
    assert received.header("x-relay-signature") == "sig"
    assert [c.status for c in webhook_server.calls] == [503, 200]


def test_webhook_server_stall_times_out_and_is_not_received(webhook_server: FakeWebhookServer) -> None:
    webhook_server.script("*", Stall(seconds=0.5))

    with pytest.raises(TimeoutError):
        _post(webhook_server.url_for("/any"), {"n": 1}, timeout=0.2)

    assert webhook_server.received == []
    assert len(webhook_server.calls) == 1


# -- fixtures --------------------------------------------------------------------------------------


def test_environment_is_isolated() -> None:
    leaked = [k for k in os.environ if k.startswith(("RELAY_", "SLACK_", "GOOGLE_CLOUD_PROJECT"))]
    assert leaked == []
    assert "PUBSUB_EMULATOR_HOST" not in os.environ


def test_fixed_clock_and_sleeps(fixed_clock: FakeClock, sleeps: SleepRecorder) -> None:
    assert fixed_clock.now() == dt.datetime(2026, 5, 2, 9, 0, tzinfo=dt.UTC)
    assert fixed_clock.now().tzinfo is not None

    sleeps(1.5)
    fixed_clock.advance(60)

    assert sleeps.calls == [1.5] and sleeps.total == 1.5
    assert fixed_clock.now() == dt.datetime(2026, 5, 2, 9, 1, 1, 500000, tzinfo=dt.UTC)
    assert fixed_clock.monotonic() == 61.5


def test_missing_reason_is_clear(tmp_path: Path) -> None:
    reason = missing_reason("pubsub", tmp_path)

    assert reason == (
        f"Pub/Sub emulator not installed: {tmp_path}/platform/pubsub-emulator/bin/cloud-pubsub-emulator "
        "missing (package google-cloud-cli-pubsub-emulator)"
    )
    assert "google-cloud-cli-firestore-emulator" in (missing_reason("firestore", tmp_path) or "")


# -- Google emulators ------------------------------------------------------------------------------


@pytest.mark.emulator
def test_pubsub_emulator_round_trip(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, unique_name("alerts"))
    subscription = subscriber.subscription_path(PROJECT, unique_name("alerts-sub"))
    try:
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)

        publisher.publish(topic, b'{"alert": "disk"}', source="test").result(timeout=10)
        resp = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)

        [received] = resp.received_messages
        assert received.message.data == b'{"alert": "disk"}'
        assert received.message.attributes["source"] == "test"
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
    finally:
        subscriber.close()
        publisher.transport.close()


@pytest.mark.emulator
def test_firestore_emulator_answers_rest(firestore_env: str) -> None:
    # google-cloud-firestore is not a dependency yet; the REST API proves the fixture works.
    base = f"http://{firestore_env}/v1/projects/{PROJECT}/databases/(default)/documents"
    doc_id = unique_name("doc")
    status, _ = _post(f"{base}/dedup?documentId={doc_id}", {"fields": {"n": {"integerValue": "1"}}})
    assert status == 200

    with urllib.request.urlopen(f"{base}/dedup/{doc_id}", timeout=5) as resp:
        assert json.load(resp)["fields"]["n"] == {"integerValue": "1"}
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == firestore_env
