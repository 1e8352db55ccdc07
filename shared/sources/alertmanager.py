"""Alertmanager webhook notifications (payload version 4) -> AlertEvent, one alert at a time.

Alertmanager notifies per *group*: one webhook body holds every alert of the group, firing and
resolved together. The relay tracks alerts, not groups, so the ingest function cuts a notification
into one Pub/Sub message per alert with ``split`` and this module's ``parse`` reads one such message:

    {"source": "alertmanager", "version": 1, "receiver": "relay", "groupKey": "{}:{alertname=\\"X\\"}",
     "externalURL": "http://alertmanager:9093", "alert": {...one entry of alerts[]...},
     "commonLabels": {...}, "truncated_alerts": 3}      # the last key only when Alertmanager cut some

A plain version-4 notification that holds exactly one alert is read directly, as a convenience for
hand-made tests; a group of several is refused, since one message must make one event.

Alertmanager's wire format has a few traps: times are Go RFC 3339 with nanoseconds, an unset
``endsAt`` is Go's zero time ``0001-01-01T00:00:00Z`` (and a firing alert always carries it), and
``fingerprint`` is a hash of the label set that both the firing and the resolved notification share.
As in the other sources only what makes an alert untrackable (no alert, no labels, an unknown status)
is fatal; everything else that cannot be read becomes a note on the event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.model import (
    MAX_LABELS,
    MAX_TEXT,
    AlertEvent,
    AlertmanagerDetails,
    Link,
    Severity,
    Source,
    Status,
    stable_id,
)
from shared.sources.fields import (
    MAX_LABEL_KEY,
    MAX_URL,
    as_text,
    cap_labels,
    cap_notes,
    clip,
    is_http,
    malformed,
    type_name,
)

MESSAGE_VERSION = 1  # the per-alert message ``split`` writes
NOTIFICATION_VERSION = "4"  # Alertmanager's webhook payload version

_STATUSES = {"firing": Status.FIRING, "resolved": Status.RESOLVED}
# Prometheus rules use many spellings; the common ones map, the rest are noted and read as warning.
_SEVERITIES: dict[str, Severity] = {
    **{s.value: s for s in Severity},
    "page": Severity.CRITICAL,
    "high": Severity.CRITICAL,
    "low": Severity.INFO,
    "none": Severity.INFO,
}
# Labels that say what the alert is about: they survive when there are more than MAX_LABELS.
_PRIORITY_LABELS = ("alertname", "namespace", "cluster", "env", "team", "severity", "job")
# Annotation -> link title; for a title with several keys the first http(s) one wins.
_ANNOTATION_LINKS = (("Runbook", ("runbook_url",)), ("Dashboard", ("dashboard_url", "grafana_url")))
# Go's RFC 3339 (nanosecond) time; datetime.fromisoformat takes at most microseconds.
_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)

MAX_ANNOTATIONS = MAX_LABELS
# How a refusal names what it refuses: one per-alert message, or a whole webhook notification.
_PREFIX = "alertmanager payload:"
_NOTIFICATION = "alertmanager notification"


def split(notification: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One per-alert message (see the module docstring) for each alert of a version-4 notification.

    Only the notification's shape is checked here: each message is read, and refused if it must be,
    by ``parse`` on the relay's side, where a refusal is dead-lettered with its reason. An empty
    ``alerts`` list gives no messages.
    """
    if not isinstance(notification, Mapping):
        raise malformed(_NOTIFICATION, f"must be an object, got {type_name(notification)}")
    alerts = notification.get("alerts")
    if alerts is None:
        raise malformed(f"{_NOTIFICATION}:", "alerts is missing")
    if not isinstance(alerts, list):
        raise malformed(f"{_NOTIFICATION}:", f"alerts must be a list, got {type_name(alerts)}")
    for index, alert in enumerate(alerts):
        if not isinstance(alert, Mapping):
            raise malformed(f"{_NOTIFICATION}:", f"alerts[{index}] must be an object, got {type_name(alert)}")

    group = {
        "source": Source.ALERTMANAGER.value,
        "version": MESSAGE_VERSION,
        "receiver": _plain(notification.get("receiver", "")),
        "groupKey": _plain(notification.get("groupKey", "")),
        "externalURL": _plain(notification.get("externalURL", "")),
    }
    common_labels = _plain(notification.get("commonLabels") or {})
    truncated = notification.get("truncatedAlerts")
    messages = []
    for alert in alerts:
        message = {**group, "alert": _plain(alert), "commonLabels": _plain(common_labels)}
        # Absent or 0 says nothing; anything else (even unreadable) is passed on for parse to note.
        if truncated not in (None, 0, "", "0"):
            message["truncated_alerts"] = _plain(truncated)
        messages.append(message)
    return messages


