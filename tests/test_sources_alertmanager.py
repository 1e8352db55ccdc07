"""The Alertmanager parser: per-alert messages (and single-alert webhook notifications) to one AlertEvent.

Golden files: tests/data/sources/alertmanager_*.input.json are parsed and compared with the matching
*.expected.json. After an intended change, regenerate them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_sources_alertmanager.py`` and review the diff.
alertmanager_group.notification.json is a three-alert group for ``split`` (not a golden input).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.errors import Reason, UnsupportedPayload
from shared.model import MAX_LABELS, MAX_TEXT, AlertEvent, AlertmanagerDetails, Severity, Status, stable_id
from shared.sources import alertmanager, parse_payload
from tests.golden import SOURCES_DIR, assert_golden_event, case_id, golden_inputs, load_input, read_json

GOLDEN_INPUTS = golden_inputs("alertmanager_")
ZERO_TIME = "0001-01-01T00:00:00Z"


def am_alert(**fields: Any) -> dict[str, Any]:
    """One entry of a notification's ``alerts``; keyword arguments replace or add fields (``...`` removes)."""
    base: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "QueueBacklog", "namespace": "jobs", "severity": "error"},
        "annotations": {"summary": "Backlog is growing", "description": "Queue jobs/render has 912 items."},
        "startsAt": "2026-05-02T09:41:07.123456789Z",
        "endsAt": ZERO_TIME,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=queue_depth",
        "fingerprint": "9f8e7d6c5b4a3921",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def message(alert: Any = None, **fields: Any) -> dict[str, Any]:
    """A per-alert message as the ingest function publishes it (``...`` removes a top-level field)."""
    base: dict[str, Any] = {
        "source": "alertmanager",
        "version": 1,
        "receiver": "relay",
        "groupKey": '{}:{alertname="QueueBacklog"}',
        "externalURL": "http://alertmanager:9093",
        "alert": am_alert() if alert is None else alert,
        "commonLabels": {"alertname": "QueueBacklog"},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def notification(*alerts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A version-4 Alertmanager webhook body holding ``alerts``."""
    base: dict[str, Any] = {
        "receiver": "relay",
        "status": "firing",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "QueueBacklog"},
        "commonLabels": {"alertname": "QueueBacklog"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="QueueBacklog"}',
        "truncatedAlerts": 0,
    }
    base.update(fields)
    return base


def details(event: AlertEvent) -> AlertmanagerDetails:
    assert isinstance(event.details, AlertmanagerDetails)
    return event.details


def load_group() -> dict[str, Any]:
    return read_json(SOURCES_DIR / "alertmanager_group.notification.json")


def rejection(payload: Any) -> UnsupportedPayload:
    with pytest.raises(UnsupportedPayload) as info:
        alertmanager.parse(payload)
    assert info.value.reason is Reason.MALFORMED_PAYLOAD
    return info.value


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("input_path", GOLDEN_INPUTS, ids=case_id)
def test_fixture_parses_to_golden_event(input_path: Path) -> None:
    """Each Alertmanager fixture parses to exactly its reviewed expected event."""
    assert_golden_event(alertmanager.parse(read_json(input_path)), input_path)


def test_golden_fixtures_exist() -> None:
    """The golden test above is not silently empty."""
    assert len(GOLDEN_INPUTS) >= 5


# --- status, ids, times ------------------------------------------------------------------------


def test_firing_alert_with_nanosecond_start_and_zero_end_is_open() -> None:
    """Nanoseconds are cut to microseconds; Go's zero endsAt means no end time and no duration."""
    event = alertmanager.parse(load_input("alertmanager_firing_nanoseconds"))
    assert event.status is Status.FIRING
    assert event.started_at == datetime(2026, 5, 2, 9, 41, 7, 123456, tzinfo=UTC)
    assert (event.ended_at, event.duration_seconds, event.notes) == (None, None, ())


def test_resolved_alert_has_its_end_and_duration() -> None:
    """A resolved alert's endsAt becomes ended_at, and the difference the duration."""
    event = alertmanager.parse(load_input("alertmanager_resolved_with_end"))
    assert event.status is Status.RESOLVED
    assert event.ended_at == datetime(2026, 5, 2, 10, 3, 52, 987654, tzinfo=UTC)
    assert event.duration_seconds == pytest.approx(22 * 60 + 45.864198)


def test_firing_and_resolved_share_the_fingerprint_but_not_the_event_id() -> None:
    """The resolved notification resolves the firing one (same fingerprint) yet is its own occurrence."""
    firing = alertmanager.parse(load_input("alertmanager_firing_nanoseconds"))
    resolved = alertmanager.parse(load_input("alertmanager_resolved_with_end"))
    assert firing.fingerprint == resolved.fingerprint == stable_id("alertmanager", "c1a2b3d4e5f60718")
    assert firing.event_id != resolved.event_id


def test_repeat_notification_of_a_firing_alert_has_the_same_event_id() -> None:
    """A repeat (repeat_interval, or the other member of an HA pair) is the same occurrence."""
    first = alertmanager.parse(message())
    again = alertmanager.parse(message(receiver="relay", groupKey="{}:{other}"))
    assert first.event_id == again.event_id == alertmanager.parse(message()).event_id


def test_refiring_after_a_resolve_is_a_new_occurrence() -> None:
    """The same alert firing again starts at a new time: same fingerprint, new event id."""
    first = alertmanager.parse(message())
    later = alertmanager.parse(message(am_alert(startsAt="2026-05-03T08:00:00Z")))
    assert first.fingerprint == later.fingerprint
    assert first.event_id != later.event_id


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("firing", Status.FIRING, id="firing"),
        pytest.param("resolved", Status.RESOLVED, id="resolved"),
        pytest.param("FIRING", Status.FIRING, id="upper-case"),
        pytest.param(" Resolved ", Status.RESOLVED, id="mixed-case-padded"),
    ],
)
def test_status_maps_case_insensitively(status: str, expected: Status) -> None:
    """firing/resolved in any case; the raw value is kept as source_status."""
    event = alertmanager.parse(message(am_alert(status=status, endsAt="2026-05-02T10:00:00Z")))
    assert (event.status, event.source_status) == (expected, status)


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        pytest.param("pending", "'pending' is not 'firing' or 'resolved'", id="pending"),
        pytest.param("", "is missing", id="empty"),
        pytest.param(..., "is missing", id="absent"),
    ],
)
def test_unknown_status_is_a_malformed_payload_naming_alert_status(status: Any, problem: str) -> None:
    """Without firing or resolved the alert cannot be tracked: a permanent error naming alert.status."""
    error = rejection(message(am_alert(status=status)))
    assert str(error) == f"alertmanager payload: alert.status {problem}"


