"""Argo Workflows exit-handler events (the compact payload our publisher template sends).

The publisher substitutes Argo's exit-handler variables into a small JSON body (see README, "Argo
exit handler"). Argo's values are awkward on the wire: ``workflow.failures`` is a Go-quoted JSON string
that also lists parent nodes in random order, labels and parameters may arrive as JSON text. This module
turns all of that into one ``AlertEvent``. Only a missing workflow name or namespace is fatal: everything
else that cannot be read becomes a note on the event, because a half-read failure alert is still worth
sending and a dropped one is not.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from shared.model import (
    MAX_FAILED_STEPS,
    MAX_LABELS,
    MAX_TEXT,
    AlertEvent,
    ArgoDetails,
    FailedStep,
    Link,
    Severity,
    Source,
    Status,
    stable_id,
)
from shared.sources.fields import (
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_URL,
    cap_labels,
    cap_notes,
    clip,
    has_http_scheme,
    malformed,
    type_name,
)

PAYLOAD_VERSION = 1
_PREFIX = "argo payload:"  # how a refusal names the payload

# Argo labels worth keeping, under friendlier names; every other workflows.argoproj.io/* label is noise
# (phase, completed, creator ids) that would only crowd the message.
_ARGO_LABEL_PREFIX = "workflows.argoproj.io/"
CRON_LABEL = "workflows.argoproj.io/cron-workflow"
TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
CLUSTER_TEMPLATE_LABEL = "workflows.argoproj.io/cluster-workflow-template"
RESUBMITTED_LABEL = "workflows.argoproj.io/resubmitted-from-workflow"
_KEPT_ARGO_LABELS = {
    CRON_LABEL: "cron_workflow",
    TEMPLATE_LABEL: "workflow_template",
    CLUSTER_TEMPLATE_LABEL: "cluster_workflow_template",
}
# Labels that say what the event is about: they survive when there are more than MAX_LABELS.
_PRIORITY_LABELS = ("namespace", "workflow", "env", "team", "severity", *_KEPT_ARGO_LABELS.values())

# Argo status -> (status, severity, past-tense verb for the title).
_STATUSES: dict[str, tuple[Status, Severity, str]] = {
    "succeeded": (Status.RESOLVED, Severity.INFO, "succeeded"),
    "failed": (Status.FIRING, Severity.ERROR, "failed"),
    "error": (Status.FIRING, Severity.CRITICAL, "errored"),
}

_GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{5}$")  # generateName adds 5 random [a-z0-9] characters
_STEP_GROUP = re.compile(r"^\[\d+\]$")  # steps-template groups: "[0]", "[1]", ...
_CHILD_FAILED = re.compile(r"^child '[^']*' (?:failed|errored)$")  # message Argo gives parent nodes
_RETRY_CHILD = re.compile(r"^(?P<base>.+)\((?P<index>\d+)\)$")  # "train(0)"; loop items are "x(0:a)"
# Escapes strconv.Quote may emit that JSON lacks (\xHH, \UHHHHHHHH, \a, \v); an escaped backslash is
# matched first so that "\\x41" stays a literal backslash followed by "x41".
_GO_ONLY_ESCAPE = re.compile(r"\\\\|\\x([0-9a-fA-F]{2})|\\U([0-9a-fA-F]{8})|\\([av])")

_SUMMARY_STEP_NAMES = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # sort key stand-in for a missing time


def parse(payload: Mapping[str, Any], *, received_at: datetime | None = None) -> AlertEvent:
    """Normalise one Argo exit-handler payload.

    ``received_at`` (when the relay got the message) stands in for the end time when the payload has no
    creation time or duration: an exit handler runs as the workflow ends, so it is a close estimate.
    """
    notes: list[str] = []
    workflow = payload.get("workflow")
    if workflow is None:
        raise malformed(_PREFIX, "workflow is missing")
    if not isinstance(workflow, Mapping):
        raise malformed(_PREFIX, f"workflow must be an object, got {type_name(workflow)}")
    name = _required_str(workflow, "name")
    namespace = _required_str(workflow, "namespace")

    version = payload.get("version", PAYLOAD_VERSION)
    if str(version) != str(PAYLOAD_VERSION):
        notes.append(f"argo payload version {version!r} is not {PAYLOAD_VERSION}; read as version 1")

    raw_status = workflow.get("status")
    source_status = "" if raw_status is None else str(raw_status)
    status, severity, title = _status_and_title(source_status, name, notes)

    workflow_labels = _read_labels(workflow.get("labels"), "workflow.labels", notes)
    publisher_labels = _read_labels(payload.get("labels"), "labels", notes)
    parameters = _read_parameters(workflow.get("parameters"), notes)
    severity = _label_severity(severity, workflow_labels, publisher_labels, notes)

    uid = _optional_str(workflow.get("uid"))
    raw_failures = workflow.get("failures")
    steps, steps_total = _failed_steps(raw_failures, name, notes)

    started_at = _read_time(workflow.get("created_at"), "workflow.created_at", notes)
    duration = _read_duration(workflow.get("duration"), notes)
    ended_at: datetime | None = None
    if started_at is not None and duration is not None:
        ended_at = started_at + timedelta(seconds=duration)
    elif received_at is not None:
        ended_at = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)

    env = _optional_str(payload.get("env"))
    labels = _merge_labels(workflow_labels, publisher_labels, namespace=namespace, name=name, env=env)

    event_id = _optional_str(payload.get("event_id"))
    if len(event_id) > 256:  # keep it an id: hashing, unlike clipping, cannot merge two distinct ids
        event_id = stable_id("argo", event_id)

    return AlertEvent(
        event_id=event_id or occurrence_id(namespace, name, uid, source_status, raw_failures),
        source=Source.ARGO,
        fingerprint=stable_id("argo", namespace, _identity(workflow_labels, name)),
        status=status,
        source_status=clip(source_status, 256),
        severity=severity,
        title=clip(title, 1000),
        summary=clip(_summary(status, steps, steps_total, duration), MAX_TEXT),
        labels=cap_labels(labels, notes, priority=_PRIORITY_LABELS),
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=duration,
        links=_ui_links(payload.get("ui_url"), namespace, name, notes),
        details=ArgoDetails(
            workflow=clip(name, 256),
            namespace=clip(namespace, 256),
            uid=clip(uid, 256),
            failed_steps=tuple(steps),
            failed_steps_total=steps_total,
            parameters=parameters,
        ),
        notes=cap_notes(notes),
    )


def occurrence_id(namespace: str, name: str, uid: str, status: str, raw_failures: Any) -> str:
    """The event id of one workflow run's end: the same on every path and every retried exit step."""
    return stable_id("argo", namespace, name, uid, status, raw_failures)


