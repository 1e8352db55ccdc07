"""Sources: one parser per sender, all producing ``AlertEvent``.

The source is taken from the ``source`` message attribute when a publisher sets it, otherwise from
the payload's shape. Anything unrecognisable is a permanent ``UnsupportedPayload`` naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.envelope import InboundMessage
from shared.errors import Reason, UnsupportedPayload
from shared.model import AlertEvent, Source
from shared.sources import alertmanager, argo, monitoring

SOURCE_ATTRIBUTE = "source"


def detect(payload: Mapping[str, Any], attributes: Mapping[str, str]) -> Source:
    """Which sender produced this payload: the attribute when given, else the payload's shape."""
    declared = attributes.get(SOURCE_ATTRIBUTE)
    if declared:
        try:
            return Source(declared)
        except ValueError:
            known = ", ".join(s.value for s in Source)
            raise UnsupportedPayload(
                f"unknown source attribute {declared!r} (known: {known})", reason=Reason.UNKNOWN_SOURCE
            ) from None
    if isinstance(payload.get("incident"), Mapping):
        return Source.CLOUD_MONITORING
    if payload.get("source") == Source.ARGO.value or isinstance(payload.get("workflow"), Mapping):
        return Source.ARGO
    if "event_id" in payload and "fingerprint" in payload:
        return Source.EVENT
    if payload.get("source") == Source.ALERTMANAGER.value or (
        isinstance(payload.get("alerts"), list) and "groupKey" in payload
    ):
        return Source.ALERTMANAGER
    keys = ", ".join(sorted(map(str, payload))[:8]) or "none"
    raise UnsupportedPayload(
        f"cannot tell the source of this payload (top-level keys: {keys}); expected an Argo exit-handler "
        "event ('workflow'), a Cloud Monitoring notification ('incident') or an alert event "
        "('event_id', 'fingerprint'), or set the 'source' attribute",
        reason=Reason.UNKNOWN_SOURCE,
    )


def parse_payload(
    payload: Any,
    attributes: Mapping[str, str] | None = None,
    *,
    received_at: datetime | None = None,
    occurrence: str = "",
) -> AlertEvent:
    """Normalise one decoded payload into an ``AlertEvent``."""
    attributes = attributes or {}
    if not isinstance(payload, Mapping):
        raise UnsupportedPayload(
            f"payload must be a JSON object, got {type(payload).__name__}", reason=Reason.MALFORMED_PAYLOAD
        )
    source = detect(payload, attributes)
    try:
        if source is Source.ARGO:
            return argo.parse(payload, received_at=received_at)
        if source is Source.CLOUD_MONITORING:
            return monitoring.parse(payload, occurrence=occurrence)
        if source is Source.ALERTMANAGER:
            return alertmanager.parse(payload)
        if source is Source.EVENT:
            return AlertEvent.model_validate(payload)
    except ValidationError as exc:
        raise UnsupportedPayload(
            f"{source.value} payload is invalid: {_first_errors(exc)}", reason=Reason.INVALID_EVENT
        ) from None
    raise UnsupportedPayload(
        f"{source.value} payloads are not accepted by the relay yet", reason=Reason.UNKNOWN_SOURCE
    )


def parse(message: InboundMessage, *, received_at: datetime | None = None) -> AlertEvent:
    return parse_payload(
        message.json(), message.attributes, received_at=received_at, occurrence=message.message_id
    )


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