def parse(payload: Mapping[str, Any]) -> AlertEvent:
    """Normalise one per-alert message (or a version-4 notification holding exactly one alert)."""
    notes: list[str] = []
    if "alert" not in payload and "alerts" in payload:
        payload = _single_alert_message(payload, notes)
    else:
        version = payload.get("version", MESSAGE_VERSION)
        if str(version) != str(MESSAGE_VERSION):
            notes.append(
                f"alertmanager message version {clip(str(version), 100)!r} is not {MESSAGE_VERSION}; "
                f"read as version {MESSAGE_VERSION}"
            )

    alert = payload.get("alert")
    if alert is None:
        raise malformed(
            _PREFIX,
            "alert is missing (expected one alert per message, as the ingest "
            "function publishes, or an Alertmanager notification with 'alerts')",
        )
    if not isinstance(alert, Mapping):
        raise malformed(_PREFIX, f"alert must be an object, got {type_name(alert)}")

    raw_labels = alert.get("labels")
    if raw_labels is None:
        raise malformed(_PREFIX, "alert.labels is missing")
    if not isinstance(raw_labels, Mapping):
        raise malformed(_PREFIX, f"alert.labels must be an object, got {type_name(raw_labels)}")
    labels = {str(k): as_text(v) for k, v in raw_labels.items()}

    raw_status = as_text(alert.get("status"))
    status = _STATUSES.get(raw_status.strip().lower())
    if status is None:
        problem = f"{clip(raw_status, 100)!r} is not 'firing' or 'resolved'" if raw_status else "is missing"
        raise malformed(_PREFIX, f"alert.status {problem}")

    annotations = _annotations(alert.get("annotations"), notes)
    am_fingerprint = as_text(alert.get("fingerprint")).strip()
    # Alertmanager's fingerprint is a hash of the label set; without it the sorted labels stand in.
    identity: Any = am_fingerprint or sorted(labels.items())
    fingerprint = stable_id("alertmanager", identity)
    raw_starts = as_text(alert.get("startsAt")).strip()
    raw_ends = as_text(alert.get("endsAt")).strip()
    started_at, ended_at, duration = _times(status, raw_starts, raw_ends, notes)

    _note_truncation(payload.get("truncated_alerts"), notes)
    generator_url = as_text(alert.get("generatorURL")).strip()
    alertname = labels.get("alertname", "").strip()
    title = annotations.get("summary", "").strip() or alertname or "Alertmanager alert"
    summary = annotations.get("description", "").strip() or annotations.get("message", "").strip()

    return AlertEvent(
        # A repeat notification of a still-firing alert (repeat_interval, or the second member of an
        # HA pair) carries the same status and times: it is the same occurrence, not a new one.
        event_id=stable_id("alertmanager", identity, status.value, raw_starts, raw_ends),
        source=Source.ALERTMANAGER,
        fingerprint=fingerprint,
        status=status,
        source_status=clip(raw_status, 256),
        severity=_severity(labels.get("severity"), notes),
        title=clip(title, 1000),
        summary=clip(summary, MAX_TEXT),
        labels=cap_labels(labels, notes, priority=_PRIORITY_LABELS),
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=duration,
        links=_links(generator_url, annotations, as_text(payload.get("externalURL")).strip(), notes),
        details=AlertmanagerDetails(
            alertname=clip(alertname, 256),
            am_fingerprint=clip(am_fingerprint, 256),
            receiver=clip(as_text(payload.get("receiver")), 256),
            group_key=clip(as_text(payload.get("groupKey")), MAX_TEXT),
            generator_url=clip(generator_url, MAX_URL),
            annotations=_cap_annotations(annotations, notes),
        ),
        notes=cap_notes(notes),
    )


