"""The Argo manifests under argo/: valid for hera 7.1.0's models, no unknown keys, consistent wiring.

hera's models (generated from Argo's 4.0.5 schema) ignore unknown keys, so every manifest is also
dumped back and compared with the YAML: a key the model dropped is a typo or a field Argo does not
have. The controller ConfigMap has no model; its `workflowDefaults` is validated as a Workflow and
its `metricsConfig` against the keys of Argo's MetricsConfig (config/config.go).

Beyond the schema, the tests check what `argo lint` cannot see from one file: every exit-handler
caller passes every value the publish step needs, the templateRefs resolve, the publish container's
argv parses with the real `alert-relay publish` parser, and the custom metrics keep one name, type,
help text and label set wherever they are declared (another engineer's alert policies use them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import CronWorkflow, Workflow, WorkflowTemplate
from pydantic import BaseModel, ValidationError

ROOT = Path(__file__).resolve().parents[1]
ARGO = ROOT / "argo"
MANIFESTS = sorted(ARGO.glob("*.yaml"))

MODELS: dict[str, type[BaseModel]] = {
    "Workflow": Workflow,
    "WorkflowTemplate": WorkflowTemplate,
    "CronWorkflow": CronWorkflow,
}

EXIT_HANDLER = ("alert-relay-exit-handler", "publish")
IMAGE = "REGION-docker.pkg.dev/PROJECT/alert-relay/publisher:0.1.0"
SERVICE_ACCOUNT = "alert-relay-publisher"

# What every caller of the publish template binds, input by input: exactly Argo's exit-handler values.
EXIT_ARGUMENTS = {
    "name": "{{workflow.name}}",
    "namespace": "{{workflow.namespace}}",
    "uid": "{{workflow.uid}}",
    "status": "{{workflow.status}}",
    "created-at": "{{workflow.creationTimestamp}}",
    "duration": "{{workflow.duration}}",
    "failures": "{{workflow.failures}}",
    "labels": "{{workflow.labels.json}}",
    "parameters": "{{workflow.parameters.json}}",
}
# The CLI flag each input feeds (the flags `alert-relay publish` defines).
FLAGS = {name: f"--{name}" for name in EXIT_ARGUMENTS}
PUBLISH_ARGS = ["publish"] + [
    item for name in EXIT_ARGUMENTS for item in (FLAGS[name], f"{{{{inputs.parameters.{name}}}}}")
]
PUBLISH_ENV = {
    "ALERT_RELAY_TOPIC",
    "ALERT_RELAY_INGEST_URL",
    "ALERT_RELAY_INGEST_TOKEN",
    "ALERT_RELAY_UI_URL",
    "ALERT_RELAY_ENV",
}

# Global variables a manifest may use; workflow.parameters.<name> is allowed for declared parameters.
KNOWN_WORKFLOW_VARIABLES = set(EXIT_ARGUMENTS.values()) | {"{{workflow.scheduledTime}}"}
# {{workflow.status}} / {{workflow.failures}} only have a value once the workflow has finished.
EXIT_ONLY_VARIABLES = {"{{workflow.status}}", "{{workflow.failures}}"}

# MetricsConfig's JSON keys (argoproj/argo-workflows config/config.go, 3.4 to 4.x). There is no
# `honorLabels`: that belongs to the scraper.
METRICS_CONFIG_KEYS = {
    "enabled",
    "disableLegacy",
    "metricsTTL",
    "path",
    "port",
    "ignoreErrors",
    "secure",
    "modifiers",
    "temporality",
}
CONTROLLER_DATA_KEYS = {"workflowDefaults", "metricsConfig"}

# The custom metrics: declared name -> (type, label keys, value, level). Argo exposes each one as
# argo_workflows_<name>; Terraform alert policies reference those exposed names.
METRICS: dict[str, tuple[str, frozenset[str], str, str]] = {
    "alert_relay_step_duration_seconds": (
        "gauge",
        frozenset({"step", "workflow_template"}),
        "{{duration}}",
        "template",
    ),
    "alert_relay_step_result_total": (
        "counter",
        frozenset({"step", "workflow_template", "status"}),
        "1",
        "template",
    ),
    "alert_relay_step_retries": (
        "gauge",
        frozenset({"step", "workflow_template"}),
        "{{retries}}",
        "template",
    ),
    "alert_relay_workflow_duration_seconds": (
        "gauge",
        frozenset({"workflow_template"}),
        "{{workflow.duration}}",
        "workflow",
    ),
    "alert_relay_workflow_result_total": (
        "counter",
        frozenset({"workflow_template", "status"}),
        "1",
        "workflow",
    ),
}
METRIC_TYPES = ("gauge", "counter", "histogram")
TAG = re.compile(r"{{\s*([^{}]*?)\s*}}")
GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+$")


# --- helpers ---------------------------------------------------------------------------------------


def dropped_keys(raw: Any, dumped: Any, path: str = "") -> list[str]:
    """Paths in ``raw`` (the YAML) that are missing from ``dumped`` (the model dumped back).

    hera's models silently drop unknown keys; this is how a typo (``containr:``, ``retryStategy:``)
    or a field from another Argo version becomes visible. Lists are compared item by item; a list
    that lost items, or an object the model turned into something else, is reported as well.
    """
    if isinstance(raw, dict):
        if not isinstance(dumped, dict):
            return [f"{path or '.'} (an object in the YAML, {type(dumped).__name__} in the model)"]
        problems: list[str] = []
        for key, value in raw.items():
            where = f"{path}.{key}"
            if key not in dumped:
                problems.append(where)
            else:
                problems += dropped_keys(value, dumped[key], where)
        return problems
    if isinstance(raw, list):
        if not isinstance(dumped, list):
            return [f"{path} (a list in the YAML, {type(dumped).__name__} in the model)"]
        problems = []
        if len(dumped) != len(raw):
            problems.append(f"{path} ({len(raw)} items in the YAML, {len(dumped)} in the model)")
        for index, (item, kept) in enumerate(zip(raw, dumped, strict=False)):
            problems += dropped_keys(item, kept, f"{path}[{index}]")
        return problems
    return []


def validate(model: type[BaseModel], doc: dict[str, Any]) -> tuple[BaseModel, list[str]]:
    """Validate with the model (types, required fields) and report what it dropped."""
    parsed = model.model_validate(doc)
    return parsed, dropped_keys(doc, parsed.model_dump(by_alias=True, exclude_none=True, mode="json"))


def load(path: Path) -> dict[str, Any]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert len(docs) == 1, f"{path.name}: expected one YAML document, found {len(docs)}"
    assert isinstance(docs[0], dict), path.name
    return docs[0]


def manifests(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS if (doc := load(path)).get("kind") == kind]


def the_manifest(kind: str) -> dict[str, Any]:
    found = manifests(kind)
    assert len(found) == 1, f"expected one {kind} under argo/, found {len(found)}"
    return found[0][1]


def controller_data() -> dict[str, Any]:
    """The controller ConfigMap's data values, parsed (they are YAML documents inside strings)."""
    data = the_manifest("ConfigMap")["data"]
    return {key: yaml.safe_load(value) for key, value in data.items()}