def test_firing_alert_ignores_a_non_zero_end_time() -> None:
    """A firing alert's endsAt is when it would time out, not an end: no end time, no duration."""
    event = alertmanager.parse(message(am_alert(endsAt="2026-05-02T10:00:00Z")))
    assert (event.ended_at, event.duration_seconds, event.notes) == (None, None, ())


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        pytest.param("2026-05-02T09:41:07Z", datetime(2026, 5, 2, 9, 41, 7, tzinfo=UTC), id="no-fraction"),
        pytest.param(
            "2026-05-02T09:41:07.5Z", datetime(2026, 5, 2, 9, 41, 7, 500000, tzinfo=UTC), id="short-fraction"
        ),
        pytest.param(
            "2026-05-02T11:41:07.000000001+02:00",
            datetime(2026, 5, 2, 9, 41, 7, tzinfo=UTC),
            id="offset-nanos",
        ),
    ],
)
def test_go_rfc3339_times_become_utc(starts: str, expected: datetime) -> None:
    """Any fraction length and any offset: the event holds the instant in UTC."""
    event = alertmanager.parse(message(am_alert(startsAt=starts)))
    assert event.started_at == expected
    assert event.started_at is not None and event.started_at.utcoffset() is not None


def test_unreadable_times_are_noted_not_fatal() -> None:
    """A time that is not RFC 3339 is dropped with a note; the alert still goes out."""
    event = alertmanager.parse(message(am_alert(startsAt="yesterday")))
    assert event.started_at is None
    assert event.notes == ("alert.startsAt 'yesterday' is not an RFC 3339 time; ignored",)


def test_resolved_without_an_end_time_is_noted() -> None:
    """A resolved alert with Go's zero endsAt is still resolved; the missing end is noted."""
    event = alertmanager.parse(message(am_alert(status="resolved")))
    assert (event.status, event.ended_at, event.duration_seconds) == (Status.RESOLVED, None, None)
    assert event.notes == ("alert is resolved but alert.endsAt is not set; no end time",)


