"""The Argo exit-handler parser: Argo's awkward wire formats in, one AlertEvent out.

Golden files: tests/data/sources/argo_*.input.json are parsed and compared with the matching
*.expected.json. After an intended change, regenerate them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_sources_argo.py`` and review the diff.
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.errors import Reason, UnsupportedPayload
from shared.model import MAX_FAILED_STEPS, MAX_TEXT, AlertEvent, ArgoDetails, FailedStep, Severity, Status
from shared.sources import argo, parse_payload
from tests.golden import assert_golden_event, case_id, golden_inputs, read_json

GOLDEN_INPUTS = golden_inputs("argo_")

WF = "train-nightly-p4t9x"


def node(
    name: str,
    message: str = "Error (exit code 1)",
    template: str = "step",
    finished: str = "2026-05-02T10:00:00Z",
    phase: str = "Failed",
) -> dict[str, str]:
    """One ``workflow.failures`` entry, keys in the order Argo marshals them."""
    return {
        "displayName": name,
        "message": message,
        "templateName": template,
        "phase": phase,
        "podName": f"{WF}-{template}-1234",
        "finishedAt": finished,
    }


def go_quoted(nodes: Any) -> str:
    """What Argo substitutes for ``{{workflow.failures}}``: strconv.Quote of the JSON array."""
    return json.dumps(json.dumps(nodes, separators=(",", ":")))


def payload(**workflow: Any) -> dict[str, Any]:
    """A minimal valid Failed payload; keyword arguments replace or add ``workflow`` fields."""
    base: dict[str, Any] = {
        "name": WF,
        "namespace": "ml",
        "uid": "00000000-1111-4222-8333-444455556666",
        "status": "Failed",
        "created_at": "2026-05-02T09:00:00Z",
        "duration": "3600.000000",
        "failures": go_quoted([node("train")]),
    }
    base.update(workflow)
    return {"source": "argo", "version": 1, "workflow": {k: v for k, v in base.items() if v is not ...}}


def details(event: AlertEvent) -> ArgoDetails:
    assert isinstance(event.details, ArgoDetails)
    return event.details


def step_names(event: AlertEvent) -> list[str]:
    return [s.name for s in details(event).failed_steps]


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("input_path", GOLDEN_INPUTS, ids=case_id)
def test_fixture_parses_to_golden_event(input_path: Path) -> None:
    """Each argo fixture parses to exactly its reviewed expected event."""
    assert_golden_event(argo.parse(read_json(input_path)), input_path)


def test_golden_fixtures_exist() -> None:
    """The golden test above is not silently empty."""
    assert len(GOLDEN_INPUTS) >= 5


# --- workflow.failures shapes ----------------------------------------------------------------------

TWO_LEAVES = [
    node("train", finished="2026-05-02T10:00:00Z"),
    node("evaluate", finished="2026-05-02T10:05:00Z"),
]


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(go_quoted(TWO_LEAVES), ["train", "evaluate"], id="go-quoted-string"),
        pytest.param(json.dumps(TWO_LEAVES), ["train", "evaluate"], id="bare-array-text"),
        pytest.param(TWO_LEAVES, ["train", "evaluate"], id="json-array"),
        pytest.param("  " + go_quoted(TWO_LEAVES) + "\n", ["train", "evaluate"], id="surrounding-whitespace"),
        pytest.param(json.dumps(go_quoted(TWO_LEAVES)), ["train", "evaluate"], id="quoted-twice"),
        pytest.param(TWO_LEAVES[0], ["train"], id="single-object"),
        pytest.param('"null"', [], id="quoted-null"),
        pytest.param("null", [], id="null-text"),
        pytest.param(None, [], id="json-null"),
        pytest.param("", [], id="empty-string"),
        pytest.param("[]", [], id="empty-array"),
        pytest.param(..., [], id="absent"),
    ],
)
def test_failures_are_read_in_every_wire_shape(failures: Any, expected: list[str]) -> None:
    """workflow.failures is decoded whether Go-quoted, un-escaped, a real array or empty, without notes."""
    event = argo.parse(payload(failures=failures))
    assert step_names(event) == expected
    assert details(event).failed_steps_total == len(expected)
    assert event.notes == ()


@pytest.mark.parametrize(
    ("failures", "note_start"),
    [
        pytest.param(
            '"[{\\"displayName\\":\\"load', "workflow.failures is not valid JSON", id="truncated-quoted"
        ),
        pytest.param('[{"displayName": "load",', "workflow.failures is not valid JSON", id="truncated-bare"),
        pytest.param("exit code 1", "workflow.failures is not valid JSON", id="plain-text"),
        pytest.param(42, "workflow.failures has an unexpected type", id="number"),
        pytest.param(["oops", node("train")], "workflow.failures[0] is not an object", id="non-object-entry"),
    ],
)
def test_malformed_failures_add_a_note_instead_of_failing(failures: Any, note_start: str) -> None:
    """Unreadable failures never lose the alert: the event is still built and says what was wrong."""
    event = argo.parse(payload(failures=failures))
    assert event.status is Status.FIRING
    assert any(n.startswith(note_start) for n in event.notes), event.notes


def test_go_only_escapes_in_quoted_failures_are_understood() -> None:
    r"""strconv.Quote writes non-printables as \x7f or \U000e0001, which JSON lacks; they still decode."""
    message = "bad \x7f tag \U000e0001 end \\x41"  # DEL, an invisible tag char, a literal backslash
    inner = json.dumps([node("train", message=message)], ensure_ascii=False)
    quoted = (
        json.dumps(inner, ensure_ascii=False).replace("\x7f", "\\x7f").replace("\U000e0001", "\\U000e0001")
    )
    assert "\\x7f" in quoted  # the Go escape, as text
    event = argo.parse(payload(failures=quoted))
    assert details(event).failed_steps[0].message == message
    assert event.notes == ()


# --- parent nodes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(
            [node(WF, "child 'x-1' failed", "main"), node("train")],
            ["train"],
            id="root-node",
        ),
        pytest.param(
            [node("[0]", "child 'x-2' failed", ""), node("[1]", "child 'x-3' failed", ""), node("train")],
            ["train"],
            id="step-groups",
        ),
        pytest.param(
            [node("fan-out", "child 'x-4' failed", "fan-out"), node("train")],
            ["train"],
            id="child-failed-message",
        ),
        pytest.param(
            [node(WF, "", "pipeline"), node("prepare", "", "prepare-dag"), node("train")],
            ["train"],
            id="dag-parents-with-empty-message",
        ),
        pytest.param(
            [node(WF, "", "pipeline"), node("train", "")],
            ["train"],
            id="empty-message-leaf-kept-when-nothing-explains-more",
        ),
        pytest.param(
            [node(WF, "Pod was active on the node longer than the specified deadline", "main")],
            [WF],
            id="single-container-root-is-the-leaf",
        ),
        pytest.param(
            [node(WF, "child 'x-1' failed", "main")],
            [],
            id="lone-parent-gives-no-steps",
        ),
    ],
)
def test_parent_nodes_are_dropped(failures: list[dict[str, str]], expected: list[str]) -> None:
    """Only leaf failures remain: the root, step groups, 'child ... failed' and DAG parents go."""
    assert step_names(argo.parse(payload(failures=go_quoted(failures)))) == expected


def test_retry_attempts_collapse_into_one_step_for_the_last_attempt() -> None:
    """A retried step is one FailedStep with the last attempt's message and the number of attempts."""
    failures = [
        node("train", "No more retries left", finished="2026-05-02T10:30:01Z"),
        node("train(2)", "pod deleted", finished="2026-05-02T10:30:00Z"),
        node("train(0)", "Error (exit code 1)", finished="2026-05-02T10:10:00Z"),
        node("train(1)", "OOMKilled (exit code 137)", finished="2026-05-02T10:20:00Z"),
        node("evaluate", "Error (exit code 2)", finished="2026-05-02T10:40:00Z"),
    ]
    steps = details(argo.parse(payload(failures=go_quoted(failures)))).failed_steps
    assert [(s.name, s.attempts, s.message) for s in steps] == [
        ("train", 3, "pod deleted"),
        ("evaluate", 1, "Error (exit code 2)"),
    ]
    assert steps[0].finished_at == datetime(2026, 5, 2, 10, 30, tzinfo=UTC)


