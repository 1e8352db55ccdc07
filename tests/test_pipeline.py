"""The pipeline against a loopback Slack and webhook server: nothing lost, nothing posted twice."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.config import load_settings
from shared.envelope import InboundMessage
from shared.errors import DeliveryError, Reason
from shared.ledger import ClaimState, DeadLetterRecord, Ledger
from shared.ledger.memory import MemoryLedger
from shared.pipeline import Disposition, Fate, Outcome, Relay
from shared.routing import load_routes_text
from shared.wiring import build_relay
from tests.fakes.http import Respond, Stall
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.webhook_server import FakeWebhookServer

HOOK_SECRET = "whsec-test-secret"

ROUTES = """
version: 1
receivers:
  alerts: {slack: [{channel: "#alerts"}]}
  hook: {webhook: [{url: "%(hook)s", secret_env: HOOK_SECRET}]}
routes:
  - name: failures
    matchers: ['status="firing"']
    receivers: [alerts, hook]
    suppress_for: 30m
default: {receivers: [alerts]}
"""


def argo(name: str = "train-abcde", uid: str = "uid-1", status: str = "Failed", **workflow: Any) -> bytes:
    payload = {
        "source": "argo",
        "version": 1,
        "workflow": {
            "name": name,
            "namespace": "ml",
            "uid": uid,
            "status": status,
            "failures": '"null"',
            **workflow,
        },
    }
    return json.dumps(payload).encode()


def message(data: bytes, message_id: str = "m1", attempt: int | None = None) -> InboundMessage:
    return InboundMessage(data=data, message_id=message_id, delivery_attempt=attempt, transport="push")


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def relay(
    slack_server: FakeSlackServer,
    webhook_server: FakeWebhookServer,
    ledger: Ledger,
    fixed_clock: Any,
    sleeps: Any,
) -> Relay:
    settings = load_settings(
        slack_bot_token=slack_server.token,
        slack_api_url=slack_server.api_url,
        relay_ledger="memory",
        relay_http_timeout=0.5,
        relay_max_retry_wait=5,
        relay_max_attempts=5,
    )
    routing = load_routes_text(ROUTES % {"hook": webhook_server.url_for("/hook")})
    return build_relay(
        settings,
        routing=routing,
        ledger=ledger,
        clock=fixed_clock.now,
        env={"HOOK_SECRET": HOOK_SECRET},
        sleep=sleeps,
    )


def fates(outcome: Outcome) -> dict[str, Fate]:
    return {r.sink: r.fate for r in outcome.results if r.sink}


class TestDelivery:
    def test_event_reaches_every_routed_sink_and_is_acked(
        self, relay: Relay, slack_server: FakeSlackServer, webhook_server: FakeWebhookServer
    ) -> None:
        """A failure is posted to Slack and POSTed to the webhook once, then acked."""
        outcome = relay.handle(message(argo()))
        assert outcome.disposition is Disposition.ACK
        assert outcome.http_status == 200
        assert [p.channel for p in slack_server.posts] == ["C0ALERTS"]
        assert len(webhook_server.received) == 1

    def test_webhook_is_signed_with_hmac_sha256(
        self, relay: Relay, webhook_server: FakeWebhookServer
    ) -> None:
        """The receiver can verify the body with the shared secret and the timestamp header."""
        relay.handle(message(argo()))
        hook = webhook_server.received[0]
        timestamp = hook.header("X-Alert-Relay-Timestamp")
        expected = hmac.new(
            HOOK_SECRET.encode(), f"{timestamp}.".encode() + hook.body, hashlib.sha256
        ).hexdigest()
        assert hook.header("X-Alert-Relay-Signature") == f"v1={expected}"
        assert hook.header("Idempotency-Key") == hook.json()["event_id"]

    def test_redelivered_message_is_not_posted_twice(
        self, relay: Relay, slack_server: FakeSlackServer, webhook_server: FakeWebhookServer
    ) -> None:
        """Pub/Sub redelivering an acked message causes no second post anywhere."""
        relay.handle(message(argo()))
        again = relay.handle(message(argo(), attempt=2))
        assert again.disposition is Disposition.ACK
        assert set(fates(again).values()) == {Fate.ALREADY_DELIVERED}
        assert len(slack_server.posts) == 1
        assert len(webhook_server.received) == 1


class TestSlackFailures:
    def test_429_within_budget_is_retried_inside_the_request(
        self, relay: Relay, slack_server: FakeSlackServer, sleeps: Any
    ) -> None:
        """Retry-After: 2 fits the budget: the relay waits 2 s (injected) and posts once."""
        slack_server.script(
            "chat.postMessage",
            Respond(status=429, headers={"Retry-After": "2"}, body={"ok": False, "error": "ratelimited"}),
        )
        outcome = relay.handle(message(argo()))
        assert outcome.disposition is Disposition.ACK
        assert sleeps.calls == [2.0]
        assert len(slack_server.posts) == 1

    def test_429_beyond_budget_nacks_then_redelivery_posts_once(
        self, relay: Relay, slack_server: FakeSlackServer, sleeps: Any
    ) -> None:
        """Retry-After: 30 is left to Pub/Sub's backoff; the redelivery posts exactly once."""
        slack_server.script(
            "chat.postMessage",
            Respond(status=429, headers={"Retry-After": "30"}, body={"ok": False, "error": "ratelimited"}),
        )
        first = relay.handle(message(argo()))
        assert (first.disposition, first.http_status, first.reason) == (Disposition.NACK, 503, "rate_limited")
        assert sleeps.calls == []
        assert slack_server.posts == []
        second = relay.handle(message(argo(), attempt=2))
        assert second.disposition is Disposition.ACK
        assert len(slack_server.posts) == 1

    def test_500_is_retried_once_then_nacked(self, relay: Relay, slack_server: FakeSlackServer) -> None:
        """Two 500s in a row: one in-request retry, then the message goes back to Pub/Sub."""
        error = Respond(status=500, body={"ok": False, "error": "internal_error"})
        slack_server.script("chat.postMessage", [error, error])
        outcome = relay.handle(message(argo()))
        assert (outcome.disposition, outcome.reason) == (Disposition.NACK, "server_error")
        assert len(slack_server.calls_to("chat.postMessage")) == 2
        assert relay.handle(message(argo(), attempt=2)).disposition is Disposition.ACK
        assert len(slack_server.posts) == 1

    def test_timeout_nacks_and_the_retry_posts_once(
        self, relay: Relay, slack_server: FakeSlackServer
    ) -> None:
        """Slack not answering within the timeout: no retry in-request, nack, one post on redelivery."""
        slack_server.script("chat.postMessage", Stall(seconds=1.5))
        outcome = relay.handle(message(argo()))
        assert (outcome.disposition, outcome.reason) == (Disposition.NACK, "timeout")
        assert slack_server.posts == []
        assert relay.handle(message(argo(), attempt=2)).disposition is Disposition.ACK
        assert len(slack_server.posts) == 1

    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            ("channel_not_found", "channel_error"),
            ("not_in_channel", "channel_error"),
            ("invalid_blocks", "invalid_request"),
        ],
    )
    def test_permanent_slack_error_is_dead_lettered_and_acked(
        self, relay: Relay, slack_server: FakeSlackServer, ledger: MemoryLedger, error: str, reason: str
    ) -> None:
        """A Slack answer that can never succeed goes to the dead letters with its reason, at once."""
        slack_server.script("chat.postMessage", Respond(body={"ok": False, "error": error}))
        outcome = relay.handle(message(argo()))
        assert (outcome.disposition, outcome.dead_lettered, outcome.reason) == (Disposition.ACK, True, reason)
        [dead] = ledger.dead_letters()
        assert (dead.reason, dead.data, dead.event_id) == (reason, argo(), outcome.event.event_id)  # type: ignore[union-attr]
        assert error in dead.detail

    def test_invalid_token_is_permanent(self, relay: Relay, slack_server: FakeSlackServer) -> None:
        """invalid_auth will not fix itself: dead-lettered (after a config fix it can be replayed)."""
        slack_server.script("chat.postMessage", Respond(body={"ok": False, "error": "invalid_auth"}))
        assert relay.handle(message(argo())).reason == "auth_error"