def test_end_before_start_gives_no_duration() -> None:
    """Clock skew between Prometheus servers must not produce a negative duration."""
    event = alertmanager.parse(
        message(am_alert(status="resolved", startsAt="2026-05-02T10:00:00Z", endsAt="2026-05-02T09:00:00Z"))
    )
    assert event.duration_seconds is None
    assert event.notes == ("alert.endsAt is before alert.startsAt; no duration",)


# --- fingerprint -------------------------------------------------------------------------------


def test_alert_without_fingerprint_is_fingerprinted_by_its_labels_in_any_order() -> None:
    """Without Alertmanager's fingerprint the sorted label set names the alert, whatever the key order."""
    labels = {"alertname": "QueueBacklog", "namespace": "jobs", "severity": "error"}
    reordered = dict(reversed(list(labels.items())))
    one = alertmanager.parse(message(am_alert(fingerprint=..., labels=labels)))
    two = alertmanager.parse(message(am_alert(fingerprint=..., labels=reordered)))
    assert one.fingerprint == two.fingerprint == stable_id("alertmanager", sorted(labels.items()))
    assert one.event_id == two.event_id
    assert details(one).am_fingerprint == ""


def test_different_label_sets_without_fingerprint_are_different_alerts() -> None:
    """Two label sets are two alerts, even without Alertmanager's fingerprint."""
    one = alertmanager.parse(message(am_alert(fingerprint=..., labels={"alertname": "A", "pod": "p1"})))
    two = alertmanager.parse(message(am_alert(fingerprint=..., labels={"alertname": "A", "pod": "p2"})))
    assert one.fingerprint != two.fingerprint


# --- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        pytest.param("critical", Severity.CRITICAL, id="critical"),
        pytest.param("Critical", Severity.CRITICAL, id="Critical"),
        pytest.param("error", Severity.ERROR, id="error"),
        pytest.param("warning", Severity.WARNING, id="warning"),
        pytest.param("info", Severity.INFO, id="info"),
        pytest.param("page", Severity.CRITICAL, id="page"),
        pytest.param("HIGH", Severity.CRITICAL, id="high"),
        pytest.param("low", Severity.INFO, id="low"),
        pytest.param("none", Severity.INFO, id="none"),
        pytest.param("", Severity.WARNING, id="empty"),
        pytest.param(..., Severity.WARNING, id="absent"),
    ],
)
def test_severity_maps_from_the_severity_label(label: Any, expected: Severity) -> None:
    """The usual Prometheus spellings map to the model's severities without a note."""
    labels: dict[str, Any] = {"alertname": "X", "severity": label}
    event = alertmanager.parse(message(am_alert(labels={k: v for k, v in labels.items() if v is not ...})))
    assert (event.severity, event.notes) == (expected, ())


def test_unknown_severity_is_warning_with_a_note() -> None:
    """An unrecognised severity never fails the event: warning, and a note saying why."""
    event = alertmanager.parse(message(am_alert(labels={"alertname": "X", "severity": "P2"})))
    assert event.severity is Severity.WARNING
    assert event.notes == ("label severity='P2' is not a known severity; using warning",)


# --- title, summary, labels, annotations -------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "labels", "title"),
    [
        pytest.param({"summary": "S"}, {"alertname": "A"}, "S", id="summary"),
        pytest.param({"summary": "  "}, {"alertname": "A"}, "A", id="blank-summary-alertname"),
        pytest.param({}, {"alertname": "A"}, "A", id="alertname"),
        pytest.param({}, {"job": "j"}, "Alertmanager alert", id="fallback"),
    ],
)
def test_title_falls_back_from_summary_to_alertname(
    annotations: dict[str, str], labels: dict[str, str], title: str
) -> None:
    """The title is annotations.summary, else labels.alertname, else a generic title."""
    assert alertmanager.parse(message(am_alert(annotations=annotations, labels=labels))).title == title


@pytest.mark.parametrize(
    ("annotations", "summary"),
    [
        pytest.param({"description": "D", "message": "M"}, "D", id="description"),
        pytest.param({"message": "M"}, "M", id="message"),
        pytest.param({"summary": "S"}, "", id="none"),
    ],
)
def test_summary_is_description_else_message(annotations: dict[str, str], summary: str) -> None:
    """The summary is annotations.description, else annotations.message, else empty."""
    assert alertmanager.parse(message(am_alert(annotations=annotations))).summary == summary