def workflow_specs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, identity, spec) for every WorkflowSpec under argo/, the controller defaults included.

    ``identity`` is what the manifest's metrics use as ``workflow_template``: the template's or
    cron workflow's name, or a Workflow's generateName without its trailing "-".
    """
    for path in MANIFESTS:
        doc = load(path)
        kind, meta = doc.get("kind"), doc.get("metadata", {})
        if kind == "WorkflowTemplate":
            yield path.name, meta["name"], doc["spec"]
        elif kind == "Workflow":
            yield path.name, (meta.get("name") or meta["generateName"]).rstrip("-"), doc["spec"]
        elif kind == "CronWorkflow":
            yield path.name, meta["name"], doc["spec"]["workflowSpec"]
    yield "workflowDefaults", "", controller_data()["workflowDefaults"]["spec"]


def steps_of(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The steps or DAG tasks of a template (both call templates the same way)."""
    for group in template.get("steps") or []:
        yield from group
    yield from (template.get("dag") or {}).get("tasks") or []


def exit_handler_calls(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, call) for every call of alert-relay-exit-handler/publish in one WorkflowSpec."""
    hook = (spec.get("hooks") or {}).get("exit")
    if hook and hook.get("templateRef"):
        yield "hooks.exit", hook
    for template in spec.get("templates") or []:
        for step in steps_of(template):
            if step.get("templateRef"):
                yield f"templates.{template['name']}.{step['name']}", step


def tags(value: Any) -> Iterator[str]:
    """Every {{...}} expression in a YAML value, as written (whitespace normalised away)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from tags(item)
    elif isinstance(value, list):
        for item in value:
            yield from tags(item)
    elif isinstance(value, str):
        yield from (f"{{{{{tag}}}}}" for tag in TAG.findall(value))


