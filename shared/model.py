"""The one alert event every source normalises into (schema version 1).

Publishers may send it directly (source ``event``); every other source's parser builds it.
It is deliberately compact: Pub/Sub attributes carry the routing keys, the body stays small,
and unknown fields are rejected so that a typo in a publisher never passes silently.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION: Literal[1] = 1

# Bounds keep one event well inside Pub/Sub's and Slack's limits, whatever a publisher sends.
MAX_TEXT = 4000
MAX_LABELS = 64
MAX_FAILED_STEPS = 100

ShortStr = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
LabelValue = Annotated[str, StringConstraints(max_length=512)]


class Source(StrEnum):
    ARGO = "argo"
    CLOUD_MONITORING = "cloud_monitoring"
    ALERTMANAGER = "alertmanager"
    EVENT = "event"  # a publisher that already speaks this model


class Status(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Link(_Frozen):
    title: ShortStr
    url: Annotated[str, StringConstraints(max_length=3000, pattern=r"^https?://")]


class FailedStep(_Frozen):
    """A leaf node of an Argo workflow that failed (parents such as step groups are left out)."""

    name: ShortStr
    template: ShortStr = ""
    phase: ShortStr = "Failed"
    message: Text = ""
    finished_at: AwareDatetime | None = None
    pod_name: ShortStr = ""
    # Attempts made when the step had a retryStrategy (the failures list holds one node per attempt).
    attempts: Annotated[int, Field(ge=1)] = 1


class ArgoDetails(_Frozen):
    kind: Literal["argo"] = "argo"
    workflow: ShortStr
    namespace: ShortStr
    uid: ShortStr = ""
    failed_steps: Annotated[tuple[FailedStep, ...], Field(max_length=MAX_FAILED_STEPS)] = ()
    # How many leaf failures there were before the list was cut to MAX_FAILED_STEPS.
    failed_steps_total: int = 0
    parameters: dict[LabelKey, LabelValue] = {}


class MonitoringDetails(_Frozen):
    kind: Literal["cloud_monitoring"] = "cloud_monitoring"
    incident_id: ShortStr
    policy_name: ShortStr = ""
    condition_name: ShortStr = ""
    resource_type: ShortStr = ""
    resource_name: Text = ""
    metric_type: ShortStr = ""
    observed_value: Text = ""
    threshold_value: ShortStr = ""
    project_id: ShortStr = ""
    schema_version: ShortStr = ""


class AlertmanagerDetails(_Frozen):
    kind: Literal["alertmanager"] = "alertmanager"
    alertname: ShortStr = ""
    am_fingerprint: ShortStr = ""  # Alertmanager's own fingerprint of the label set
    receiver: ShortStr = ""
    group_key: Text = ""
    generator_url: Annotated[str, StringConstraints(max_length=3000)] = ""
    annotations: dict[LabelKey, Text] = {}


Details = Annotated[ArgoDetails | MonitoringDetails | AlertmanagerDetails, Field(discriminator="kind")]


class AlertEvent(_Frozen):
    """A normalised alert: what happened, to what, how bad, and where to look.

    ``event_id`` names this occurrence (a redelivery or a second publish of it carries the same id);
    ``fingerprint`` names the alert (a failure and its later resolution share it).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    source: Source
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    status: Status
    source_status: ShortStr = ""
    severity: Severity = Severity.ERROR
    title: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    summary: Text = ""
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=MAX_LABELS)] = {}
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    duration_seconds: Annotated[float, Field(ge=0)] | None = None
    links: Annotated[tuple[Link, ...], Field(max_length=10)] = ()
    details: Details | None = None
    # What a parser could not read (e.g. a malformed failures list): shown, never fatal.
    notes: Annotated[tuple[Text, ...], Field(max_length=10)] = ()

    def to_json(self) -> str:
        return self.model_dump_json(exclude_defaults=False)

    def routing_attributes(self) -> dict[str, str]:
        """Flat string attributes for Pub/Sub subscription filters and HTTP headers."""
        attrs = {
            "schema_version": str(self.schema_version),
            "event_id": self.event_id,
            "source": self.source.value,
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "severity": self.severity.value,
        }
        for key in ("env", "team", "namespace"):
            if key in self.labels:
                attrs[key] = self.labels[key]
        return attrs


def stable_id(*parts: Any) -> str:
    """A short deterministic id over ordered parts: the same inputs always give the same id.

    Parts are JSON-encoded before hashing so that ("a|b", "c") and ("a", "b|c") never collide.
    """
    digest = hashlib.sha256(json.dumps(parts, default=str, separators=(",", ":")).encode()).hexdigest()
    return digest[:32]


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the event, for publishers."""
    schema = AlertEvent.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://alert-relay.dev/schemas/alert-event.v1.json"
    return schema


def utc_iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