def _status_and_title(source_status: str, name: str, notes: list[str]) -> tuple[Status, Severity, str]:
    known = _STATUSES.get(source_status.strip().lower())
    if known:
        status, severity, verb = known
        return status, severity, f"Workflow {name} {verb}"
    # An exit handler only sees final statuses; anything else is a publisher bug worth seeing, not losing.
    if source_status:
        notes.append(
            f"workflow.status {source_status!r} is not a final Argo status (Succeeded, Failed or "
            "Error); reported as firing with severity warning"
        )
        return Status.FIRING, Severity.WARNING, f"Workflow {name} ended with status {source_status}"
    notes.append("workflow.status is missing; reported as firing with severity warning")
    return Status.FIRING, Severity.WARNING, f"Workflow {name} ended with an unknown status"


def _label_severity(
    severity: Severity,
    workflow_labels: Mapping[str, str],
    publisher_labels: Mapping[str, str],
    notes: list[str],
) -> Severity:
    """A severity label is how a team says "this workflow matters more (or less) than its status says"."""
    label = publisher_labels.get("severity") or workflow_labels.get("severity")
    if not label:
        return severity
    try:
        return Severity(label.strip().lower())
    except ValueError:
        notes.append(
            f"label severity={label!r} is not one of {', '.join(s.value for s in Severity)}; ignored"
        )
        return severity


