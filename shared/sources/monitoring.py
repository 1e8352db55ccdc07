"""Cloud Monitoring incident notifications (webhook or Pub/Sub channel, schema 1.2 and 1.1).

Real payloads vary by age and condition type: keys come and go (``severity``, ``policy_user_labels``,
``observed_value``, ``metadata``, ``scoping_project_*``), log-match conditions carry empty strings, and
a cancelled incident puts a sentence in ``observed_value``. Every field is therefore read defensively;
only an incident without an id or with an unknown state is refused, since neither can be routed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.errors import Reason, UnsupportedPayload
from shared.model import (
    MAX_LABELS,
    MAX_TEXT,
    AlertEvent,
    Link,
    MonitoringDetails,
    Severity,
    Source,
    Status,
    stable_id,
)

_STATES = {"open": Status.FIRING, "closed": Status.RESOLVED}
# Cloud Monitoring writes "Critical"/"Error"/"Warning"/"No severity" (the docs example: lower case).
_SEVERITIES = {s.value: s for s in Severity}
_NO_SEVERITY = {"", "no severity", "no_severity", "severity_unspecified"}
# Resource labels that say where something runs, under the names the rest of the relay routes on.
# prometheus_target (Managed Service for Prometheus) uses namespace/cluster/job; k8s_* use *_name.
_RESOURCE_LABELS = {
    "namespace": "namespace",
    "namespace_name": "namespace",
    "cluster": "cluster",
    "cluster_name": "cluster",
    "job": "job",
    "location": "location",
    "zone": "zone",
    "region": "region",
}
# Labels that say what the event is about: they survive when there are more than MAX_LABELS.
_PRIORITY_LABELS = ("project", "resource_type", "namespace", "cluster", "env", "team", "severity")
MAX_LINKS = 10
MAX_NOTES = 10


def parse(payload: Mapping[str, Any], *, occurrence: str = "") -> AlertEvent:
    """Normalise one Cloud Monitoring notification (``{"incident": {...}, "version": "1.2"}``)."""
    notes: list[str] = []
    incident = payload.get("incident")
    if not isinstance(incident, Mapping):
        problem = "is missing" if incident is None else f"must be an object, got {type(incident).__name__}"
        raise _malformed(f"cloud monitoring payload: incident {problem}")

    incident_id = _text(incident.get("incident_id")).strip()
    if not incident_id:
        raise _malformed("cloud monitoring payload: incident.incident_id is missing")
    raw_state = _text(incident.get("state"))
    state = raw_state.strip().lower()
    if state not in _STATES:
        problem = f"{_clip(raw_state, 100)!r} is not 'open' or 'closed'" if raw_state else "is missing"
        raise _malformed(f"cloud monitoring payload: incident.state {problem}")
    status = _STATES[state]

    resource = _mapping(incident.get("resource"))
    resource_labels = {str(k): _text(v) for k, v in _mapping(resource.get("labels")).items()}
    resource_type = _text(resource.get("type"))
    policy_labels = {str(k): _text(v) for k, v in _mapping(incident.get("policy_user_labels")).items()}
    metadata = _mapping(incident.get("metadata"))
    user_labels = {str(k): _text(v) for k, v in _mapping(metadata.get("user_labels")).items()}
    # The monitored project; the scoping project is only where the policy lives (they can differ).
    project = resource_labels.get("project_id") or _text(incident.get("scoping_project_id"))

    severity = _severity(incident.get("severity"), policy_labels.get("severity"), notes)

    started_epoch = _epoch(incident.get("started_at"), "incident.started_at", notes)
    ended_epoch = _epoch(incident.get("ended_at"), "incident.ended_at", notes)
    duration: float | None = None
    if started_epoch is not None and ended_epoch is not None:
        if ended_epoch >= started_epoch:
            duration = float(ended_epoch - started_epoch)
        else:
            notes.append("incident.ended_at is before incident.started_at; no duration")

    labels: dict[str, str] = {**user_labels, **policy_labels}
    for key, name in _RESOURCE_LABELS.items():
        if resource_labels.get(key):
            labels[name] = resource_labels[key]
    if resource_type:
        labels["resource_type"] = resource_type
    if project:
        labels["project"] = project

    policy_name = _text(incident.get("policy_name"))
    condition_name = _text(incident.get("condition_name"))
    title = policy_name or condition_name or f"Cloud Monitoring incident {incident_id}"
    metric = _mapping(incident.get("metric"))

    errors = incident.get("errors")
    if isinstance(errors, list):
        # Schema 1.1 sent in place of 1.2 says why; whoever reads the alert should know fields are thin.
        notes.extend(f"Cloud Monitoring reported: {_describe(e)}" for e in errors)
    elif errors not in (None, ""):
        notes.append(f"Cloud Monitoring reported: {_describe(errors)}")

    return AlertEvent(
        # Cloud Monitoring re-sends identical notifications while an incident stays open; the Pub/Sub
        # message id (``occurrence``) tells a renotification (a repeat, counted) from a redelivery.
        event_id=stable_id(
            "cloud_monitoring", incident_id, state, started_epoch, ended_epoch, *filter(None, [occurrence])
        ),
        source=Source.CLOUD_MONITORING,
        fingerprint=stable_id("cloud_monitoring", incident_id),
        status=status,
        source_status=_clip(raw_state, 256),
        severity=severity,
        title=_clip(title, 1000),
        summary=_clip(_text(incident.get("summary")), MAX_TEXT),
        labels=_cap_labels(labels, notes),
        started_at=_as_datetime(started_epoch),
        ended_at=_as_datetime(ended_epoch),
        duration_seconds=duration,
        links=_links(incident, notes),
        details=MonitoringDetails(
            incident_id=_clip(incident_id, 256),
            policy_name=_clip(policy_name, 256),
            condition_name=_clip(condition_name, 256),
            resource_type=_clip(resource_type, 256),
            resource_name=_clip(
                _text(incident.get("resource_name")) or _text(incident.get("resource_display_name")), MAX_TEXT
            ),
            metric_type=_clip(_text(metric.get("type")), 256),
            # Strings on the wire, and free text when an incident is cancelled: kept as text.
            observed_value=_clip(_text(incident.get("observed_value")), MAX_TEXT),
            threshold_value=_clip(_text(incident.get("threshold_value")), 256),
            project_id=_clip(project, 256),
            schema_version=_clip(_text(payload.get("version")), 256),
        ),
        notes=_cap_notes(notes),
    )


def _severity(raw: Any, label: str | None, notes: list[str]) -> Severity:
    """The incident's own severity; a ``severity`` policy label only fills in when it has none."""
    value = _text(raw).strip().lower()
    if value in _SEVERITIES:
        return _SEVERITIES[value]
    if value not in _NO_SEVERITY:
        notes.append(f"incident.severity {_clip(_text(raw), 100)!r} is not known; using warning")
        return Severity.WARNING
    if label:
        by_label = _SEVERITIES.get(label.strip().lower())
        if by_label:
            return by_label
        notes.append(f"policy label severity={_clip(label, 100)!r} is not a known severity; ignored")
    return Severity.WARNING


