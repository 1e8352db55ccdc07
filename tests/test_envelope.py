"""Decoding what reaches the relay: push envelopes, CloudEvents, bare payloads, and broken input."""

from __future__ import annotations

import base64
import json

import pytest

from shared.envelope import decode, push_envelope
from shared.errors import Reason, UnsupportedPayload

DATA = b'{"source": "argo"}'
B64 = base64.b64encode(DATA).decode()


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("raw", "headers", "expected"),
    [
        (
            body(
                {
                    "message": {"data": B64, "messageId": "1", "publishTime": "t"},
                    "subscription": "s",
                    "deliveryAttempt": 3,
                }
            ),
            {},
            {
                "message_id": "1",
                "publish_time": "t",
                "delivery_attempt": 3,
                "subscription": "s",
                "transport": "push",
            },
        ),
        (
            body({"message": {"data": B64, "message_id": "2", "publish_time": "t2"}, "subscription": "s"}),
            {},
            {"message_id": "2", "publish_time": "t2", "delivery_attempt": None, "transport": "push"},
        ),
        (
            body(
                {
                    "message": {"data": B64, "messageId": "3", "attributes": {"source": "argo"}},
                    "subscription": "s",
                }
            ),
            {},
            {"message_id": "3", "attributes": {"source": "argo"}},
        ),
        (
            body(
                {
                    "message": {
                        "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
                        "data": B64,
                        "messageId": "4",
                    },
                    "subscription": "s",
                }
            ),
            {
                "ce-id": "4",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-specversion": "1.0",
                "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
            },
            {"message_id": "4", "transport": "cloudevent"},
        ),
        (
            body({"message": {"data": B64}}),
            {
                "Ce-Id": "5",
                "Ce-Type": "google.cloud.pubsub.topic.v1.messagePublished",
                "Ce-Specversion": "1.0",
                "Ce-Time": "t5",
            },
            {"message_id": "5", "publish_time": "t5", "transport": "cloudevent"},
        ),
        (
            body(
                {
                    "specversion": "1.0",
                    "type": "google.cloud.pubsub.topic.v1.messagePublished",
                    "id": "6",
                    "source": "x",
                    "data": {"message": {"data": B64}},
                }
            ),
            {"Content-Type": "application/cloudevents+json"},
            {"message_id": "6", "transport": "cloudevent"},
        ),
        (DATA, {}, {"transport": "bare"}),
    ],
    ids=[
        "push",
        "push-snake-case",
        "push-attributes",
        "cloudevent-binary",
        "cloudevent-binary-fallback-id",
        "cloudevent-structured",
        "bare",
    ],
)
def test_every_transport_yields_the_same_payload(
    raw: bytes, headers: dict[str, str], expected: dict[str, object]
) -> None:
    """Whatever the wrapping, the payload bytes and transport metadata come out the same."""
    message = decode(raw, headers)
    assert message.data == DATA
    for key, value in expected.items():
        assert getattr(message, key) == value


def test_missing_attributes_read_as_empty() -> None:
    """Attributes are optional in push envelopes."""
    assert decode(body({"message": {"data": B64, "messageId": "1"}, "subscription": "s"})).attributes == {}


@pytest.mark.parametrize(
    ("raw", "headers", "words"),
    [
        (b"not json", {}, "body is not valid JSON"),
        (b"[1]", {}, "must be a JSON object"),
        (body({"message": {"data": "%%%"}, "subscription": "s"}), {}, "not valid base64"),
        (body({"message": {"data": 5}, "subscription": "s"}), {}, "must be a base64 string"),
        (
            body({"message": {"data": B64, "attributes": {"a": 1}}, "subscription": "s"}),
            {},
            "object of strings",
        ),
        (
            body({"message": {"data": B64}, "subscription": "s", "deliveryAttempt": "3"}),
            {},
            "deliveryAttempt",
        ),
        (
            body({}),
            {"ce-type": "google.cloud.storage.object.v1.finalized", "ce-specversion": "1.0"},
            "unsupported CloudEvent type",
        ),
        (body({"specversion": "1.0", "type": "x", "data": {}}), {}, "unsupported CloudEvent type 'x'"),
        (b"x" * (10 * 1024 * 1024 + 1), {}, "over the"),
    ],
    ids=[
        "not-json",
        "not-object",
        "bad-base64",
        "data-not-string",
        "attribute-not-string",
        "attempt-not-int",
        "ce-wrong-type",
        "structured-wrong-type",
        "too-big",
    ],
)
def test_broken_input_is_a_permanent_error_naming_the_problem(
    raw: bytes, headers: dict[str, str], words: str
) -> None:
    """Malformed wrapping raises UnsupportedPayload (malformed_envelope) with a clear message."""
    with pytest.raises(UnsupportedPayload) as info:
        decode(raw, headers)
    assert info.value.reason is Reason.MALFORMED_ENVELOPE
    assert not info.value.retryable
    assert words in str(info.value)


def test_push_envelope_round_trips() -> None:
    """The helper the CLI and local run use builds what Pub/Sub sends."""
    envelope = push_envelope(DATA, attributes={"source": "argo"}, message_id="9", delivery_attempt=2)
    message = decode(body(envelope))
    assert (message.data, message.message_id, message.delivery_attempt) == (DATA, "9", 2)
    assert dict(message.attributes) == {"source": "argo"}
