"""The Cloud Monitoring parser: incident notifications (schema 1.2 and 1.1) to one AlertEvent.

Golden files: tests/data/sources/gcm_*.input.json are parsed and compared with the matching
*.expected.json. After an intended change, regenerate them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_sources_monitoring.py`` and review the diff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.errors import Reason, UnsupportedPayload
from shared.model import AlertEvent, MonitoringDetails, Severity, Status, stable_id
from shared.sources import monitoring, parse_payload
from tests.golden import assert_golden_event, case_id, golden_inputs, load_input, read_json

GOLDEN_INPUTS = golden_inputs("gcm_")


def incident(**fields: Any) -> dict[str, Any]:
    """A minimal open incident; keyword arguments replace or add fields (``...`` removes one)."""
    base: dict[str, Any] = {
        "incident_id": "0.t3stinc1dent",
        "state": "open",
        "started_at": 1777714200,
        "ended_at": None,
        "policy_name": "Queue backlog",
        "summary": "Backlog is above the threshold.",
    }
    base.update(fields)
    return {"incident": {k: v for k, v in base.items() if v is not ...}, "version": "1.2"}


def details(event: AlertEvent) -> MonitoringDetails:
    assert isinstance(event.details, MonitoringDetails)
    return event.details


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("input_path", GOLDEN_INPUTS, ids=case_id)
def test_fixture_parses_to_golden_event(input_path: Path) -> None:
    """Each Cloud Monitoring fixture parses to exactly its reviewed expected event."""
    assert_golden_event(monitoring.parse(read_json(input_path)), input_path)


def test_golden_fixtures_exist() -> None:
    """The golden test above is not silently empty."""
    assert len(GOLDEN_INPUTS) >= 7


# --- state, ids, times -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status"),
    [
        pytest.param("open", Status.FIRING, id="open"),
        pytest.param("closed", Status.RESOLVED, id="closed"),
        pytest.param("OPEN", Status.FIRING, id="upper-case"),
        pytest.param(" Closed ", Status.RESOLVED, id="mixed-case-padded"),
    ],
)
def test_state_maps_to_status_case_insensitively(state: str, status: Status) -> None:
    """open fires and closed resolves, however the state is capitalised; source_status keeps it as sent."""
    event = monitoring.parse(
        incident(state=state, ended_at=1777716000 if status is Status.RESOLVED else None)
    )
    assert (event.status, event.source_status) == (status, state)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            incident(state="acknowledged"),
            "incident.state 'acknowledged' is not 'open' or 'closed'",
            id="bad",
        ),
        pytest.param(incident(state=...), "incident.state is missing", id="state-absent"),
        pytest.param(incident(incident_id=...), "incident.incident_id is missing", id="id-absent"),
        pytest.param(incident(incident_id=""), "incident.incident_id is missing", id="id-empty"),
        pytest.param({"version": "1.2"}, "incident is missing", id="no-incident"),
        pytest.param(
            {"incident": ["x"], "version": "1.2"}, "incident must be an object, got list", id="not-object"
        ),
    ],
)
def test_unroutable_incidents_are_malformed_payloads_naming_the_field(
    body: dict[str, Any], message: str
) -> None:
    """Without an id or a known state an incident cannot be tracked: a permanent error naming why."""
    with pytest.raises(UnsupportedPayload) as info:
        monitoring.parse(body)
    assert str(info.value) == f"cloud monitoring payload: {message}"
    assert info.value.reason is Reason.MALFORMED_PAYLOAD


def test_open_and_closed_share_the_fingerprint_but_not_the_event_id() -> None:
    """The close message resolves the open one (same fingerprint) yet is a separate occurrence."""
    opened = monitoring.parse(load_input("gcm_threshold_open"))
    closed = monitoring.parse(load_input("gcm_threshold_closed"))
    assert opened.fingerprint == closed.fingerprint == stable_id("cloud_monitoring", "0.qa7test1ncdt")
    assert opened.event_id != closed.event_id
    redelivered = monitoring.parse(load_input("gcm_threshold_open"))
    assert opened.event_id == redelivered.event_id  # redelivery: same id


def test_epoch_seconds_become_aware_utc_times_with_a_duration() -> None:
    """started_at/ended_at are epoch seconds; the event gets UTC datetimes and the difference."""
    event = monitoring.parse(incident(state="closed", started_at=1777714200, ended_at=1777716030))
    assert event.started_at == datetime(2026, 5, 2, 9, 30, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 5, 2, 10, 0, 30, tzinfo=UTC)
    assert event.duration_seconds == 1830.0


def test_open_incident_has_no_end_or_duration() -> None:
    """ended_at is null while open: no end time, no duration, no note."""
    event = monitoring.parse(incident())
    assert (event.ended_at, event.duration_seconds, event.notes) == (None, None, ())


def test_unreadable_times_are_noted_not_fatal() -> None:
    """A time that is not epoch seconds is dropped with a note; the alert still goes out."""
    event = monitoring.parse(incident(started_at="yesterday"))
    assert event.started_at is None
    assert event.notes == ("incident.started_at 'yesterday' is not epoch seconds; ignored",)


# --- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "policy_labels", "expected"),
    [
        pytest.param("Critical", None, Severity.CRITICAL, id="Critical"),
        pytest.param("critical", None, Severity.CRITICAL, id="critical"),
        pytest.param("Error", None, Severity.ERROR, id="Error"),
        pytest.param("Warning", None, Severity.WARNING, id="Warning"),
        pytest.param("No severity", None, Severity.WARNING, id="No-severity"),
        pytest.param("no severity", None, Severity.WARNING, id="no-severity-docs-spelling"),
        pytest.param(..., None, Severity.WARNING, id="absent"),
        pytest.param(..., {"severity": "critical"}, Severity.CRITICAL, id="absent-policy-label"),
        pytest.param("No severity", {"severity": "Error"}, Severity.ERROR, id="no-severity-policy-label"),
        pytest.param("Warning", {"severity": "critical"}, Severity.WARNING, id="incident-severity-wins"),
    ],
)
def test_severity_maps_from_incident_or_policy_label(
    severity: Any, policy_labels: dict[str, str] | None, expected: Severity
) -> None:
    """Capitalised or not, the incident severity maps; a policy label only fills in 'no severity'."""
    fields: dict[str, Any] = {"severity": severity}
    if policy_labels is not None:
        fields["policy_user_labels"] = policy_labels
    event = monitoring.parse(incident(**fields))
    assert event.severity is expected
    assert event.notes == ()


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        pytest.param(
            {"severity": "Sev2"}, "incident.severity 'Sev2' is not known; using warning", id="unknown"
        ),
        pytest.param(
            {"policy_user_labels": {"severity": "p1"}},
            "policy label severity='p1' is not a known severity; ignored",
            id="bad-label",
        ),
    ],
)
def test_unknown_severity_is_warning_with_a_note(fields: dict[str, Any], note: str) -> None:
    """An unrecognised severity never fails the event: warning, and a note saying why."""
    event = monitoring.parse(incident(**fields))
    assert (event.severity, event.notes) == (Severity.WARNING, (note,))


# --- shapes across schema versions -------------------------------------------------------------


def test_minimal_incident_with_every_optional_key_absent_parses() -> None:
    """Only incident_id and state: the oldest payloads still make a valid event."""
    event = monitoring.parse({"incident": {"incident_id": "0.only", "state": "open"}})
    assert event.title == "Cloud Monitoring incident 0.only"
    assert (event.summary, event.labels, event.links, event.started_at) == ("", {}, (), None)
    assert details(event) == MonitoringDetails(incident_id="0.only")


@pytest.mark.parametrize(
    ("fields", "title"),
    [
        pytest.param({"policy_name": "P", "condition_name": "C"}, "P", id="policy-name"),
        pytest.param({"policy_name": "", "condition_name": "C"}, "C", id="condition-name-fallback"),
        pytest.param({"policy_name": ...}, "Cloud Monitoring incident 0.t3stinc1dent", id="id-fallback"),
    ],
)
def test_title_falls_back_from_policy_to_condition_to_id(fields: dict[str, Any], title: str) -> None:
    """The title is the policy name, else the condition name, else the incident id."""
    assert monitoring.parse(incident(**fields)).title == title


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.2", "1.2"), (1.1, "1.1"), (..., "")],
    ids=["string", "number", "absent"],
)
def test_schema_version_is_kept_as_text(version: Any, expected: str) -> None:
    """'version' may be a string or (1.1-era copies) a number; details keep it as text."""
    body = incident()
    if version is ...:
        del body["version"]
    else:
        body["version"] = version
    assert details(monitoring.parse(body)).schema_version == expected


def test_schema_1_1_errors_are_added_to_notes() -> None:
    """A 1.1 fallback explains itself in incident.errors; those reasons reach the event's notes."""
    event = monitoring.parse(load_input("gcm_v1_1_errors"))
    assert event.notes == (
        "Cloud Monitoring reported: Could not render the notification in schema version 1.2; sent as 1.1.",
        "Cloud Monitoring reported: documentation template references an unknown variable",
    )
    assert (details(event).schema_version, event.status) == ("1.1", Status.RESOLVED)