def test_loop_items_are_not_mistaken_for_retries() -> None:
    """withItems children ("x(0:a)") are separate steps, not attempts of one step."""
    failures = [
        node("shard(0:a)", finished="2026-05-02T10:00:00Z"),
        node("shard(1:b)", finished="2026-05-02T10:01:00Z"),
    ]
    event = argo.parse(payload(failures=failures))
    assert step_names(event) == ["shard(0:a)", "shard(1:b)"]
    assert all(s.attempts == 1 for s in details(event).failed_steps)


def test_summary_names_failed_steps_and_retries() -> None:
    """The summary counts leaf failures and names them, retries with their attempts."""
    failures = [
        node("train(0)"),
        node("train(1)", finished="2026-05-02T10:01:00Z"),
        node("a", finished="2026-05-02T11:00:00Z"),
    ]
    assert argo.parse(payload(failures=failures)).summary == "2 steps failed: train (2 attempts), a"


# --- ordering and caps ---------------------------------------------------------------------------

ORDERED = [
    node("fetch", finished="2026-05-02T09:10:00Z"),
    node("b-train", finished="2026-05-02T09:20:00Z"),
    node("a-train", finished="2026-05-02T09:20:00Z"),
    node("undated", finished=""),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(ORDERED)))), ids=str)