def metric_declarations() -> Iterator[dict[str, Any]]:
    """Every custom metric with where it is declared: level, template, retryStrategy, identity."""
    for where, identity, spec in workflow_specs():
        for metric in (spec.get("metrics") or {}).get("prometheus") or []:
            yield {"where": where, "identity": identity, "level": "workflow", "metric": metric}
        for template in spec.get("templates") or []:
            for metric in (template.get("metrics") or {}).get("prometheus") or []:
                yield {
                    "where": f"{where}:{template['name']}",
                    "identity": identity,
                    "level": "template",
                    "template": template,
                    "metric": metric,
                }


def publish_template() -> dict[str, Any]:
    spec = the_manifest("WorkflowTemplate")["spec"]
    (template,) = [t for t in spec["templates"] if t["name"] == EXIT_HANDLER[1]]
    return template


# --- schema -----------------------------------------------------------------------------------------


def test_every_manifest_is_a_kind_these_tests_validate() -> None:
    """No file under argo/ escapes validation by being of a kind nobody checks."""
    assert MANIFESTS, "no manifests under argo/"
    kinds = {path.name: load(path).get("kind") for path in MANIFESTS}
    # podmonitoring.yaml (a List of PodMonitoring) is validated by tests/test_monitoring.py.
    monitoring = load(ARGO / "podmonitoring.yaml")
    assert {item["kind"] for item in monitoring["items"]} == {"PodMonitoring"}
    kinds.pop("podmonitoring.yaml")
    assert all(kind in {*MODELS, "ConfigMap"} for kind in kinds.values()), kinds
    assert sorted(kinds.values()) == ["ConfigMap", "CronWorkflow", "Workflow", "WorkflowTemplate"]


@pytest.mark.parametrize(
    "path", [p for p in MANIFESTS if load(p).get("kind") in MODELS], ids=lambda p: p.name
)
def test_manifest_is_valid_for_hera_models_with_no_unknown_keys(path: Path) -> None:
    doc = load(path)
    assert doc["apiVersion"] == "argoproj.io/v1alpha1"
    try:
        _, dropped = validate(MODELS[doc["kind"]], doc)
    except ValidationError as exc:
        pytest.fail(f"{path.name} is not a valid {doc['kind']}:\n{exc}")
    assert dropped == [], f"{path.name}: keys the {doc['kind']} model does not know: {dropped}"


def test_unknown_key_helper_catches_what_hera_silently_drops() -> None:
    """The reason the helper exists: hera accepts a typo and drops it; the round-trip diff does not."""
    doc = load(ARGO / "exit-handler-workflowtemplate.yaml")
    doc["spec"]["templates"][0]["retryStategy"] = {"limit": 2}  # typo
    doc["spec"]["templates"][0]["container"]["securityContext"]["runAsNonroot"] = True  # wrong case
    doc["spec"]["templates"][0]["metrics"]["prometheus"][0]["gauge"]["realTime"] = False
    parsed, dropped = validate(WorkflowTemplate, doc)  # no ValidationError: that is the problem
    assert parsed.spec.templates[0].retry_strategy.limit.root == 2  # the real key is still there
    assert dropped == [
        ".spec.templates[0].metrics.prometheus[0].gauge.realTime",
        ".spec.templates[0].container.securityContext.runAsNonroot",
        ".spec.templates[0].retryStategy",
    ]
    assert dropped_keys({"a": [1, 2]}, {"a": [1]}) == [".a (2 items in the YAML, 1 in the model)"]
    assert dropped_keys({"a": {"b": 1}}, {"a": "x"}) == [".a (an object in the YAML, str in the model)"]


def test_wrong_types_are_rejected_by_the_models() -> None:
    doc = load(ARGO / "example-workflow.yaml")
    doc["spec"]["metrics"]["prometheus"][0]["gauge"]["realtime"] = "sometimes"
    with pytest.raises(ValidationError, match="realtime"):
        Workflow.model_validate(doc)