class TestFanOut:
    def test_half_failed_fan_out_resumes_only_the_missing_sink(
        self, relay: Relay, slack_server: FakeSlackServer, webhook_server: FakeWebhookServer
    ) -> None:
        """Slack succeeded and the webhook failed: the redelivery sends only to the webhook."""
        webhook_server.script("/hook", Respond(status=503, body="busy"))
        first = relay.handle(message(argo()))
        assert first.disposition is Disposition.NACK
        assert len(slack_server.posts) == 1
        second = relay.handle(message(argo(), attempt=2))
        assert second.disposition is Disposition.ACK
        assert sorted(fates(second).values()) == [Fate.ALREADY_DELIVERED, Fate.DELIVERED]
        assert len(slack_server.posts) == 1
        assert len(webhook_server.received) == 1

    def test_last_attempt_dead_letters_with_the_reason(
        self, relay: Relay, webhook_server: FakeWebhookServer, ledger: MemoryLedger
    ) -> None:
        """On the last attempt the relay dead-letters with the reason rather than letting Pub/Sub drop it."""
        webhook_server.script("/hook", Respond(status=503, body="busy"))
        outcome = relay.handle(message(argo(), attempt=5))
        assert (outcome.disposition, outcome.reason) == (Disposition.ACK, "retries_exhausted")
        assert "hook/webhook" in ledger.dead_letters()[0].detail

    def test_instance_holding_the_lease_makes_others_wait(
        self, relay: Relay, slack_server: FakeSlackServer, ledger: MemoryLedger, fixed_clock: Any
    ) -> None:
        """Another instance is mid-delivery: this one nacks instead of posting a duplicate."""
        from shared.sources import parse

        event = parse(message(argo()))
        claim = ledger.claim(
            event_id=event.event_id,
            sink="alerts/slack:#alerts",
            now=fixed_clock.now(),
            lease=timedelta(minutes=5),
        )
        assert claim.state is ClaimState.ACQUIRED
        outcome = relay.handle(message(argo()))
        assert (outcome.disposition, outcome.reason) == (Disposition.NACK, "in_progress")
        assert slack_server.posts == []