def _identity(workflow_labels: Mapping[str, str], name: str) -> str:
    """What makes runs "the same alert": the schedule or template they came from, else the name
    without its generated suffix, so that a later success resolves an earlier failure."""
    return (
        workflow_labels.get(CRON_LABEL)
        or workflow_labels.get(TEMPLATE_LABEL)
        or workflow_labels.get(CLUSTER_TEMPLATE_LABEL)
        # `argo resubmit` copies the workflow under a new generated name and labels the original.
        or _GENERATED_SUFFIX.sub("", workflow_labels.get(RESUBMITTED_LABEL) or name)
    )


def _ui_links(ui_url: Any, namespace: str, name: str, notes: list[str]) -> tuple[Link, ...]:
    if ui_url in (None, ""):
        return ()
    url = f"{str(ui_url).rstrip('/')}/workflows/{quote(namespace, safe='')}/{quote(name, safe='')}"
    if not isinstance(ui_url, str) or not has_http_scheme(ui_url) or len(url) > MAX_URL:
        notes.append(f"ui_url {clip(str(ui_url), 200)!r} is not an http(s) URL; no Argo UI link added")
        return ()
    return (Link(title="Argo UI", url=url),)


# --- workflow.failures -------------------------------------------------------------------------


def _failed_steps(raw: Any, workflow_name: str, notes: list[str]) -> tuple[list[FailedStep], int]:
    """The leaf failures, oldest first and capped, plus how many there were before the cap."""
    entries = _decode_failures(raw, notes)
    nodes: list[_Node] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            notes.append(f"workflow.failures[{index}] is not an object; skipped")
            continue
        nodes.append(_Node.read(entry, index, notes))

    leaves = _leaf_steps(nodes, workflow_name)
    leaves.sort(key=_step_order)
    return leaves[:MAX_FAILED_STEPS], len(leaves)


def _decode_failures(raw: Any, notes: list[str]) -> list[Any]:
    """Accept every shape ``{{workflow.failures}}`` reaches us in; see the module docstring."""
    value = raw
    # Up to three decodes: the Go-quoted string literal, then the array text inside it, and one spare
    # for a publisher that quoted it once more; the last round only looks at the result.
    for _ in range(4):
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, Mapping):  # a single node, not wrapped in a list
            return [value]
        if not isinstance(value, str):
            notes.append(f"workflow.failures has an unexpected type ({type_name(value)}); ignored")
            return []
        text = value.strip()
        if text in ("", "null", '"null"', "[]"):
            return []
        if text[0] not in '"[{':
            notes.append(f"workflow.failures is not valid JSON: {clip(text, 200)!r}")
            return []
        try:
            value = _loads_go_quoted(text)
        except ValueError as exc:
            notes.append(f"workflow.failures is not valid JSON: {_json_error(exc)}")
            return []
    notes.append("workflow.failures is quoted too many times; ignored")
    return []