def test_controller_configmap_fragment() -> None:
    """ConfigMap shape, workflowDefaults as a Workflow, metricsConfig with real keys only."""
    cm = the_manifest("ConfigMap")
    assert set(cm) == {"apiVersion", "kind", "metadata", "data"}
    assert cm["apiVersion"] == "v1"
    assert cm["metadata"]["name"] == "workflow-controller-configmap"
    # Without a `config: |` key every value under data must be a string holding YAML.
    assert set(cm["data"]) == CONTROLLER_DATA_KEYS
    assert all(isinstance(value, str) for value in cm["data"].values())

    data = controller_data()
    defaults = data["workflowDefaults"]
    assert set(defaults) <= {"metadata", "spec"}, defaults.keys()
    # workflowDefaults is a partial Workflow: metadata may be absent, the model requires one.
    as_workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {}, **defaults}
    _, dropped = validate(Workflow, as_workflow)
    assert dropped == [], f"workflowDefaults: keys the Workflow model does not know: {dropped}"
    # Defaults must not inject templates: Argo rejects templates next to workflowTemplateRef.
    assert "templates" not in defaults["spec"] and "onExit" not in defaults["spec"]

    metrics = data["metricsConfig"]
    assert set(metrics) <= METRICS_CONFIG_KEYS, set(metrics) - METRICS_CONFIG_KEYS
    assert metrics["enabled"] is True
    assert metrics["path"] == "/metrics"
    assert metrics["port"] == 9090
    assert isinstance(metrics["metricsTTL"], str) and GO_DURATION.match(metrics["metricsTTL"])
    assert all(isinstance(metrics[k], bool) for k in ("secure", "ignoreErrors") if k in metrics)


def test_cron_workflow_schedule() -> None:
    """`schedules` (3.6+, the only form in 4.x); never together with `schedule`, which 3.6 rejects."""
    spec = the_manifest("CronWorkflow")["spec"]
    assert "schedule" not in spec
    assert spec["schedules"] and all(len(s.split()) == 5 for s in spec["schedules"])
    assert spec["concurrencyPolicy"] in {"Allow", "Forbid", "Replace"}


# --- the publish step ---------------------------------------------------------------------------------


def test_exit_handler_template_is_the_publish_container() -> None:
    wft = the_manifest("WorkflowTemplate")
    assert wft["metadata"]["name"] == EXIT_HANDLER[0]
    assert [t["name"] for t in wft["spec"]["templates"]] == [EXIT_HANDLER[1]]
    template = publish_template()
    container = template["container"]

    assert container["image"] == IMAGE
    # The image's own entry point, no shell: nothing re-parses quotes in the values.
    assert container["command"] == ["python", "-m", "shared.cli"]
    assert container["args"] == PUBLISH_ARGS
    assert not {"sh", "bash", "-c"} & set(container["command"])
    assert template["serviceAccountName"] == SERVICE_ACCOUNT

    # Every value comes in as an input with no default, so a caller that forgets one fails validation.
    inputs = template["inputs"]["parameters"]
    assert [p["name"] for p in inputs] == list(EXIT_ARGUMENTS)
    assert all(not {"value", "default", "valueFrom"} & set(p) for p in inputs)
    # A standalone WorkflowTemplate cannot resolve {{workflow.failures}} at validation (#12330).
    assert not [t for t in tags(wft) if t.startswith("{{workflow.")]

    # Bounded: never hangs the workflow, retried a little, small.
    assert 0 < template["activeDeadlineSeconds"] <= 180
    assert GO_DURATION.match(template["timeout"])
    assert int(template["retryStrategy"]["limit"]) == 2
    assert template["retryStrategy"]["retryPolicy"] == "Always"
    assert {"requests", "limits"} <= set(container["resources"])
    assert "memory" in container["resources"]["limits"]


