"""Decode how a message reaches the relay into one ``InboundMessage``; no business logic here.

Accepted shapes (see README "Input formats"):
- a Pub/Sub push envelope (wrapped format): ``{"message": {...}, "subscription": ..., "deliveryAttempt": N}``;
- a CloudEvent in binary mode (``ce-*`` headers, body = MessagePublishedData) as Eventarc sends it;
- a CloudEvent in structured mode (``application/cloudevents+json``);
- a bare payload (anything else that is a JSON object): a source payload given directly, as the CLI does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Reason, UnsupportedPayload

PUBSUB_CLOUDEVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
MAX_BODY_BYTES = 10 * 1024 * 1024  # Pub/Sub's own message limit


@dataclass(frozen=True)
class InboundMessage:
    """The raw message as received: bytes of the payload plus transport metadata."""

    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: str = ""
    delivery_attempt: int | None = None
    subscription: str = ""
    transport: str = "bare"  # push | cloudevent | bare

    def json(self) -> Any:
        """The payload decoded as JSON; a clear permanent error when it is not."""
        try:
            # Decode explicitly: json.loads(bytes) would guess UTF-16/32 from the first bytes.
            return json.loads(self.data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise UnsupportedPayload(
                f"message data is not UTF-8 text: {exc.reason} at byte {exc.start}",
                reason=Reason.MALFORMED_PAYLOAD,
            ) from None
        except json.JSONDecodeError as exc:
            raise UnsupportedPayload(
                f"message data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                reason=Reason.MALFORMED_PAYLOAD,
            ) from None


def _malformed(message: str) -> UnsupportedPayload:
    return UnsupportedPayload(message, reason=Reason.MALFORMED_ENVELOPE)


def _decode_data(raw: Any, where: str) -> bytes:
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise _malformed(f"{where}.data must be a base64 string, got {type(raw).__name__}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{where}.data is not valid base64") from None


def _attributes(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise _malformed(f"{where}.attributes must be an object of strings")
    return dict(raw)


def _from_message_published(
    body: Mapping[str, Any], *, where: str, transport: str, fallback_id: str = "", fallback_time: str = ""
) -> InboundMessage:
    message = body.get("message")
    if not isinstance(message, dict):
        raise _malformed(f"{where}.message must be an object")
    attempt = body.get("deliveryAttempt", body.get("delivery_attempt"))
    if attempt is not None and not isinstance(attempt, int):
        raise _malformed(f"{where}.deliveryAttempt must be an integer")
    return InboundMessage(
        data=_decode_data(message.get("data"), f"{where}.message"),
        attributes=_attributes(message.get("attributes"), f"{where}.message"),
        # Pub/Sub may send camelCase, snake_case or both; prefer camelCase.
        message_id=str(message.get("messageId") or message.get("message_id") or fallback_id),
        publish_time=str(message.get("publishTime") or message.get("publish_time") or fallback_time),
        delivery_attempt=attempt or None,
        subscription=str(body.get("subscription") or ""),
        transport=transport,
    )


def decode(body: bytes, headers: Mapping[str, str] | None = None) -> InboundMessage:
    """Turn an HTTP request body (and headers) into an ``InboundMessage``.

    Raises ``UnsupportedPayload`` with a message naming the problem; never anything else.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if len(body) > MAX_BODY_BYTES:
        raise _malformed(f"body is {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit")

    if "ce-type" in headers or "ce-specversion" in headers:
        ce_type = headers.get("ce-type", "")
        if ce_type != PUBSUB_CLOUDEVENT_TYPE:
            raise _malformed(f"unsupported CloudEvent type {ce_type!r}; expected {PUBSUB_CLOUDEVENT_TYPE}")
        payload = _json_object(body, "CloudEvent data")
        return _from_message_published(
            payload,
            where="data",
            transport="cloudevent",
            fallback_id=headers.get("ce-id", ""),
            fallback_time=headers.get("ce-time", ""),
        )

    payload = _json_object(body, "body")
    if "specversion" in payload and "type" in payload:
        if payload["type"] != PUBSUB_CLOUDEVENT_TYPE:
            raise _malformed(
                f"unsupported CloudEvent type {payload['type']!r}; expected {PUBSUB_CLOUDEVENT_TYPE}"
            )
        data = payload.get("data")
        if not isinstance(data, dict):
            raise _malformed("CloudEvent data must be an object")
        return _from_message_published(
            data,
            where="data",
            transport="cloudevent",
            fallback_id=str(payload.get("id", "")),
            fallback_time=str(payload.get("time", "")),
        )
    if isinstance(payload.get("message"), dict) and (
        "subscription" in payload or "data" in payload["message"]
    ):
        return _from_message_published(payload, where="envelope", transport="push")
    return InboundMessage(data=body, transport="bare")


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _malformed(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def push_envelope(
    payload: bytes | str | Mapping[str, Any],
    *,
    attributes: Mapping[str, str] | None = None,
    message_id: str = "1",
    publish_time: str = "2026-01-01T00:00:00Z",
    subscription: str = "projects/local-project/subscriptions/alert-relay-push",
    delivery_attempt: int | None = None,
) -> dict[str, Any]:
    """Build a push envelope around a payload, as Pub/Sub would (used by the CLI and local run)."""
    if isinstance(payload, Mapping):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    envelope: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(payload).decode(),
            "attributes": dict(attributes or {}),
            "messageId": message_id,
            "publishTime": publish_time,
        },
        "subscription": subscription,
    }
    if delivery_attempt is not None:
        envelope["deliveryAttempt"] = delivery_attempt
    return envelope