def _loads_go_quoted(text: str) -> Any:
    """``json.loads``, retried with Go-only escapes (strconv.Quote output) rewritten as JSON ones."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if not text.startswith('"'):
            raise
        return json.loads(_GO_ONLY_ESCAPE.sub(_go_escape_to_json, text))


def _go_escape_to_json(match: re.Match[str]) -> str:
    hex2, hex8, letter = match.groups()
    if hex2:
        return f"\\u00{hex2}"
    if hex8:
        return json.dumps(chr(int(hex8, 16)))[1:-1]  # json.dumps writes a surrogate pair when needed
    if letter:
        return "\\u0007" if letter == "a" else "\\u000b"
    return match.group(0)  # an escaped backslash: unchanged


class _Node:
    """One entry of ``workflow.failures`` (any node: leaf, parent, or retry attempt)."""

    __slots__ = ("finished_at", "index", "message", "name", "phase", "pod_name", "template")

    def __init__(
        self,
        *,
        name: str,
        message: str,
        template: str,
        phase: str,
        pod_name: str,
        finished_at: datetime | None,
        index: int,
    ) -> None:
        self.name = name
        self.message = message
        self.template = template
        self.phase = phase
        self.pod_name = pod_name
        self.finished_at = finished_at
        self.index = index

    @classmethod
    def read(cls, entry: Mapping[str, Any], index: int, notes: list[str]) -> _Node:
        return cls(
            name=_optional_str(entry.get("displayName")),
            message=_optional_str(entry.get("message")),
            template=_optional_str(entry.get("templateName")),
            phase=_optional_str(entry.get("phase")),
            pod_name=_optional_str(entry.get("podName")),
            finished_at=_read_time(entry.get("finishedAt"), f"workflow.failures[{index}].finishedAt", notes),
            index=index,
        )

    def to_step(self, *, name: str | None = None, attempts: int = 1) -> FailedStep:
        return FailedStep(
            name=clip(name if name is not None else self.name or self.template or "(unnamed step)", 256),
            template=clip(self.template, 256),
            phase=clip(self.phase or "Failed", 256),
            message=clip(self.message, MAX_TEXT),
            finished_at=self.finished_at,
            pod_name=clip(self.pod_name, 256),
            attempts=attempts,
        )


def _leaf_steps(nodes: list[_Node], workflow_name: str) -> list[FailedStep]:
    """Drop the parent nodes Argo lists along with the real failures; collapse retry attempts."""
    roots = [n for n in nodes if n.name == workflow_name]
    candidates = [
        n
        for n in nodes
        if n.name != workflow_name and not _STEP_GROUP.match(n.name) and not _CHILD_FAILED.match(n.message)
    ]

    retries: dict[str, list[tuple[int, _Node]]] = {}
    for node in candidates:
        match = _RETRY_CHILD.match(node.name)
        if match:
            retries.setdefault(match["base"], []).append((int(match["index"]), node))
    # A retry parent repeats its last attempt's failure: the attempts themselves are the leaves.
    singles = [n for n in candidates if n.name not in retries and not _RETRY_CHILD.match(n.name)]
    # A failed DAG node has an empty message; once any node explains the failure it adds nothing.
    if any(n.message for n in singles) or retries:
        singles = [n for n in singles if n.message]

    steps = [n.to_step() for n in singles]
    for base, attempts in retries.items():
        last = max(attempts, key=lambda a: (a[1].finished_at is not None, a[1].finished_at or _EPOCH, a[0]))
        steps.append(last[1].to_step(name=base, attempts=len(attempts)))

    # A workflow whose entrypoint is a single container has only the root node: then it is the leaf.
    if not steps:
        steps = [r.to_step() for r in roots if r.message and not _CHILD_FAILED.match(r.message)]
    return steps


def _step_order(step: FailedStep) -> tuple[bool, datetime, str]:
    # Argo lists nodes in map order; oldest first reads as the story of the run. Undated steps go last.
    return (step.finished_at is None, step.finished_at or _EPOCH, step.name)


# --- labels and parameters ---------------------------------------------------------------------


def _read_labels(raw: Any, field: str, notes: list[str]) -> dict[str, str]:
    """An object, or its JSON text (``{{workflow.labels.json}}``), as a str -> str dict."""
    value = _maybe_json(raw, field, notes)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        notes.append(f"{field} must be an object, got {type_name(value)}; ignored")
        return {}
    return {str(k): _label_value(v) for k, v in value.items()}


def _read_parameters(raw: Any, notes: list[str]) -> dict[str, str]:
    """``[{"name", "value"}, ...]`` (or its JSON text), or a name -> value object, as a str dict."""
    field = "workflow.parameters"
    value = _maybe_json(raw, field, notes)
    pairs: list[tuple[str, Any]] = []
    if value is None:
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping) and item.get("name") not in (None, ""):
                # Argo leaves "value" out for a parameter that only has a default.
                pairs.append((str(item["name"]), item.get("value", item.get("default", ""))))
            else:
                notes.append(f"{field}[{index}] has no name; skipped")
    else:
        notes.append(f"{field} must be a list or an object, got {type_name(value)}; ignored")
        return {}

    parameters: dict[str, str] = {}
    for key, val in pairs:
        if len(parameters) >= MAX_LABELS:
            notes.append(f"{field}: only the first {MAX_LABELS} of {len(pairs)} parameters are kept")
            break
        parameters[clip(key, MAX_LABEL_KEY)] = clip(_label_value(val), MAX_LABEL_VALUE)
    return parameters


def _maybe_json(raw: Any, field: str, notes: list[str]) -> Any:
    """Decode JSON text; pass anything else through. ``None`` when absent or unreadable."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        notes.append(f"{field} is not valid JSON: {_json_error(exc)}")
        return None