def test_log_match_incident_with_empty_strings_parses() -> None:
    """Log-match conditions send empty metric, values and documentation strings: no crash, no noise."""
    event = monitoring.parse(load_input("gcm_log_match_open"))
    assert (details(event).metric_type, details(event).observed_value, details(event).threshold_value) == (
        "",
        "",
        "",
    )
    assert event.notes == ()


def test_cancelled_incident_keeps_its_free_text_observed_value() -> None:
    """A cancelled incident's observed_value is a sentence; it is kept as text, not parsed as a number."""
    event = monitoring.parse(load_input("gcm_cancelled_closed"))
    assert details(event).observed_value.startswith("Incident cancelled because the alert policy")
    assert (event.status, event.severity) == (Status.RESOLVED, Severity.ERROR)


def test_numeric_observed_and_threshold_values_become_text() -> None:
    """Hand-made copies may send numbers; they are stored as text like the real strings."""
    event = monitoring.parse(incident(observed_value=7.5, threshold_value=3))
    assert (details(event).observed_value, details(event).threshold_value) == ("7.5", "3")


def test_overlong_summary_is_clipped_not_rejected() -> None:
    """A very long summary is cut to the model's limit instead of failing the event."""
    event = monitoring.parse(incident(summary="s" * 10_000))
    assert len(event.summary) == 4000
    assert event.summary.endswith("…")