def test_steps_are_sorted_by_finish_time_whatever_the_input_order(order: tuple[int, ...]) -> None:
    """Argo lists nodes in random map order; steps come out oldest first, then by name, undated last."""
    event = argo.parse(payload(failures=[ORDERED[i] for i in order]))
    assert step_names(event) == ["fetch", "a-train", "b-train", "undated"]


def test_failed_steps_are_capped_and_the_total_is_kept() -> None:
    """Beyond MAX_FAILED_STEPS only the oldest are kept; failed_steps_total says how many there were."""
    total = MAX_FAILED_STEPS + 7
    start = datetime(2026, 5, 2, tzinfo=UTC)
    failures = [
        node(f"shard-{i:03d}", finished=(start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"))
        for i in reversed(range(total))
    ]
    event = argo.parse(payload(failures=go_quoted(failures)))
    assert len(details(event).failed_steps) == MAX_FAILED_STEPS
    assert details(event).failed_steps_total == total
    assert details(event).failed_steps[0].name == "shard-000"
    assert event.summary.startswith(f"{total} steps failed: shard-000, shard-001")
    assert event.summary.endswith(f"and {total - 5} more")


def test_overlong_message_is_clipped_not_rejected() -> None:
    """A huge step message (a stack trace) is cut to the model's limit instead of failing the event."""
    event = argo.parse(payload(failures=[node("train", message="x" * (MAX_TEXT * 3))]))
    message = details(event).failed_steps[0].message
    assert len(message) == MAX_TEXT
    assert message.endswith("…")


def test_slack_control_sequences_in_messages_are_kept_verbatim() -> None:
    """'<!channel>' and friends stay as sent: escaping belongs to formatting, not to parsing."""
    text = "Error: <!channel> & <@U123|bob> *bold* `rm -rf`"
    event = argo.parse(payload(failures=go_quoted([node("train", message=text)])))
    assert details(event).failed_steps[0].message == text


# --- status and severity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argo_status", "status", "severity", "title"),
    [
        pytest.param("Succeeded", Status.RESOLVED, Severity.INFO, f"Workflow {WF} succeeded", id="succeeded"),
        pytest.param("Failed", Status.FIRING, Severity.ERROR, f"Workflow {WF} failed", id="failed"),
        pytest.param("Error", Status.FIRING, Severity.CRITICAL, f"Workflow {WF} errored", id="error"),
    ],
)
def test_argo_status_maps_to_status_severity_and_title(
    argo_status: str, status: Status, severity: Severity, title: str
) -> None:
    """Succeeded resolves (info); Failed fires as error; Error fires as critical."""
    event = argo.parse(payload(status=argo_status))
    assert (event.status, event.severity, event.title, event.source_status) == (
        status,
        severity,
        title,
        argo_status,
    )
    assert event.notes == ()


@pytest.mark.parametrize(
    ("argo_status", "source_status", "note_start"),
    [
        pytest.param(
            "Running", "Running", "workflow.status 'Running' is not a final Argo status", id="running"
        ),
        pytest.param(
            "Omitted", "Omitted", "workflow.status 'Omitted' is not a final Argo status", id="other"
        ),
        pytest.param(..., "", "workflow.status is missing", id="absent"),
    ],
)
def test_unknown_status_fires_as_warning_with_a_note(
    argo_status: Any, source_status: str, note_start: str
) -> None:
    """A status Argo should not give an exit handler still alerts, as a warning, and says why."""
    event = argo.parse(payload(status=argo_status))
    assert (event.status, event.severity, event.source_status) == (
        Status.FIRING,
        Severity.WARNING,
        source_status,
    )
    assert event.notes[0].startswith(note_start)


@pytest.mark.parametrize(
    ("workflow_labels", "publisher_labels", "expected"),
    [
        pytest.param({"severity": "critical"}, {}, Severity.CRITICAL, id="workflow-label"),
        pytest.param({}, {"severity": "Warning"}, Severity.WARNING, id="publisher-label-any-case"),
        pytest.param({"severity": "info"}, {"severity": "critical"}, Severity.CRITICAL, id="publisher-wins"),
    ],
)
def test_severity_label_overrides_the_status_severity(
    workflow_labels: dict[str, str], publisher_labels: dict[str, str], expected: Severity
) -> None:
    """A valid `severity` label decides the severity (publisher label over workflow label)."""
    body = payload(labels=workflow_labels)
    body["labels"] = publisher_labels
    assert argo.parse(body).severity is expected


def test_invalid_severity_label_is_ignored_with_a_note() -> None:
    """An unknown severity label keeps the status's severity and says so."""
    event = argo.parse(payload(labels={"severity": "sev1"}))
    assert event.severity is Severity.ERROR
    assert event.notes[0].startswith("label severity='sev1' is not one of")


# --- fatal problems ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(payload(name=...), "argo payload: workflow.name is missing", id="name-absent"),
        pytest.param(payload(name="  "), "argo payload: workflow.name is missing", id="name-blank"),
        pytest.param(
            payload(namespace=...), "argo payload: workflow.namespace is missing", id="namespace-absent"
        ),
        pytest.param(
            payload(name=7), "argo payload: workflow.name must be a string, got int", id="name-number"
        ),
        pytest.param({"source": "argo"}, "argo payload: workflow is missing", id="workflow-absent"),
        pytest.param(
            {"source": "argo", "workflow": "wf-1"},
            "argo payload: workflow must be an object, got string",
            id="workflow-not-object",
        ),
    ],
)
def test_missing_identity_is_a_malformed_payload_naming_the_field(body: dict[str, Any], message: str) -> None:
    """Without a workflow name and namespace the alert cannot be identified: a permanent error."""
    with pytest.raises(UnsupportedPayload) as info:
        argo.parse(body)
    assert str(info.value) == message
    assert info.value.reason is Reason.MALFORMED_PAYLOAD
    assert not info.value.retryable