def test_slack_mentions_in_annotations_are_kept_verbatim() -> None:
    """'<!channel>' is text here; escaping it is the Slack formatter's job, not the parser's."""
    event = alertmanager.parse(load_input("alertmanager_firing_nanoseconds"))
    assert event.summary.startswith("<!channel> Pod speech/")
    assert details(event).annotations["description"].startswith("<!channel> ")


def test_labels_are_all_alert_labels_as_strings() -> None:
    """Every alert label is kept; non-string values become text so routing filters match them."""
    event = alertmanager.parse(
        message(am_alert(labels={"alertname": "X", "replicas": 3, "paging": True, "team": "ml"}))
    )
    assert event.labels == {"alertname": "X", "paging": "true", "replicas": "3", "team": "ml"}


def test_too_many_labels_keep_the_routing_labels() -> None:
    """Over MAX_LABELS, alertname/namespace/team/... survive and a note says how many were cut."""
    labels = {f"extra_{i:03d}": "v" for i in range(MAX_LABELS + 10)}
    labels.update(alertname="X", namespace="ns", team="ml", severity="error", job="j", env="prod")
    event = alertmanager.parse(message(am_alert(labels=labels)))
    assert len(event.labels) == MAX_LABELS
    assert {"alertname", "namespace", "team", "severity", "job", "env"} <= set(event.labels)
    assert event.notes == (f"only {MAX_LABELS} of {MAX_LABELS + 16} labels are kept",)


def test_overlong_texts_are_clipped_not_rejected() -> None:
    """Long annotations and label values are cut to the model's limits instead of failing the event."""
    event = alertmanager.parse(
        message(
            am_alert(
                annotations={"summary": "s" * 5000, "description": "d" * 10_000},
                labels={"alertname": "X", "pod": "p" * 1000},
            )
        )
    )
    assert (len(event.title), len(event.summary), len(event.labels["pod"])) == (1000, MAX_TEXT, 512)
    assert len(details(event).annotations["description"]) == MAX_TEXT
    assert event.summary.endswith("…")


def test_details_carry_the_alertmanager_fields() -> None:
    """Details keep alertname, Alertmanager's fingerprint, receiver, group key, source URL, annotations."""
    event = alertmanager.parse(message())
    assert details(event) == AlertmanagerDetails(
        alertname="QueueBacklog",
        am_fingerprint="9f8e7d6c5b4a3921",
        receiver="relay",
        group_key='{}:{alertname="QueueBacklog"}',
        generator_url="http://prometheus:9090/graph?g0.expr=queue_depth",
        annotations={"summary": "Backlog is growing", "description": "Queue jobs/render has 912 items."},
    )


def test_annotations_that_are_not_an_object_are_noted() -> None:
    """Unreadable annotations are dropped with a note; title falls back to the alertname."""
    event = alertmanager.parse(message(am_alert(annotations=["oops"])))
    assert (event.title, details(event).annotations) == ("QueueBacklog", {})
    assert event.notes == ("alert.annotations must be an object, got array; ignored",)


# --- links -------------------------------------------------------------------------------------


def test_links_are_source_runbook_dashboard_and_alertmanager() -> None:
    """generatorURL, runbook and dashboard annotations and the Alertmanager UI, in that order."""
    event = alertmanager.parse(load_input("alertmanager_firing_nanoseconds"))
    assert [(lnk.title, lnk.url.split("?")[0]) for lnk in event.links] == [
        ("Source", "http://prometheus-k8s-0:9090/graph"),
        ("Runbook", "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"),
        ("Dashboard", "https://grafana.example.test/d/pods/kubernetes-pods"),
        ("Alertmanager", "http://alertmanager.monitoring.svc:9093/#/alerts"),
    ]


def test_grafana_url_is_the_dashboard_when_there_is_no_dashboard_url() -> None:
    """grafana_url stands in for dashboard_url; a trailing slash on externalURL is not doubled."""
    event = alertmanager.parse(
        message(
            am_alert(annotations={"grafana_url": "https://g.example.test/d/1"}),
            externalURL="https://am.example.test/",
        )
    )
    assert [(lnk.title, lnk.url) for lnk in event.links][1:] == [
        ("Dashboard", "https://g.example.test/d/1"),
        ("Alertmanager", "https://am.example.test/#/alerts"),
    ]


