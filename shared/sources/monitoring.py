"""Cloud Monitoring incident notifications (webhook or Pub/Sub channel, schema 1.2 and 1.1).

Real payloads vary by age and condition type: keys come and go (``severity``, ``policy_user_labels``,
``observed_value``, ``metadata``, ``scoping_project_*``), log-match conditions carry empty strings, and
a cancelled incident puts a sentence in ``observed_value``. Every field is therefore read defensively;
only an incident without an id or with an unknown state is refused, since neither can be routed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.model import (
    MAX_TEXT,
    AlertEvent,
    Link,
    MonitoringDetails,
    Severity,
    Source,
    Status,
    stable_id,
)
from shared.sources.fields import as_text, cap_labels, cap_notes, clip, is_http, malformed

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
_PREFIX = "cloud monitoring payload:"  # how a refusal names the payload


def parse(payload: Mapping[str, Any], *, occurrence: str = "") -> AlertEvent:
    """Normalise one Cloud Monitoring notification (``{"incident": {...}, "version": "1.2"}``)."""
    notes: list[str] = []
    incident = payload.get("incident")
    if not isinstance(incident, Mapping):
        problem = "is missing" if incident is None else f"must be an object, got {type(incident).__name__}"
        raise malformed(_PREFIX, f"incident {problem}")

    incident_id = as_text(incident.get("incident_id")).strip()
    if not incident_id:
        raise malformed(_PREFIX, "incident.incident_id is missing")
    raw_state = as_text(incident.get("state"))
    state = raw_state.strip().lower()
    if state not in _STATES:
        problem = f"{clip(raw_state, 100)!r} is not 'open' or 'closed'" if raw_state else "is missing"
        raise malformed(_PREFIX, f"incident.state {problem}")
    status = _STATES[state]

    resource = _mapping(incident.get("resource"))
    resource_labels = {str(k): as_text(v) for k, v in _mapping(resource.get("labels")).items()}
    resource_type = as_text(resource.get("type"))
    policy_labels = {str(k): as_text(v) for k, v in _mapping(incident.get("policy_user_labels")).items()}
    metadata = _mapping(incident.get("metadata"))
    user_labels = {str(k): as_text(v) for k, v in _mapping(metadata.get("user_labels")).items()}
    # The monitored project; the scoping project is only where the policy lives (they can differ).
    project = resource_labels.get("project_id") or as_text(incident.get("scoping_project_id"))

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

    policy_name = as_text(incident.get("policy_name"))
    condition_name = as_text(incident.get("condition_name"))
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
        source_status=clip(raw_state, 256),
        severity=severity,
        title=clip(title, 1000),
        summary=clip(as_text(incident.get("summary")), MAX_TEXT),
        labels=cap_labels(labels, notes, priority=_PRIORITY_LABELS),
        started_at=_as_datetime(started_epoch),
        ended_at=_as_datetime(ended_epoch),
        duration_seconds=duration,
        links=_links(incident, notes),
        details=MonitoringDetails(
            incident_id=clip(incident_id, 256),
            policy_name=clip(policy_name, 256),
            condition_name=clip(condition_name, 256),
            resource_type=clip(resource_type, 256),
            resource_name=clip(
                as_text(incident.get("resource_name")) or as_text(incident.get("resource_display_name")),
                MAX_TEXT,
            ),
            metric_type=clip(as_text(metric.get("type")), 256),
            # Strings on the wire, and free text when an incident is cancelled: kept as text.
            observed_value=clip(as_text(incident.get("observed_value")), MAX_TEXT),
            threshold_value=clip(as_text(incident.get("threshold_value")), 256),
            project_id=clip(project, 256),
            schema_version=clip(as_text(payload.get("version")), 256),
        ),
        notes=cap_notes(notes),
    )


def _severity(raw: Any, label: str | None, notes: list[str]) -> Severity:
    """The incident's own severity; a ``severity`` policy label only fills in when it has none."""
    value = as_text(raw).strip().lower()
    if value in _SEVERITIES:
        return _SEVERITIES[value]
    if value not in _NO_SEVERITY:
        notes.append(f"incident.severity {clip(as_text(raw), 100)!r} is not known; using warning")
        return Severity.WARNING
    if label:
        by_label = _SEVERITIES.get(label.strip().lower())
        if by_label:
            return by_label
        notes.append(f"policy label severity={clip(label, 100)!r} is not a known severity; ignored")
    return Severity.WARNING


def _links(incident: Mapping[str, Any], notes: list[str]) -> tuple[Link, ...]:
    links: list[Link] = []
    url = as_text(incident.get("url"))
    if is_http(url):
        links.append(Link(title="Cloud Monitoring incident", url=url))
    elif url:
        notes.append(f"incident.url {clip(url, 200)!r} is not an http(s) URL; no link added")
    documentation = _mapping(incident.get("documentation"))
    doc_links = documentation.get("links")
    for item in doc_links if isinstance(doc_links, list) else []:
        item_map = _mapping(item)
        doc_url = as_text(item_map.get("url"))
        if not is_http(doc_url):
            notes.append(f"documentation link {clip(doc_url, 200)!r} is not an http(s) URL; skipped")
            continue
        if len(links) >= MAX_LINKS:
            notes.append(f"only the first {MAX_LINKS} links are kept")
            break
        title = as_text(item_map.get("displayName")).strip() or "Documentation"
        links.append(Link(title=clip(title, 256), url=doc_url))
    return tuple(links)


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
    notes.append(f"{field} {clip(str(raw), 100)!r} is not epoch seconds; ignored")
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


def _describe(error: Any) -> str:
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("error") or error.get("description")
        if isinstance(message, str) and message:
            return message
    return as_text(error)