def test_publish_container_runs_as_non_root() -> None:
    context = publish_template()["container"]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context.get("runAsUser", 1) != 0
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_publish_environment() -> None:
    """The publisher's environment: the five ALERT_RELAY_* variables, the token only from a Secret."""
    env = {e["name"]: e for e in publish_template()["container"]["env"]}
    assert set(env) == PUBLISH_ENV
    token = env["ALERT_RELAY_INGEST_TOKEN"]
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["name"] == SERVICE_ACCOUNT
    assert token["valueFrom"]["secretKeyRef"].get("optional") is True  # a missing Secret must not hang it
    assert re.fullmatch(r"projects/[^/]+/topics/[^/]+", env["ALERT_RELAY_TOPIC"]["value"])
    assert env["ALERT_RELAY_INGEST_URL"]["value"].startswith("https://")
    assert env["ALERT_RELAY_UI_URL"]["value"].startswith("https://")


def test_failures_reaches_the_cli_as_its_own_argument() -> None:
    """`--failures` is followed by its own args item, which every caller binds to {{workflow.failures}}.

    Argo substitutes {{workflow.failures}} into the caller's argument, then the input into the args
    item, so the process gets the Go-quoted JSON as one argv entry, quotes and all.
    """
    args = publish_template()["container"]["args"]
    assert args.count("--failures") == 1
    assert args[args.index("--failures") + 1] == "{{inputs.parameters.failures}}"
    assert not [a for a in args if a.startswith("--") and "=" in a]
    calls = [call for _, _, spec in workflow_specs() for _, call in exit_handler_calls(spec)]
    assert calls
    for call in calls:
        bound = {p["name"]: p["value"] for p in call["arguments"]["parameters"]}
        assert bound["failures"] == "{{workflow.failures}}"


@pytest.mark.parametrize(
    "failures",
    [
        '"[{\\"displayName\\":\\"train(0)\\",\\"message\\":\\"Error (exit code 1)\\",'
        '\\"templateName\\":\\"train\\",\\"phase\\":\\"Failed\\"}]"',
        '"null"',
        "",
    ],
    ids=["failures", "null", "empty"],
)
def test_publish_argv_parses_with_the_alert_relay_cli(failures: str) -> None:
    """The args list, with Argo's substituted values, is what `alert-relay publish` accepts."""
    from shared.cli import build_parser

    values = {
        "name": "asr-nightly-1733270400",
        "namespace": "ml-speech",
        "uid": "5f0f3c52-9a0b-4f1e-9c6e-1d2a3b4c5d6e",
        "status": "Failed",
        "created-at": "2026-12-04T02:00:00Z",
        "duration": "83.412345",
        "failures": failures,
        "labels": '{"team":"speech","workflows.argoproj.io/cron-workflow":"asr-nightly"}',
        "parameters": '[{"name":"model","value":"asr-base"}]',
    }
    argv = [
        TAG.sub(lambda m: values[m.group(1).removeprefix("inputs.parameters.")], item)
        for item in publish_template()["container"]["args"]
    ]
    parsed = build_parser().parse_args(argv)
    assert parsed.command == "publish"
    for name, value in values.items():
        assert getattr(parsed, name.replace("-", "_")) == value


# --- cross-references ---------------------------------------------------------------------------------


def test_every_exit_handler_caller_passes_every_value() -> None:
    """Each Workflow, CronWorkflow and the controller default calls publish with exactly the 9 values."""
    callers: dict[str, int] = {}
    for where, _, spec in workflow_specs():
        for site, call in exit_handler_calls(spec):
            ref = call["templateRef"]
            assert (ref["name"], ref["template"]) == EXIT_HANDLER, f"{where} {site}"
            assert not ref.get("clusterScope"), f"{where} {site}: the template is namespaced"
            names = [p["name"] for p in call["arguments"]["parameters"]]
            assert len(names) == len(set(names)), f"{where} {site}: duplicate arguments"
            bound = {p["name"]: p.get("value") for p in call["arguments"]["parameters"]}
            assert bound == EXIT_ARGUMENTS, f"{where} {site}"
            callers[where] = callers.get(where, 0) + 1
    assert callers == {
        "example-cronworkflow.yaml": 1,
        "example-workflow.yaml": 1,
        "workflowDefaults": 1,
    }


def test_template_refs_resolve_to_templates_defined_here() -> None:
    defined = {
        (doc["metadata"]["name"], t["name"])
        for _, doc in manifests("WorkflowTemplate")
        for t in doc["spec"]["templates"]
    }
    assert EXIT_HANDLER in defined
    for where, _, spec in workflow_specs():
        refs = [call["templateRef"] for _, call in exit_handler_calls(spec)]
        for ref in refs:
            assert (ref["name"], ref["template"]) in defined, f"{where}: {ref}"