def _label_value(value: Any) -> str:
    """A label or parameter value as written; unlike ``as_text``, every number goes through JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool | int | float | list | dict):
        return json.dumps(value, separators=(",", ":"))  # true, not True: the way it was written
    return str(value)


def _merge_labels(
    workflow_labels: Mapping[str, str],
    publisher_labels: Mapping[str, str],
    *,
    namespace: str,
    name: str,
    env: str,
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in workflow_labels.items():
        if key.startswith(_ARGO_LABEL_PREFIX):
            if key in _KEPT_ARGO_LABELS:
                labels[_KEPT_ARGO_LABELS[key]] = value
            continue
        labels[key] = value
    labels.update(publisher_labels)  # the publisher knows best (e.g. the owning team)
    # What the event is about is fact, not configuration: these win over any label of the same name.
    labels["namespace"] = namespace
    labels["workflow"] = name
    if env:
        labels["env"] = env
    return labels


# --- small readers ------------------------------------------------------------------------------


def _required_str(workflow: Mapping[str, Any], key: str) -> str:
    value = workflow.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise malformed(_PREFIX, f"workflow.{key} is missing")
    if not isinstance(value, str):
        raise malformed(_PREFIX, f"workflow.{key} must be a string, got {type_name(value)}")
    return value.strip()


def _optional_str(value: Any) -> str:
    return "" if value is None else str(value)


def _read_time(raw: Any, field: str, notes: list[str]) -> datetime | None:
    """RFC 3339 text (or epoch seconds, as ``creationTimestamp.unix`` gives) as an aware datetime."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw, UTC)
        if isinstance(raw, str):
            text = raw.strip()
            value = datetime.fromtimestamp(int(text), UTC) if text.isdigit() else datetime.fromisoformat(text)
            return value if value.tzinfo else value.replace(tzinfo=UTC)  # Argo writes UTC
    except (ValueError, OverflowError, OSError):
        pass
    notes.append(f"{field} {clip(str(raw), 100)!r} is not an RFC 3339 time; ignored")
    return None


def _read_duration(raw: Any, notes: list[str]) -> float | None:
    """``{{workflow.duration}}`` is Go ``%f`` text ("83.412345"); a number is accepted too."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        notes.append(f"workflow.duration {clip(str(raw), 100)!r} is not a number of seconds; ignored")
        return None
    return seconds


def _summary(status: Status, steps: list[FailedStep], total: int, duration: float | None) -> str:
    took = f" in {format_duration(duration)}" if duration is not None else ""
    if status is Status.RESOLVED:
        return f"Finished{took}"
    if not steps:
        return f"Ended{took}" if duration is not None else ""
    names = [s.name if s.attempts == 1 else f"{s.name} ({s.attempts} attempts)" for s in steps]
    shown = ", ".join(names[:_SUMMARY_STEP_NAMES])
    more = total - min(len(names), _SUMMARY_STEP_NAMES)
    if more > 0:
        shown += f" and {more} more"
    return f"{total} {'step' if total == 1 else 'steps'} failed: {shown}"


def format_duration(seconds: float) -> str:
    """Two most significant units, e.g. ``1h 23m``, ``4m 05s``, ``42s``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (char {exc.pos})"
    return str(exc)