def _single_alert_message(notification: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """A version-4 notification read as the per-alert message ``split`` would make of it."""
    alerts = notification.get("alerts")
    if isinstance(alerts, list) and len(alerts) != 1:
        if not alerts:
            raise malformed(_NOTIFICATION, "holds no alerts; there is nothing to relay")
        raise malformed(
            _NOTIFICATION,
            f"holds {len(alerts)} alerts; send it to the ingest function, "
            "which splits groups into one message per alert",
        )
    version = notification.get("version", NOTIFICATION_VERSION)
    if str(version) != NOTIFICATION_VERSION:
        notes.append(
            f"alertmanager notification version {clip(str(version), 100)!r} is not "
            f"{NOTIFICATION_VERSION}; read as version {NOTIFICATION_VERSION}"
        )
    return split(notification)[0]


# --- times ------------------------------------------------------------------------------------


def _times(
    status: Status, raw_starts: str, raw_ends: str, notes: list[str]
) -> tuple[datetime | None, datetime | None, float | None]:
    """started_at, ended_at and duration. Only a resolved alert has an end: Alertmanager zeroes a
    firing alert's endsAt, and a non-zero one there is merely when it would time out."""
    started_at = _read_time(raw_starts, "alert.startsAt", notes)
    ends = _read_time(raw_ends, "alert.endsAt", notes)
    if status is not Status.RESOLVED:
        return started_at, None, None
    if ends is None:
        if not any(n.startswith("alert.endsAt ") for n in notes):
            notes.append("alert is resolved but alert.endsAt is not set; no end time")
        return started_at, None, None
    if started_at is None:
        return None, ends, None
    if ends < started_at:
        notes.append("alert.endsAt is before alert.startsAt; no duration")
        return started_at, ends, None
    return started_at, ends, (ends - started_at).total_seconds()


def _read_time(raw: str, field: str, notes: list[str]) -> datetime | None:
    """Go RFC 3339 text (nanoseconds cut to microseconds) as a UTC datetime; the zero time is None."""
    if not raw:
        return None
    match = _RFC3339.match(raw)
    if match:
        frac = match["frac"]
        zone = "+00:00" if match["zone"] in (None, "Z", "z") else match["zone"]
        text = match["base"] + (f".{frac[:6].ljust(6, '0')}" if frac else "") + zone
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is not None:
            if value.year <= 1:  # Go's zero time: "not set"
                return None
            try:
                return value.astimezone(UTC)
            except (OverflowError, ValueError):
                pass
    notes.append(f"{field} {clip(raw, 100)!r} is not an RFC 3339 time; ignored")
    return None


# --- severity, labels, annotations --------------------------------------------------------------


def _severity(label: str | None, notes: list[str]) -> Severity:
    value = (label or "").strip().lower()
    if not value:
        return Severity.WARNING
    if value in _SEVERITIES:
        return _SEVERITIES[value]
    notes.append(f"label severity={clip(label or '', 100)!r} is not a known severity; using warning")
    return Severity.WARNING


def _annotations(raw: Any, notes: list[str]) -> dict[str, str]:
    """alert.annotations as a str -> str dict (full length; clipped where stored)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        notes.append(f"alert.annotations must be an object, got {type_name(raw)}; ignored")
        return {}
    return {str(k): as_text(v) for k, v in raw.items() if str(k)}


def _cap_annotations(annotations: Mapping[str, str], notes: list[str]) -> dict[str, str]:
    keys = sorted(annotations)
    if len(keys) > MAX_ANNOTATIONS:
        notes.append(f"only {MAX_ANNOTATIONS} of {len(keys)} annotations are kept")
        keys = keys[:MAX_ANNOTATIONS]
    return {clip(k, MAX_LABEL_KEY): clip(annotations[k], MAX_TEXT) for k in keys}


# --- links and truncation -----------------------------------------------------------------------


def _links(
    generator_url: str, annotations: Mapping[str, str], external_url: str, notes: list[str]
) -> tuple[Link, ...]:
    links: list[Link] = []

    def add(title: str, raw: str, field: str, url: str | None = None) -> bool:
        url = raw if url is None else url
        if is_http(raw) and is_http(url):
            links.append(Link(title=title, url=url))
            return True
        notes.append(f"{field} {clip(raw, 200)!r} is not an http(s) URL; no {title} link added")
        return False

    if generator_url:
        add("Source", generator_url, "alert.generatorURL")
    for title, keys in _ANNOTATION_LINKS:
        for key in keys:
            url = annotations.get(key, "").strip()
            if url and add(title, url, f"annotation {key}"):
                break
    if external_url:
        add("Alertmanager", external_url, "externalURL", f"{external_url.rstrip('/')}/#/alerts")
    return tuple(links)


def _note_truncation(raw: Any, notes: list[str]) -> None:
    """Alertmanager's webhook ``max_alerts`` cut the group: say so, those alerts never reach us."""
    if raw in (None, 0, "", "0"):
        return
    count: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        count = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        count = int(raw)
    if count is None or count < 0:
        notes.append(f"truncated_alerts {clip(as_text(raw), 100)!r} is not a count; ignored")
    elif count:
        notes.append(
            f"Alertmanager left {count} more {'alert' if count == 1 else 'alerts'} of this group out of "
            "its notification (webhook max_alerts); the relay never received them"
        )


# --- small readers ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings become dicts, sequences lists (a message must survive json.dumps)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