def test_exit_handlers_and_local_references_exist() -> None:
    """onExit, hooks, entrypoint and step/task templates all name something that exists."""
    for where, _, spec in workflow_specs():
        local = {t["name"]: t for t in spec.get("templates") or []}
        assert len(local) == len(spec.get("templates") or []), f"{where}: duplicate template names"
        if where != "workflowDefaults" and where != "exit-handler-workflowtemplate.yaml":
            assert spec["entrypoint"] in local, f"{where}: entrypoint"
        if "onExit" in spec:
            assert spec["onExit"] in local, f"{where}: onExit names no template"
        for event, hook in (spec.get("hooks") or {}).items():
            assert event == "exit" or hook.get("expression"), f"{where}: hook {event} needs an expression"
            assert bool(hook.get("template")) != bool(hook.get("templateRef")), f"{where}: hook {event}"
            if hook.get("template"):
                assert hook["template"] in local, f"{where}: hook {event}"
        for template in local.values():
            tasks = {step["name"] for step in steps_of(template)}
            for step in steps_of(template):
                assert bool(step.get("template")) != bool(step.get("templateRef")), f"{where}: {step}"
                if step.get("template"):
                    assert step["template"] in local, f"{where}: step {step['name']}"
                for dependency in re.findall(r"[A-Za-z0-9-]+", step.get("depends", "")):
                    assert dependency in tasks, f"{where}: {step['name']} depends on {dependency}"


def test_each_workflow_is_wired_to_the_exit_handler_once() -> None:
    """The Workflow uses onExit -> notify -> templateRef; the CronWorkflow and the defaults hooks.exit."""
    workflow = the_manifest("Workflow")["spec"]
    assert workflow["onExit"] == "notify" and "hooks" not in workflow
    notify = next(t for t in workflow["templates"] if t["name"] == "notify")
    assert [s.get("templateRef", {}).get("template") for s in steps_of(notify)] == ["publish"]

    cron = the_manifest("CronWorkflow")["spec"]["workflowSpec"]
    assert "onExit" not in cron and set(cron["hooks"]) == {"exit"}
    defaults = controller_data()["workflowDefaults"]["spec"]
    assert set(defaults["hooks"]) == {"exit"}
    assert defaults["hooks"]["exit"] == cron["hooks"]["exit"]  # one shape, documented once


def test_workflow_variables_are_known_and_in_scope() -> None:
    """Only known {{workflow.*}} variables; exit-only ones only where Argo gives them a value."""
    for where, _, spec in workflow_specs():
        declared = {p["name"] for p in (spec.get("arguments") or {}).get("parameters") or []}
        known = KNOWN_WORKFLOW_VARIABLES | {f"{{{{workflow.parameters.{name}}}}}" for name in declared}
        used = {t for t in tags(spec) if t.startswith("{{workflow.")}
        assert used <= known, f"{where}: unknown workflow variables {used - known}"

        # Exit-only values belong in the exit handler (hook or onExit template) and in workflow-level
        # metrics, which Argo emits once the workflow has completed.
        elsewhere = {**spec, "metrics": None, "hooks": None}
        elsewhere["templates"] = [t for t in spec.get("templates") or [] if t["name"] != spec.get("onExit")]
        stray = {t for t in tags(elsewhere) if t in EXIT_ONLY_VARIABLES}
        assert not stray, f"{where}: {stray} used outside the exit handler"
        workflow_metric_tags = set(tags(spec.get("metrics")))
        assert workflow_metric_tags <= {"{{workflow.duration}}", "{{workflow.status}}"}, where
        if "{{workflow.parameters.json}}" in used:
            # Argo defines it at validation only for a workflow with parameters (README).
            assert declared or where == "workflowDefaults", f"{where}: pass [] instead"