# --- labels, parameters, identity -------------------------------------------------------------


def test_labels_merge_workflow_publisher_and_facts() -> None:
    """Workflow labels (minus argo noise), publisher labels on top, then namespace/workflow/env."""
    body = payload(
        labels={
            "team": "ml",
            "workflows.argoproj.io/phase": "Failed",
            "workflows.argoproj.io/workflow-template": "train-nightly",
            "namespace": "spoofed",
        }
    )
    body["labels"] = {"team": "ml-platform", "tier": 1, "on_call": True}
    body["env"] = "prod"
    assert argo.parse(body).labels == {
        "env": "prod",
        "namespace": "ml",
        "on_call": "true",
        "team": "ml-platform",
        "tier": "1",
        "workflow": WF,
        "workflow_template": "train-nightly",
    }


def test_labels_as_json_text_are_decoded() -> None:
    """{{workflow.labels.json}} arrives as JSON text and is read like an object."""
    event = argo.parse(payload(labels='{"app":"etl","team":"data"}'))
    assert (event.labels["app"], event.labels["team"]) == ("etl", "data")
    assert event.notes == ()


@pytest.mark.parametrize(
    ("field", "value", "note_start"),
    [
        pytest.param("labels", "{team: data}", "workflow.labels is not valid JSON", id="labels-bad-json"),
        pytest.param("labels", '["team"]', "workflow.labels must be an object", id="labels-array"),
        pytest.param("parameters", "date=1", "workflow.parameters is not valid JSON", id="params-bad-json"),
        pytest.param(
            "parameters", '[{"value": "1"}]', "workflow.parameters[0] has no name", id="params-no-name"
        ),
        pytest.param(
            "parameters", "7", "workflow.parameters must be a list or an object", id="params-number"
        ),
        pytest.param("duration", "soon", "workflow.duration 'soon' is not a number", id="duration-text"),
        pytest.param("duration", "-3.0", "workflow.duration '-3.0' is not a number", id="duration-negative"),
        pytest.param(
            "created_at", "yesterday", "workflow.created_at 'yesterday' is not an RFC 3339", id="time"
        ),
    ],
)
def test_malformed_optional_fields_become_notes(field: str, value: str, note_start: str) -> None:
    """Bad labels, parameters or times never fail the event; each leaves a readable note."""
    event = argo.parse(payload(**{field: value}))
    assert event.status is Status.FIRING
    assert any(n.startswith(note_start) for n in event.notes), event.notes


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param([{"name": "date", "value": "2026-05-02"}, {"name": "n", "value": 3}], id="array"),
        pytest.param('[{"name":"date","value":"2026-05-02"},{"name":"n","value":3}]', id="json-text"),
        pytest.param({"date": "2026-05-02", "n": 3}, id="object"),
    ],
)
def test_parameters_become_a_name_to_value_dict(parameters: Any) -> None:
    """Parameters as Argo's array, its JSON text, or an object all read as name -> str value."""
    assert details(argo.parse(payload(parameters=parameters))).parameters == {"date": "2026-05-02", "n": "3"}