# --- labels and links --------------------------------------------------------------------------


def test_labels_combine_user_labels_and_well_known_resource_labels() -> None:
    """Policy and metadata user labels, plus resource type, project and GKE location labels."""
    event = monitoring.parse(load_input("gcm_threshold_open"))
    assert event.labels == {
        "app": "asr-api",
        "cluster": "ml-prod-1",
        "env": "prod",
        "location": "europe-west4",
        "namespace": "speech",
        "project": "acme-ml-prod",
        "resource_type": "k8s_container",
        "team": "speech",
    }


@pytest.mark.parametrize(
    ("fields", "project"),
    [
        pytest.param(
            {
                "resource": {"type": "gce_instance", "labels": {"project_id": "res-proj"}},
                "scoping_project_id": "scope",
            },
            "res-proj",
            id="resource-project",
        ),
        pytest.param(
            {"resource": {"type": "uptime_url"}, "scoping_project_id": "scope"}, "scope", id="scoping"
        ),
        pytest.param({"resource": "not-an-object"}, None, id="none"),
    ],
)
def test_project_label_prefers_the_resource_project(fields: dict[str, Any], project: str | None) -> None:
    """The monitored resource's project wins over the scoping project, which only hosts the policy."""
    event = monitoring.parse(incident(**fields))
    assert event.labels.get("project") == project
    assert details(event).project_id == (project or "")


def test_label_values_are_always_strings() -> None:
    """Non-string label values (numbers, booleans) are converted so routing filters can match them."""
    event = monitoring.parse(incident(policy_user_labels={"tier": 1, "paging": True}))
    assert (event.labels["tier"], event.labels["paging"]) == ("1", "true")


def test_links_are_the_incident_and_documentation_links() -> None:
    """The console link comes first, then http(s) documentation links; others are skipped with a note."""
    event = monitoring.parse(load_input("gcm_threshold_open"))
    assert [(lnk.title, lnk.url.split("?")[0]) for lnk in event.links] == [
        (
            "Cloud Monitoring incident",
            "https://console.cloud.google.com/monitoring/alerting/alerts/0.qa7test1ncdt",
        ),
        ("Runbook", "https://runbooks.example.test/asr-api/crashloop"),
    ]
    assert event.notes == ("documentation link 'mailto:oncall@example.test' is not an http(s) URL; skipped",)


def test_links_are_capped_at_the_model_limit() -> None:
    """Many documentation links are cut to the model's ten, with a note."""
    links = [{"displayName": f"doc {i}", "url": f"https://docs.example.test/{i}"} for i in range(15)]
    event = monitoring.parse(incident(url="https://console.example.test/i", documentation={"links": links}))
    assert len(event.links) == 10
    assert event.notes == ("only the first 10 links are kept",)


@pytest.mark.parametrize(
    "documentation",
    [
        pytest.param({"content": "", "mime_type": "", "subject": ""}, id="empty-strings"),
        pytest.param({}, id="empty-object"),
        pytest.param(None, id="null"),
        pytest.param({"links": None}, id="null-links"),
        pytest.param({"links": [{"displayName": "", "url": "https://d.example.test"}]}, id="untitled-link"),
    ],
)
def test_sparse_documentation_never_crashes(documentation: Any) -> None:
    """documentation may be empty, null or partial: the event is built all the same."""
    event = monitoring.parse(incident(documentation=documentation))
    assert event.status is Status.FIRING
    assert all(lnk.title for lnk in event.links)


def test_dispatcher_routes_incidents_here() -> None:
    """parse_payload recognises an incident by shape and returns the same event."""
    body = load_input("gcm_threshold_closed")
    assert parse_payload(body) == monitoring.parse(body)