class TestInput:
    @pytest.mark.parametrize(
        ("data", "reason", "words"),
        [
            (b"{not json", "malformed_payload", "not valid JSON"),
            (b"\xff\xfe", "malformed_payload", "not UTF-8"),
            (b"[1, 2]", "malformed_payload", "must be a JSON object"),
            (b'{"hello": "world"}', "unknown_source", "cannot tell the source"),
            (b'{"source": "argo", "workflow": {"namespace": "ml"}}', "malformed_payload", "workflow.name"),
            (b'{"incident": {"state": "open"}}', "malformed_payload", "incident_id"),
        ],
        ids=[
            "not-json",
            "not-utf8",
            "not-object",
            "unknown-shape",
            "argo-without-name",
            "incident-without-id",
        ],
    )
    def test_unreadable_payload_is_dead_lettered_and_acked(
        self,
        relay: Relay,
        slack_server: FakeSlackServer,
        ledger: MemoryLedger,
        data: bytes,
        reason: str,
        words: str,
    ) -> None:
        """Input that can never succeed is kept with its reason and acked, never retried forever."""
        outcome = relay.handle(message(data, message_id="bad-1"))
        assert (outcome.disposition, outcome.dead_lettered, outcome.reason) == (Disposition.ACK, True, reason)
        assert words in outcome.detail
        [dead] = ledger.dead_letters()
        assert (dead.key, dead.data) == ("bad-1", data)
        assert [e.outcome for e in ledger.trace("message:bad-1")] == ["dead_lettered", "handled"]
        assert slack_server.posts == []

    def test_unknown_source_attribute_is_rejected_by_name(self, relay: Relay) -> None:
        """A publisher declaring a source we do not know gets a reason naming it."""
        msg = InboundMessage(data=argo(), attributes={"source": "nagios"}, message_id="m9")
        assert "unknown source attribute 'nagios'" in relay.handle(msg).detail

    def test_dead_letter_store_failure_nacks(self, slack_server: FakeSlackServer, fixed_clock: Any) -> None:
        """If the dead letter cannot be written the message stays in Pub/Sub: nothing is lost."""

        class Unavailable:
            destination = "projects/p/topics/dead"

            def put(self, record: DeadLetterRecord) -> None:
                raise DeliveryError(
                    "pubsub publish: ServiceUnavailable", reason=Reason.SERVER_ERROR, retryable=True
                )

        base = build_relay(
            load_settings(
                slack_bot_token=slack_server.token, slack_api_url=slack_server.api_url, relay_ledger="memory"
            ),
            clock=fixed_clock.now,
            env={},
        )
        relay = Relay(routing=base.routing, sinks=base.sinks, ledger=base.ledger, dead_letter=Unavailable())
        outcome = relay.handle(message(b"{not json"))
        assert (outcome.disposition, outcome.reason) == (Disposition.NACK, "dead_letter_failed")


class TestRepeats:
    def test_repeat_within_window_is_counted_not_posted(
        self, relay: Relay, slack_server: FakeSlackServer, fixed_clock: Any
    ) -> None:
        """The same workflow failing again 10 minutes later is suppressed and counted."""
        relay.handle(message(argo(uid="run-1"), "m1"))
        fixed_clock.advance(600)
        outcome = relay.handle(message(argo(uid="run-2"), "m2"))
        assert outcome.disposition is Disposition.ACK
        assert outcome.summary == "suppressed"
        assert "repeat #1" in outcome.results[0].detail
        assert len(slack_server.posts) == 1

    def test_repeats_update_the_counter_and_one_reply_per_window(
        self, relay: Relay, slack_server: FakeSlackServer, fixed_clock: Any
    ) -> None:
        """Suppressed repeats update the counter; after the window: one thread reply, not a new post."""
        for n in range(3):
            relay.handle(message(argo(uid=f"run-{n}"), f"m{n}"))
            fixed_clock.advance(60)
        fixed_clock.advance(1800)
        relay.handle(message(argo(uid="run-9"), "m9"))
        calls = [c.route for c in slack_server.calls]
        assert calls == ["chat.postMessage", "chat.update", "chat.update", "chat.update", "chat.postMessage"]
        original, reply = slack_server.posts
        assert reply.thread_ts == original.ts
        assert [u.ts for u in slack_server.updates] == [original.ts] * 3
        assert "repeated 3 times" in json.dumps(slack_server.updates[-1].blocks)
        assert "3 repeats so far" in reply.text

    def test_resolution_is_never_suppressed_as_a_repeat(
        self, relay: Relay, slack_server: FakeSlackServer
    ) -> None:
        """A success right after a failure is a status change, not a repeat."""
        relay.handle(message(argo(uid="run-1"), "m1"))
        outcome = relay.handle(message(argo(uid="run-2", status="Succeeded"), "m2"))
        assert outcome.summary == "delivered"
        assert len(slack_server.posts) == 2