@pytest.mark.parametrize(
    ("name", "labels", "identity"),
    [
        pytest.param(
            "sync-1777712400",
            {"workflows.argoproj.io/cron-workflow": "sync", "workflows.argoproj.io/workflow-template": "t"},
            "sync",
            id="cron-workflow-label",
        ),
        pytest.param("t-x7k2p", {"workflows.argoproj.io/workflow-template": "t"}, "t", id="template-label"),
        pytest.param("asr-nightly-x7k2p", {}, "asr-nightly", id="generated-suffix-stripped"),
        pytest.param("asr-nightly", {}, "asr-nightly", id="plain-name"),
        pytest.param("asr-nightly-X7K2P", {}, "asr-nightly-X7K2P", id="upper-case-is-not-generated"),
    ],
)
def test_fingerprint_names_the_schedule_or_template_not_the_run(
    name: str, labels: dict[str, str], identity: str
) -> None:
    """Runs of one cron workflow/template share a fingerprint; the id ignores the random suffix."""
    from shared.model import stable_id

    assert argo.parse(payload(name=name, labels=labels)).fingerprint == stable_id("argo", "ml", identity)


def test_a_later_success_shares_the_failures_fingerprint() -> None:
    """The resolving run matches the failing one, so the alert can be updated, not duplicated."""
    failed = argo.parse(payload(name="etl-ab12c"))
    succeeded = argo.parse(payload(name="etl-zz99q", status="Succeeded", failures='"null"'))
    assert failed.fingerprint == succeeded.fingerprint
    assert failed.event_id != succeeded.event_id


def test_event_id_is_taken_from_the_publisher_or_derived_deterministically() -> None:
    """A publisher's event_id is kept; otherwise the same run always gets the same id."""
    body = payload()
    assert argo.parse(body).event_id == argo.parse(copy.deepcopy(body)).event_id
    assert argo.parse(payload(uid="other-uid")).event_id != argo.parse(body).event_id
    body["event_id"] = "run-42-exit"
    assert argo.parse(body).event_id == "run-42-exit"