@pytest.mark.parametrize(
    ("alert_fields", "message_fields", "note"),
    [
        pytest.param(
            {"generatorURL": "prometheus-0:9090/graph"},
            {},
            "alert.generatorURL 'prometheus-0:9090/graph' is not an http(s) URL; no Source link added",
            id="generator-url",
        ),
        pytest.param(
            {"annotations": {"runbook_url": "wiki/Runbook"}},
            {},
            "annotation runbook_url 'wiki/Runbook' is not an http(s) URL; no Runbook link added",
            id="runbook",
        ),
        pytest.param(
            {},
            {"externalURL": "alertmanager:9093"},
            "externalURL 'alertmanager:9093' is not an http(s) URL; no Alertmanager link added",
            id="external-url",
        ),
    ],
)
def test_non_http_urls_are_noted_and_skipped(
    alert_fields: dict[str, Any], message_fields: dict[str, Any], note: str
) -> None:
    """Only http(s) URLs become links; anything else is left out with a note, never fatal."""
    event = alertmanager.parse(message(am_alert(**alert_fields), **message_fields))
    assert all(lnk.url.startswith(("http://", "https://")) for lnk in event.links)
    assert event.notes == (note,)


def test_non_http_generator_url_is_still_kept_in_details() -> None:
    """The raw generatorURL stays in details for whoever reads the event, even when not linked."""
    event = alertmanager.parse(message(am_alert(generatorURL="prometheus-0:9090/graph")))
    assert details(event).generator_url == "prometheus-0:9090/graph"
    assert "Source" not in [lnk.title for lnk in event.links]


def test_empty_urls_add_no_link_and_no_note() -> None:
    """Absent or empty URLs are simply not linked."""
    event = alertmanager.parse(message(am_alert(generatorURL=""), externalURL=...))
    assert (event.links, event.notes) == ((), ())


# --- malformed messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        pytest.param(
            message(alert=am_alert(labels=...)),
            "alertmanager payload: alert.labels is missing",
            id="no-labels",
        ),
        pytest.param(
            message(alert=am_alert(labels=["a"])),
            "alertmanager payload: alert.labels must be an object, got array",
            id="labels-list",
        ),
        pytest.param(
            message(alert="x"), "alertmanager payload: alert must be an object, got string", id="alert-string"
        ),
        pytest.param(
            message(alert=...),
            "alertmanager payload: alert is missing (expected one alert per message, as the ingest "
            "function publishes, or an Alertmanager notification with 'alerts')",
            id="no-alert",
        ),
    ],
)
def test_untrackable_messages_are_malformed_payloads_naming_the_field(payload: Any, text: str) -> None:
    """Without an alert or its labels nothing can be tracked: a permanent error naming the field."""
    assert str(rejection(payload)) == text


def test_parse_does_not_modify_its_input() -> None:
    """The payload is read, never changed (a retry must see the same message)."""
    body = load_input("alertmanager_v4_single_alert")
    before = copy.deepcopy(body)
    alertmanager.parse(body)
    assert body == before


def test_message_version_other_than_1_is_noted() -> None:
    """An unexpected message version is read as version 1, with a note."""
    event = alertmanager.parse(message(version=2))
    assert event.notes == ("alertmanager message version '2' is not 1; read as version 1",)


# --- version-4 notifications -------------------------------------------------------------------


def test_single_alert_notification_parses_like_its_split_message() -> None:
    """A version-4 notification with one alert is read directly, with the group's receiver and key."""
    body = load_input("alertmanager_v4_single_alert")
    event = alertmanager.parse(body)
    assert event == alertmanager.parse(alertmanager.split(body)[0])
    assert (details(event).receiver, details(event).group_key) == ("relay", '{}:{alertname="TargetDown"}')
    assert event.notes == ()


@pytest.mark.parametrize(
    ("count", "text"),
    [
        pytest.param(
            2,
            "alertmanager notification holds 2 alerts; send it to the ingest function, which splits "
            "groups into one message per alert",
            id="two",
        ),
        pytest.param(0, "alertmanager notification holds no alerts; there is nothing to relay", id="none"),
    ],
)
def test_notification_without_exactly_one_alert_is_rejected(count: int, text: str) -> None:
    """One message makes one event: a group must go through the ingest function's split first."""
    body = notification(*[am_alert(fingerprint=f"fp{i}") for i in range(count)])
    assert str(rejection(body)) == text


def test_truncated_alerts_are_noted() -> None:
    """When max_alerts cut the group, the event says how many alerts the relay never received."""
    event = alertmanager.parse(load_input("alertmanager_truncated_group"))
    assert event.notes == (
        "Alertmanager left 4 more alerts of this group out of its notification (webhook max_alerts); "
        "the relay never received them",
    )