def test_template_local_variables_are_declared() -> None:
    """{{inputs.parameters.X}} names a declared input; metric variables appear only in metrics."""
    for where, _, spec in workflow_specs():
        for template in spec.get("templates") or []:
            inputs = {p["name"] for p in (template.get("inputs") or {}).get("parameters") or []}
            body = {**template, "metrics": None}
            for tag in tags(body):
                if tag.startswith("{{inputs.parameters."):
                    assert tag[len("{{inputs.parameters.") : -2] in inputs, (
                        f"{where}:{template['name']} {tag}"
                    )
                else:
                    assert tag.startswith("{{workflow."), f"{where}:{template['name']} {tag}"
            metric_tags = set(tags(template.get("metrics")))
            allowed = {"{{duration}}", "{{status}}"} | (
                {"{{retries}}"} if template.get("retryStrategy") else set()
            )
            assert metric_tags <= allowed, f"{where}:{template['name']} {metric_tags - allowed}"


# --- custom metrics --------------------------------------------------------------------------------------


def test_custom_metric_names_and_shapes() -> None:
    """Only the five names, each with its type, labels, value and level, everywhere it is declared."""
    seen: dict[str, tuple[str, str, frozenset[str]]] = {}
    for decl in metric_declarations():
        metric, where = decl["metric"], decl["where"]
        name = metric["name"]
        assert name in METRICS, f"{where}: {name} is not one of {sorted(METRICS)}"
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name)  # 3.6+ rejects ':'
        kind, label_keys, value, level = METRICS[name]
        types = [t for t in METRIC_TYPES if t in metric]
        assert types == [kind], f"{where}: {name} must be a {kind}"
        assert decl["level"] == level, f"{where}: {name} belongs at {level} level"
        labels = {label["key"]: label["value"] for label in metric.get("labels") or []}
        assert len(labels) == len(metric.get("labels") or []), f"{where}: duplicate label keys"
        assert set(labels) == label_keys, f"{where}: {name} labels {sorted(labels)}"
        assert metric[kind]["value"] == value, f"{where}: {name} value"
        if kind == "gauge":
            assert metric["gauge"]["realtime"] is False, f"{where}: {name} realtime"
        assert "when" not in metric

        # Bounded label values: the template name, the pipeline, the final status.
        assert labels["workflow_template"] == decl["identity"], f"{where}: workflow_template"
        if "step" in labels:
            assert labels["step"] == decl["template"]["name"], f"{where}: step label"
        if "status" in labels:
            expected = "{{status}}" if level == "template" else "{{workflow.status}}"
            assert labels["status"] == expected, f"{where}: status label"
        if name == "alert_relay_step_retries":
            assert decl["template"].get("retryStrategy"), f"{where}: retries without a retryStrategy"

        # Prometheus (and Argo) require one help text, type and label set per name.
        signature = (kind, metric["help"], frozenset(labels))
        assert seen.setdefault(name, signature) == signature, f"{where}: {name} differs from another use"
    assert set(seen) == set(METRICS), f"never declared: {set(METRICS) - set(seen)}"


def test_pipelines_declare_step_and_workflow_metrics() -> None:
    """Every step of the examples reports duration and result; each run its duration and result."""
    for path in (ARGO / "example-workflow.yaml", ARGO / "example-cronworkflow.yaml"):
        doc = load(path)
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        names = {m["name"] for m in spec["metrics"]["prometheus"]}
        assert names == {"alert_relay_workflow_duration_seconds", "alert_relay_workflow_result_total"}
        for template in spec["templates"]:
            if "container" not in template:
                continue
            declared = {m["name"] for m in template["metrics"]["prometheus"]}
            expected = {"alert_relay_step_duration_seconds", "alert_relay_step_result_total"}
            if template.get("retryStrategy"):
                expected.add("alert_relay_step_retries")
            assert declared == expected, f"{path.name}:{template['name']}"


def test_metric_names_are_documented_for_alert_policies() -> None:
    """The comment block and the README list every name, declared and as exposed (argo_workflows_)."""
    header = (ARGO / "example-workflow.yaml").read_text().split("\napiVersion:")[0]
    readme = (ARGO / "README.md").read_text()
    for name in METRICS:
        for text, source in ((header, "example-workflow.yaml"), (readme, "README.md")):
            assert name in text, f"{source} does not document {name}"
            assert f"argo_workflows_{name}" in text, f"{source} does not give the exposed name of {name}"


def test_manifests_are_plain_yaml_json_compatible() -> None:
    """No YAML-only types (dates, anchors turned into shared objects) that kubectl would mangle."""
    for path in MANIFESTS:
        json.dumps(load(path))