# --- times and links ---------------------------------------------------------------------------


def test_times_come_from_creation_timestamp_and_duration() -> None:
    """started_at is the creation time; ended_at adds the duration; the summary says how long."""
    event = argo.parse(payload(status="Succeeded", duration="4980.5", failures='"null"'))
    assert event.started_at == datetime(2026, 5, 2, 9, tzinfo=UTC)
    assert event.duration_seconds == 4980.5
    assert event.ended_at == datetime(2026, 5, 2, 10, 23, 0, 500000, tzinfo=UTC)
    assert event.summary == "Finished in 1h 23m"


def test_received_at_stands_in_for_the_end_when_duration_is_missing() -> None:
    """Without a duration, the time the relay received the event is the best end time there is."""
    received = datetime(2026, 5, 2, 11, 0, 5)  # naive: taken as UTC
    event = argo.parse(payload(duration=...), received_at=received)
    assert event.ended_at == received.replace(tzinfo=UTC)
    assert event.duration_seconds is None


@pytest.mark.parametrize(
    ("ui_url", "link"),
    [
        pytest.param(
            "https://argo.example.test/", f"https://argo.example.test/workflows/ml/{WF}", id="https"
        ),
        pytest.param("http://argo:2746", f"http://argo:2746/workflows/ml/{WF}", id="http"),
        pytest.param("javascript:alert(1)", None, id="not-http"),
        pytest.param("argo.example.test", None, id="no-scheme"),
    ],
)
def test_argo_ui_link_only_for_http_urls(ui_url: str, link: str | None) -> None:
    """ui_url becomes a link to the workflow page; anything not http(s) is left out with a note."""
    body = payload()
    body["ui_url"] = ui_url
    event = argo.parse(body)
    assert [lnk.url for lnk in event.links] == ([link] if link else [])
    assert bool(event.notes) is (link is None)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0s"), (42, "42s"), (83.4, "1m 23s"), (4980, "1h 23m"), (200000, "2d 7h")],
    ids=["sub-second", "seconds", "minutes", "hours", "days"],
)
def test_durations_are_shown_with_two_units(seconds: float, text: str) -> None:
    """Durations read like '1h 23m', never as raw seconds."""
    assert argo.format_duration(seconds) == text


def test_dispatcher_routes_argo_payloads_here() -> None:
    """parse_payload recognises the payload by shape and returns the same event."""
    body = payload()
    assert parse_payload(body) == argo.parse(body)


def test_failed_step_records_pod_template_and_phase() -> None:
    """A leaf keeps its template, phase and pod name for the formatter's 'where to look'."""
    failures = [node("train", message="OOMKilled (exit code 137)", template="train-model", phase="Error")]
    assert details(argo.parse(payload(failures=failures))).failed_steps[0] == FailedStep(
        name="train",
        template="train-model",
        phase="Error",
        message="OOMKilled (exit code 137)",
        finished_at=datetime(2026, 5, 2, 10, tzinfo=UTC),
        pod_name=f"{WF}-train-model-1234",
    )


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("etl-7xk2p", {}),
        ("etl-449lw", {"workflows.argoproj.io/resubmitted-from-workflow": "etl-7xk2p"}),
        ("etl", {}),
        ("etl-zz9zz", {"workflows.argoproj.io/resubmitted-from-workflow": "etl"}),
    ],
    ids=["generated", "resubmitted-generated", "plain", "resubmitted-plain"],
)
def test_resubmitted_workflow_is_the_same_alert(name: str, labels: dict[str, str]) -> None:
    """`argo resubmit` (new generated name, label naming the original) keeps the fingerprint."""
    workflow = {"name": name, "namespace": "ml", "status": "Failed", "labels": labels}
    payload = {"source": "argo", "workflow": workflow}
    reference = {"source": "argo", "workflow": {"name": "etl-7xk2p", "namespace": "ml", "status": "Failed"}}
    assert argo.parse(payload).fingerprint == argo.parse(reference).fingerprint