def _links(incident: Mapping[str, Any], notes: list[str]) -> tuple[Link, ...]:
    links: list[Link] = []
    url = _text(incident.get("url"))
    if _is_http(url):
        links.append(Link(title="Cloud Monitoring incident", url=url))
    elif url:
        notes.append(f"incident.url {_clip(url, 200)!r} is not an http(s) URL; no link added")
    documentation = _mapping(incident.get("documentation"))
    doc_links = documentation.get("links")
    for item in doc_links if isinstance(doc_links, list) else []:
        item_map = _mapping(item)
        doc_url = _text(item_map.get("url"))
        if not _is_http(doc_url):
            notes.append(f"documentation link {_clip(doc_url, 200)!r} is not an http(s) URL; skipped")
            continue
        if len(links) >= MAX_LINKS:
            notes.append(f"only the first {MAX_LINKS} links are kept")
            break
        title = _text(item_map.get("displayName")).strip() or "Documentation"
        links.append(Link(title=_clip(title, 256), url=doc_url))
    return tuple(links)


def _cap_labels(labels: Mapping[str, str], notes: list[str]) -> dict[str, str]:
    """Valid label keys and values, at most MAX_LABELS of them, priority labels first."""
    clean = {_clip(k, 128): _clip(v, 512) for k, v in labels.items() if k}
    ordered = [k for k in _PRIORITY_LABELS if k in clean] + sorted(
        k for k in clean if k not in _PRIORITY_LABELS
    )
    if len(ordered) > MAX_LABELS:
        notes.append(f"only {MAX_LABELS} of {len(ordered)} labels are kept")
        ordered = ordered[:MAX_LABELS]
    return {k: clean[k] for k in sorted(ordered)}


def _epoch(raw: Any, field: str, notes: list[str]) -> int | None:
    """Integer epoch seconds (``null`` while open); digit strings are accepted from hand-made copies."""
    if raw is None or raw == "":
        return None
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif (isinstance(raw, float) and raw.is_integer()) or (
        isinstance(raw, str) and re.fullmatch(r"\s*\d+\s*", raw)
    ):
        value = int(raw)
    if value is not None and _as_datetime(value) is not None:
        return value
    notes.append(f"{field} {_clip(str(raw), 100)!r} is not epoch seconds; ignored")
    return None


def _as_datetime(epoch: int | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    """Any scalar as text: numbers stay as written (``1.1``), ``None`` is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _describe(error: Any) -> str:
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("error") or error.get("description")
        if isinstance(message, str) and message:
            return message
    return _text(error)


def _is_http(url: str) -> bool:
    return bool(re.match(r"^https?://", url)) and len(url) <= 3000


def _cap_notes(notes: list[str]) -> tuple[str, ...]:
    if len(notes) > MAX_NOTES:
        notes = [*notes[: MAX_NOTES - 1], f"and {len(notes) - MAX_NOTES + 1} more problems"]
    return tuple(_clip(n, MAX_TEXT) for n in notes)


def _clip(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters, marking the cut: a long summary must not fail the event."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _malformed(message: str) -> UnsupportedPayload:
    return UnsupportedPayload(message, reason=Reason.MALFORMED_PAYLOAD)