def test_dispatcher_routes_messages_and_notifications_here() -> None:
    """parse_payload recognises both the per-alert message and a webhook notification."""
    for body in (message(), load_input("alertmanager_v4_single_alert")):
        assert parse_payload(body) == alertmanager.parse(body)


# --- split ---------------------------------------------------------------------------------------


def test_split_makes_one_parseable_message_per_alert() -> None:
    """A three-alert group becomes three messages; each parses to its own alert."""
    messages = alertmanager.split(load_group())
    events = [alertmanager.parse(m) for m in messages]
    assert [e.labels["job_name"] for e in events] == [
        "nightly-export-29112",
        "nightly-import-29113",
        "nightly-reindex-29110",
    ]
    assert [e.status for e in events] == [Status.FIRING, Status.FIRING, Status.RESOLVED]
    assert len({e.fingerprint for e in events}) == 3
    assert len({e.event_id for e in events}) == 3


def test_split_messages_carry_the_group_fields() -> None:
    """Each message has the per-alert shape with the group's receiver, key, URL and common labels."""
    group = load_group()
    messages = alertmanager.split(group)
    for alert, msg in zip(group["alerts"], messages, strict=True):
        assert msg == {
            "source": "alertmanager",
            "version": 1,
            "receiver": "relay",
            "groupKey": '{}:{namespace="etl"}',
            "externalURL": "http://alertmanager:9093",
            "alert": alert,
            "commonLabels": {"alertname": "KubeJobFailed", "namespace": "etl", "severity": "warning"},
        }
        json.dumps(msg)  # publishable as is


def test_split_messages_are_independent_copies() -> None:
    """Changing one message (or the notification) afterwards changes nothing else."""
    group = load_group()
    messages = alertmanager.split(group)
    messages[0]["alert"]["labels"]["alertname"] = "changed"
    messages[0]["commonLabels"]["alertname"] = "changed"
    assert group["alerts"][0]["labels"]["alertname"] == "KubeJobFailed"
    assert messages[1]["commonLabels"]["alertname"] == "KubeJobFailed"


def test_split_keeps_truncated_alerts_in_each_message() -> None:
    """truncatedAlerts > 0 travels as 'truncated_alerts' in every message, so each event notes it."""
    messages = alertmanager.split(notification(am_alert(), truncatedAlerts=7))
    assert messages[0]["truncated_alerts"] == 7
    assert alertmanager.parse(messages[0]).notes == (
        "Alertmanager left 7 more alerts of this group out of its notification (webhook max_alerts); "
        "the relay never received them",
    )


@pytest.mark.parametrize("truncated", [0, None, ...], ids=["zero", "null", "absent"])
def test_split_leaves_out_truncated_alerts_when_none_were_cut(truncated: Any) -> None:
    """Without truncation the messages carry no truncated_alerts field."""
    body = notification(am_alert(), truncatedAlerts=truncated)
    if truncated is ...:
        del body["truncatedAlerts"]
    assert "truncated_alerts" not in alertmanager.split(body)[0]


def test_unreadable_truncated_alerts_is_noted() -> None:
    """A truncated_alerts value that is not a count is passed on and noted, not fatal."""
    messages = alertmanager.split(notification(am_alert(), truncatedAlerts="many"))
    assert alertmanager.parse(messages[0]).notes == ("truncated_alerts 'many' is not a count; ignored",)


def test_split_of_an_empty_group_is_empty() -> None:
    """No alerts, no messages (the ingest function then has nothing to publish)."""
    assert alertmanager.split(notification()) == []


@pytest.mark.parametrize(
    ("body", "text"),
    [
        pytest.param({"receiver": "relay"}, "alertmanager notification: alerts is missing", id="missing"),
        pytest.param(
            {"alerts": {"status": "firing"}},
            "alertmanager notification: alerts must be a list, got object",
            id="object",
        ),
        pytest.param(
            {"alerts": [am_alert(), "oops"]},
            "alertmanager notification: alerts[1] must be an object, got string",
            id="alert-not-object",
        ),
        pytest.param([], "alertmanager notification must be an object, got array", id="not-object"),
    ],
)
def test_split_rejects_notifications_it_cannot_read(body: Any, text: str) -> None:
    """split names the problem in a permanent error instead of publishing half a group."""
    with pytest.raises(UnsupportedPayload) as info:
        alertmanager.split(body)
    assert str(info.value) == text
    assert info.value.reason is Reason.MALFORMED_PAYLOAD
