"""Structural tests of the monitoring layer: terraform/monitoring.tf, its variables, the dashboard
template, argo/podmonitoring.yaml and docs/monitoring.md.

Nothing here talks to Google Cloud (terraform validate needs the google provider, which is not
available offline). Instead the HCL is parsed with python-hcl2 and the PromQL is rendered the way
Terraform would, for BOTH Argo metric families ("3.5" and "3.6"), then checked against tables of the
metric names Argo, Managed Prometheus and GKE really expose:

* every policy has documentation (content + subject) and at least one notification channel;
* the relay's own health policies notify the e-mail channel only, every Argo policy the Pub/Sub one;
* every metric (and every label it is filtered on) exists for the chosen Argo version, or is a custom
  metric of argo/*.yaml, an Argo Server, scrape or GKE system metric;
* the PodMonitoring keep-regexes keep every metric used, and nothing that is not used;
* every item of the team's monitoring list is mapped in docs/monitoring.md to a policy or a panel.

Policies are read whatever their declaration style (alert_policies): plain resources, and resources
with for_each over a locals map (google_monitoring_alert_policy.argo over local.argo_alert_policies),
each entry of which is a policy of its own, named argo["<key>"] as in docs/monitoring.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parents[1]
TF = ROOT / "terraform"
MONITORING_TF = TF / "monitoring.tf"
MONITORING_VARIABLES_TF = TF / "monitoring_variables.tf"
DASHBOARD = TF / "dashboards" / "argo.json.tftpl"
PODMONITORING = ROOT / "argo" / "podmonitoring.yaml"
DOCS = ROOT / "docs" / "monitoring.md"

FAMILIES = ("3.5", "3.6")
PLACEHOLDER = "0"  # what an expression Terraform would resolve at plan time renders to here

# --- What really exists ---------------------------------------------------------------------------
# Argo workflow-controller metrics, by family, as /metrics exposes them, with their labels. Written
# by hand from the project's Argo metrics reference, itself read from Argo's source (tags v3.4.18 and
# v3.5.15 for "3.5", v3.6.19 and v3.7.18 for "3.6"). Histograms expose _bucket, _sum and _count.
HISTOGRAM = "histogram"
ARGO_METRICS: dict[str, dict[str, tuple[str, set[str]]]] = {
    "3.5": {
        "argo_workflows_count": ("gauge", {"status"}),
        "argo_workflows_pods_count": ("gauge", {"status"}),
        "argo_workflows_error_count": ("counter", {"cause"}),
        "argo_workflows_workflows_processed_count": ("counter", set()),
        "argo_workflows_operation_duration_seconds": (HISTOGRAM, set()),
        "argo_workflows_queue_depth_count": ("gauge", {"queue_name"}),
        "argo_workflows_queue_adds_count": ("counter", {"queue_name"}),
        "argo_workflows_queue_latency": (HISTOGRAM, {"queue_name"}),
        "argo_workflows_workers_busy_count": ("gauge", {"worker_type"}),
        "argo_workflows_workflow_condition": ("gauge", {"type", "status"}),
        "argo_workflows_k8s_request_total": ("counter", {"kind", "verb", "status_code"}),
        "argo_pod_missing": ("gauge", {"recently_started", "node_phase"}),
        "log_messages": ("counter", {"level"}),
    },
    "3.6": {
        "argo_workflows_gauge": ("gauge", {"status"}),
        "argo_workflows_pods_gauge": ("gauge", {"phase"}),
        "argo_workflows_workflow_condition": ("gauge", {"type", "status"}),
        "argo_workflows_is_leader": ("gauge", set()),
        "argo_workflows_error_count": ("counter", {"cause"}),
        "argo_workflows_log_messages": ("counter", {"level"}),
        "argo_workflows_pod_missing": ("counter", {"recently_started", "node_phase"}),
        "argo_workflows_pod_pending_count": ("counter", {"reason", "namespace"}),
        "argo_workflows_pods_total_count": ("counter", {"phase", "namespace"}),
        "argo_workflows_total_count": ("counter", {"phase", "namespace"}),
        "argo_workflows_operation_duration_seconds": (HISTOGRAM, set()),
        "argo_workflows_queue_adds_count": ("counter", {"queue_name"}),
        "argo_workflows_queue_depth_gauge": ("gauge", {"queue_name"}),
        "argo_workflows_queue_latency": (HISTOGRAM, {"queue_name"}),
        "argo_workflows_queue_duration": (HISTOGRAM, {"queue_name"}),
        "argo_workflows_queue_retries": ("counter", {"queue_name"}),
        "argo_workflows_queue_unfinished_work": ("gauge", {"queue_name"}),
        "argo_workflows_queue_longest_running": ("gauge", {"queue_name"}),
        "argo_workflows_workers_busy_count": ("gauge", {"worker_type"}),
        "argo_workflows_k8s_request_total": ("counter", {"kind", "verb", "status_code"}),
        "argo_workflows_k8s_request_duration": (HISTOGRAM, {"kind", "verb", "status_code"}),
        "argo_workflows_cronworkflows_triggered_total": ("counter", {"name", "namespace"}),
        "argo_workflows_cronworkflows_concurrencypolicy_triggered": (
            "counter",
            {"name", "namespace", "concurrency_policy"},
        ),
        "argo_workflows_workflowtemplate_triggered_total": (
            "counter",
            {"name", "namespace", "cluster_scope", "phase"},
        ),
        "argo_workflows_workflowtemplate_runtime": (HISTOGRAM, {"name", "namespace", "cluster_scope"}),
        "argo_workflows_deprecated_feature": ("counter", {"feature", "namespace"}),
        "argo_workflows_version": ("counter", {"version", "platform", "go_version", "build_date"}),
    },
}
# Custom metrics from metrics.prometheus blocks are exposed as argo_workflows_<name> in both families.
CUSTOM_PREFIX = "argo_workflows_"

# The Argo Server's /metrics (port 2746): go-grpc-prometheus, registered in server/apiserver/argoserver.go.
ARGO_SERVER_METRICS: dict[str, tuple[str, set[str]]] = {
    "grpc_server_started_total": ("counter", {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_handled_total": ("counter", {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
    "grpc_server_msg_received_total": ("counter", {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_msg_sent_total": ("counter", {"grpc_type", "grpc_service", "grpc_method"}),
    "grpc_server_handling_seconds": (HISTOGRAM, {"grpc_type", "grpc_service", "grpc_method"}),
}

# Labels Managed Prometheus adds to every scraped series (PodMonitoring target labels). A scraped
# label that clashes with one of them is kept as exported_<name> (honor_labels is false).
TARGET_LABELS = {"project_id", "location", "cluster", "namespace", "job", "instance", "pod", "container"}
# The synthetic scrape-health series; metric relabelling never applies to it.
SCRAPE_METRICS: dict[str, tuple[str, set[str]]] = {"up": ("gauge", set())}

# GKE system metrics used from PromQL: Cloud Monitoring name -> (metric labels). The k8s_container
# resource labels come on top.
GKE_SYSTEM_METRICS: dict[str, set[str]] = {
    "kubernetes.io/container/cpu/core_usage_time": set(),
    "kubernetes.io/container/memory/used_bytes": {"memory_type"},
    "kubernetes.io/container/uptime": set(),
}
K8S_CONTAINER_LABELS = {
    "project_id",
    "location",
    "cluster_name",
    "namespace_name",
    "pod_name",
    "container_name",
    "monitored_resource",
}

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "ceil", "changes", "clamp_max",
    "clamp_min", "count", "count_over_time", "delta", "deriv", "floor", "histogram_quantile",
    "increase", "irate", "label_replace", "max", "max_over_time", "min", "min_over_time", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "stddev", "sum",
    "sum_over_time", "time", "timestamp", "topk", "bottomk", "vector",
}  # fmt: skip
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
PROMQL_OPERATORS = {"and", "or", "unless"}

# The team's list (the project roadmap, "The monitoring list the team asked for").
MUST_HAVE = [
    "Argo server errors",
    "Argo server resource usage",
    "Workflow success/failure",
    "Number of workflow runs",
    "Workflow duration mean",
    "Workflow duration median",
    "Workflow duration max",
    "Workflow duration min",
    "Workflow duration p95",
    "Workflow resource usage",
]
OPTIONAL = [
    "Per-step success/failure",
    "Per-step duration",
    "Per-step retry count",
    "Per-step resource usage",
    "Workflow retry count",
    "The workflow did not run at all",
    "A step takes so long that users notice",
]

# --- Parsing and rendering ------------------------------------------------------------------------

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=OPTIONS)


def blocks(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """{"type.name": body} for resource/data blocks, {"name": body} for variables/modules."""
    out: dict[str, dict[str, Any]] = {}
    for block in doc.get(kind, []):
        for first, value in block.items():
            if kind in ("resource", "data"):
                for name, body in value.items():
                    out[f"{first}.{name}"] = body
            else:
                out[first] = value
    return out


def merged_locals(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in doc.get("locals", []):
        out.update(block)
    return out


_EACH_VALUE = re.compile(r"\$\{each\.value\.(\w+)\}")
_CONCAT_EACH = re.compile(r"\$\{concat\(\[([^\[\]]*)\],\s*each\.value\.(\w+)\)\}")


def resolve_each(value: Any, key: str, entry: dict[str, Any]) -> Any:
    """value (an attribute of a for_each resource) with each.key and each.value.NAME resolved.

    A value that is exactly ${each.value.NAME} takes the entry's value as it is (a list, a bool, a
    heredoc); inside a longer string the entry's string is spliced in. concat([...], each.value.NAME)
    becomes the joined list. Any other use of each.* fails, rather than being silently left alone.
    """
    if isinstance(value, list):
        return [resolve_each(item, key, entry) for item in value]
    if isinstance(value, dict):
        return {name: resolve_each(item, key, entry) for name, item in value.items()}
    if not isinstance(value, str) or "each." not in value:
        return value
    if value == "${each.key}":
        return key
    if match := _EACH_VALUE.fullmatch(value):
        return entry[match.group(1)]
    if match := _CONCAT_EACH.fullmatch(value):
        head = [f"${{{item.strip()}}}" for item in match.group(1).split(",") if item.strip()]
        tail = entry[match.group(2)]
        assert isinstance(tail, list), f"each.value.{match.group(2)} of {key!r} is not a list"
        return head + tail

    def splice(match: re.Match[str]) -> str:
        spliced = entry[match.group(1)]
        assert isinstance(spliced, str), f"each.value.{match.group(1)} of {key!r} is not a string"
        return spliced

    resolved = _EACH_VALUE.sub(splice, value).replace("${each.key}", key)
    assert "each." not in resolved, f"unsupported use of each in {value!r}"
    return resolved


def alert_policies(
    resources: dict[str, dict[str, Any]], local_values: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every google_monitoring_alert_policy as (name, body), whatever its declaration style.

    * a plain resource, or one with count: its body, named after the resource;
    * for_each over a locals map: one body per entry, each.* resolved, named resource["key"] (the
      name docs/monitoring.md uses, e.g. argo["server_errors"]);
    * for_each over anything else (toset(var.expected_workflows)): the body as written, named after
      the resource; its instances depend on variables, and each.value is rendered with the queries.
    """
    prefix = "google_monitoring_alert_policy."
    for address, body in resources.items():
        if not address.startswith(prefix):
            continue
        name = address.removeprefix(prefix)
        table = re.fullmatch(r"\$\{local\.(\w+)\}", str(body.get("for_each", "")))
        if not table:
            yield name, body
            continue
        entries = local_values[table.group(1)]
        assert isinstance(entries, dict) and entries, f"{name}: for_each over an empty or non-map local"
        template = {attribute: value for attribute, value in body.items() if attribute != "for_each"}
        for key, entry in entries.items():
            yield f'{name}["{key}"]', resolve_each(template, key, entry)


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    return load_hcl(MONITORING_TF)


@pytest.fixture(scope="module")
def resources(tf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return blocks(tf, "resource")


@pytest.fixture(scope="module")
def policies(resources: dict[str, dict[str, Any]], local_values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, body in alert_policies(resources, local_values):
        assert name not in found, f"two policies named {name}"
        found[name] = body
    assert found, "monitoring.tf defines no alert policy"
    return found


@pytest.fixture(scope="module")
def local_values(tf: dict[str, Any]) -> dict[str, Any]:
    return merged_locals(tf)


@pytest.fixture(scope="module")
def variables() -> dict[str, dict[str, Any]]:
    return blocks(load_hcl(MONITORING_VARIABLES_TF), "variable")


class Renderer:
    """Resolves ${...} in an HCL string the way Terraform would, for one Argo metric family.

    local.argo.KEY reads the family's entry of local.argo_metrics; other locals and variable
    defaults are substituted (recursively); anything only known at plan/apply time (resource
    attributes, function calls, variables without default) becomes PLACEHOLDER.
    """

    def __init__(self, local_values: dict[str, Any], variables: dict[str, dict[str, Any]], family: str):
        self.locals = local_values
        self.family = local_values["argo_metrics"][family]
        self.defaults = {name: body.get("default") for name, body in variables.items()}

    def render(self, text: str, extra: dict[str, str] | None = None) -> str:
        text = text.replace("$${", "\0")
        for _ in range(30):
            rendered = re.sub(r"\$\{([^{}]*)\}", lambda m: self._expression(m.group(1).strip(), extra), text)
            if rendered == text:
                break
            text = rendered
        assert "${" not in text, f"unrendered interpolation in {text!r}"
        return text.replace("\0", "${")

    def _expression(self, expression: str, extra: dict[str, str] | None) -> str:
        if extra and expression in extra:
            return extra[expression]
        if match := re.fullmatch(r"local\.argo\.(\w+)", expression):
            return str(self.family[match.group(1)])
        if match := re.fullmatch(r"local\.(\w+)", expression):
            value = self.locals[match.group(1)]
            assert isinstance(value, str | int | float), f"local.{match.group(1)} is not a string"
            return str(value)
        if match := re.fullmatch(r"var\.(\w+)", expression):
            value = self.defaults.get(match.group(1))
            return (
                str(value)
                if isinstance(value, str | int | float) and not isinstance(value, bool)
                else PLACEHOLDER
            )
        return PLACEHOLDER


@pytest.fixture(scope="module")
def renderers(local_values: dict[str, Any], variables: dict[str, dict[str, Any]]) -> dict[str, Renderer]:
    return {family: Renderer(local_values, variables, family) for family in FAMILIES}


def heredoc_body(text: str) -> str:
    """python-hcl2 keeps the <<-EOT ... EOT markers of heredocs; drop them."""
    match = re.fullmatch(r"<<-?(\w+)\n(.*)\n\s*\1\s*", text, flags=re.DOTALL)
    return match.group(2) if match else text


# --- PromQL analysis ------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_IDENT = re.compile(r"(?<![\w.:])[A-Za-z_:][\w:]*")


def strip_promql(query: str) -> str:
    """The query without string literals, label matchers, ranges and grouping label lists."""
    text = _STRING.sub('""', query)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    return re.sub(r"\boffset\s+\w+", " ", text)


def metric_names(query: str) -> set[str]:
    text = strip_promql(query)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        if word in PROMQL_KEYWORDS | PROMQL_OPERATORS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            assert word in PROMQL_FUNCTIONS, f"unknown PromQL function {word!r} in {query!r}"
        else:
            names.add(word)
    return names


def selector_labels(query: str) -> list[tuple[str, set[str]]]:
    """(metric, label names it is matched on) for every name{...} selector."""
    out = []
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)\s*\{([^{}]*)\}", _STRING.sub('""', query)):
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*\"\"", match.group(2)))
        out.append((match.group(1), labels))
    return out


def gke_promql_name(monitoring_name: str) -> str:
    """Cloud Monitoring metric type -> PromQL name: first / -> ':', every other special char -> '_'."""
    domain, path = monitoring_name.split("/", 1)
    return re.sub(r"[^A-Za-z0-9_]", "_", domain) + ":" + re.sub(r"[^A-Za-z0-9_]", "_", path)


def custom_metrics() -> dict[str, set[str]]:
    """argo_workflows_<name> -> label keys, from every metrics.prometheus block under argo/."""
    found: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            prometheus = (
                node.get("metrics", {}).get("prometheus") if isinstance(node.get("metrics"), dict) else None
            )
            for metric in prometheus or []:
                keys = {label["key"] for label in metric.get("labels", [])}
                found.setdefault(CUSTOM_PREFIX + metric["name"], set()).update(keys)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((ROOT / "argo").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in {"Workflow", "WorkflowTemplate", "CronWorkflow"}:
                walk(doc)
    assert found, "no custom metrics found under argo/"
    return found


def known_metrics(family: str) -> dict[str, set[str]]:
    """Every metric name PromQL may use for this family -> the labels it may be filtered on."""
    known: dict[str, set[str]] = {}

    def add(name: str, kind: str, labels: set[str], extra: set[str]) -> None:
        # A scraped label that clashes with a target label is stored as exported_<label>.
        labels = {f"exported_{label}" if label in TARGET_LABELS else label for label in labels}
        names = [f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == HISTOGRAM else [name]
        for series in names:
            known[series] = labels | extra | ({"le"} if series.endswith("_bucket") else set())

    for name, (kind, labels) in ARGO_METRICS[family].items():
        add(name, kind, labels, TARGET_LABELS)
    for name, labels in custom_metrics().items():
        add(name, "custom", labels, TARGET_LABELS)
    for name, (kind, labels) in {**ARGO_SERVER_METRICS, **SCRAPE_METRICS}.items():
        add(name, kind, labels, TARGET_LABELS)
    for name, labels in GKE_SYSTEM_METRICS.items():
        known[gke_promql_name(name)] = labels | K8S_CONTAINER_LABELS
    return known


def scraped_argo_metrics() -> set[str]:
    """Names whose series come from the two PodMonitorings (not GKE system metrics, not `up`)."""
    names: set[str] = set()
    for family in FAMILIES:
        for name, (kind, _) in ARGO_METRICS[family].items():
            names.update([f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == HISTOGRAM else [name])
    names.update(custom_metrics())
    for name, (kind, _) in ARGO_SERVER_METRICS.items():
        names.update([f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == HISTOGRAM else [name])
    return names


# --- Collected queries ----------------------------------------------------------------------------


def policy_queries(policies: dict[str, dict[str, Any]], renderer: Renderer) -> dict[str, str]:
    out = {}
    for name, body in policies.items():
        for index, condition in enumerate(body.get("conditions", [])):
            for promql in condition.get("condition_prometheus_query_language", []):
                out[f"{name}[{index}]"] = renderer.render(promql["query"], {"each.value": "asr-nightly"})
    return out


def render_dashboard(local_values: dict[str, Any], renderer: Renderer) -> dict[str, Any]:
    template = DASHBOARD.read_text()
    template_vars = dict(local_values["dashboard_vars"])
    queries = {key: renderer.render(value) for key, value in local_values["dashboard_queries"].items()}

    def substitute(match: re.Match[str]) -> str:
        expression = match.group(1)
        if call := re.fullmatch(r"jsonencode\(q\.(\w+)\)", expression):
            assert call.group(1) in queries, (
                f"the dashboard uses q.{call.group(1)}, not in local.dashboard_queries"
            )
            return json.dumps(queries[call.group(1)])
        assert expression in template_vars, (
            f"the dashboard uses ${{{expression}}}, not in local.dashboard_vars"
        )
        return renderer.render(str(template_vars[expression]))

    rendered = re.sub(r"\$\{([^{}]+)\}", substitute, template.replace("$${", "\0")).replace("\0", "${")
    return json.loads(rendered)


def dashboard_widgets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [tile["widget"] for tile in dashboard["mosaicLayout"]["tiles"]]


def dashboard_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    out = {}
    for widget in dashboard_widgets(dashboard):
        for index, data_set in enumerate(widget.get("xyChart", {}).get("dataSets", [])):
            query = data_set["timeSeriesQuery"].get("prometheusQuery")
            if query is not None:
                out[f"{widget['title']}[{index}]"] = query
    return out


def all_queries(policies, local_values, renderer) -> dict[str, str]:
    return {
        **{f"policy {k}": v for k, v in policy_queries(policies, renderer).items()},
        **{f"panel {k}": v for k, v in dashboard_queries(render_dashboard(local_values, renderer)).items()},
    }


def channels(policy: dict[str, Any]) -> list[str]:
    value = policy.get("notification_channels", [])
    assert isinstance(value, list), f"notification_channels must be a literal list, got {value!r}"
    return value


PUBSUB = "${google_monitoring_notification_channel.pubsub.id}"
EMAIL = "${google_monitoring_notification_channel.email.id}"


def is_relay_health(policy: dict[str, Any]) -> bool:
    return policy.get("user_labels", {}).get("component") == "alert-relay"


# --- Policies -------------------------------------------------------------------------------------


def test_every_policy_has_documentation_subject_and_a_channel(policies: dict[str, dict[str, Any]]) -> None:
    for name, body in policies.items():
        documentation = body.get("documentation", [{}])[0]
        assert heredoc_body(documentation.get("content", "")).strip(), f"{name}: documentation.content"
        assert documentation.get("subject", "").strip(), f"{name}: documentation.subject"
        assert documentation.get("mime_type") == "text/markdown", name
        assert channels(body), f"{name}: no notification channel"
        assert body.get("severity") in {"CRITICAL", "ERROR", "WARNING"}, f"{name}: severity"
        assert body.get("combiner") == "OR", name
        assert body.get("conditions"), f"{name}: no condition"


def test_relay_health_policies_notify_the_email_channel_only(policies: dict[str, dict[str, Any]]) -> None:
    relay = {name: body for name, body in policies.items() if is_relay_health(body)}
    assert len(relay) >= 3, (
        f"expected dead-letter, relay-error and undelivered-event policies, got {sorted(relay)}"
    )
    for name, body in relay.items():
        assert channels(body) == [EMAIL], f"{name}: relay health must reach e-mail only, not {channels(body)}"
        assert PUBSUB not in channels(body), name


def test_the_three_relay_health_signals_are_covered(policies: dict[str, dict[str, Any]]) -> None:
    relay = [body for body in policies.values() if is_relay_health(body)]
    filters = [json.dumps(condition) for body in relay for condition in body["conditions"]]
    assert any(
        "pubsub.googleapis.com/subscription/num_undelivered_messages" in f
        and "google_pubsub_subscription." in f
        for f in filters
    ), "no dead-letter backlog policy"
    assert any("logging.googleapis.com/user/${google_logging_metric.relay_errors.name}" in f for f in filters)
    assert any("condition_matched_log" in f for f in filters), "no log-match policy for UNDELIVERED_EVENT"


def test_every_argo_policy_notifies_the_pubsub_channel(policies: dict[str, dict[str, Any]]) -> None:
    argo = {name: body for name, body in policies.items() if not is_relay_health(body)}
    assert len(argo) >= 10, sorted(argo)
    for name, body in argo.items():
        assert PUBSUB in channels(body), f"{name}: Argo policies go through the relay (Pub/Sub channel)"
        labels = body.get("user_labels", {})
        assert labels.get("source") == "argo", name
        assert {"team", "env", "component"} <= set(labels), f"{name}: route hints missing: {labels}"
    # The exit handler's own failure must not depend on the relay alone.
    assert channels(argo['argo["exit_handler_failed"]']) == [PUBSUB, EMAIL]


def test_argo_policies_use_one_promql_condition(policies: dict[str, dict[str, Any]]) -> None:
    for name, body in policies.items():
        if is_relay_health(body):
            continue
        assert len(body["conditions"]) == 1, f"{name}: one PromQL condition per policy"
        condition = body["conditions"][0]
        assert "condition_prometheus_query_language" in condition, name
        promql = condition["condition_prometheus_query_language"][0]
        assert re.fullmatch(r"\d+s", promql["evaluation_interval"]), name
        assert int(promql["evaluation_interval"][:-1]) % 30 == 0, (
            f"{name}: evaluation_interval multiple of 30s"
        )
        assert re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", promql["alert_rule"]), name


def test_policy_tables_have_one_shape_that_the_resource_reads(resources, local_values) -> None:
    """Each locals map behind a for_each: every entry has the same attributes, each one read by the
    resource and none missing (what terraform validate would catch, which needs the provider)."""
    tables = 0
    for address, body in resources.items():
        table = re.fullmatch(r"\$\{local\.(\w+)\}", str(body.get("for_each", "")))
        if not address.startswith("google_monitoring_alert_policy.") or not table:
            continue
        tables += 1
        entries = local_values[table.group(1)]
        read = set(re.findall(r"each\.value\.(\w+)", json.dumps(body)))
        for key, entry in entries.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", key), f"{address}: key {key!r}"
            assert set(entry) == read, (
                f'{address}["{key}"]: unread {sorted(set(entry) - read)}, missing {sorted(read - set(entry))}'
            )
    assert tables, "expected the Argo policies as one for_each over a locals map"


def test_log_match_policies_have_a_notification_rate_limit(policies: dict[str, dict[str, Any]]) -> None:
    log_match = [
        name
        for name, body in policies.items()
        if any("condition_matched_log" in c for c in body["conditions"])
    ]
    assert log_match, "expected a log-match policy for the publisher's UNDELIVERED_EVENT line"
    for name in log_match:
        strategy = policies[name].get("alert_strategy", [{}])[0]
        limit = strategy.get("notification_rate_limit", [{}])[0]
        assert re.fullmatch(r"\d+s", limit.get("period", "")), f"{name}: notification_rate_limit.period"


def test_the_undelivered_event_filter_matches_the_publishers_marker(local_values: dict[str, Any]) -> None:
    from shared.publisher import MARKER_FIELD, MARKER_VALUE

    assert local_values["publisher_undelivered_filter"] == f'jsonPayload.{MARKER_FIELD}="{MARKER_VALUE}"'


def test_notification_channels_and_publisher_grant(resources: dict[str, dict[str, Any]]) -> None:
    pubsub = resources["google_monitoring_notification_channel.pubsub"]
    assert pubsub["type"] == "pubsub"
    assert pubsub["labels"] == {"topic": "${google_pubsub_topic.alerts.id}"}
    email = resources["google_monitoring_notification_channel.email"]
    assert email["type"] == "email"
    assert email["labels"] == {"email_address": "${var.alert_email}"}
    grants = [
        body
        for key, body in resources.items()
        if key.startswith("google_pubsub_topic_iam_member.") and body.get("role") == "roles/pubsub.publisher"
    ]
    assert any(
        body["topic"].startswith("${google_pubsub_topic.alerts.")
        and body["member"] == "${local.monitoring_notification_agent}"
        for body in grants
    ), "Cloud Monitoring's notification agent must be allowed to publish to the alerts topic"


def test_monitoring_notification_agent_address(local_values: dict[str, Any]) -> None:
    assert local_values["monitoring_notification_agent"] == (
        "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
    )


# --- Metric names ---------------------------------------------------------------------------------


def test_the_family_map_has_the_same_keys_for_both_families(local_values: dict[str, Any]) -> None:
    argo_metrics = local_values["argo_metrics"]
    assert set(argo_metrics) == set(FAMILIES)
    assert set(argo_metrics["3.5"]) == set(argo_metrics["3.6"])
    assert local_values["argo"] == "${local.argo_metrics[var.argo_version_family]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_metric_and_label_exists_in_the_family(family, policies, local_values, renderers) -> None:
    known = known_metrics(family)
    queries = all_queries(policies, local_values, renderers[family])
    assert len(queries) > 30
    for where, query in queries.items():
        names = metric_names(query)
        assert names, f"{where}: no metric in {query!r}"
        unknown = names - set(known)
        assert not unknown, f"{where} (Argo {family}): unknown metric(s) {sorted(unknown)} in {query!r}"
        for metric, labels in selector_labels(query):
            bad = labels - known[metric]
            assert not bad, f"{where} (Argo {family}): {metric} has no label(s) {sorted(bad)}"


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_uses_its_own_names(family, policies, local_values, renderers) -> None:
    used = set().union(*map(metric_names, all_queries(policies, local_values, renderers[family]).values()))
    other = "3.6" if family == "3.5" else "3.5"
    only_other = set(ARGO_METRICS[other]) - set(ARGO_METRICS[family])
    assert not used & only_other, f"Argo {family} queries use {other}-only names {sorted(used & only_other)}"
    own = {"3.5": {"argo_workflows_count", "log_messages"}, "3.6": {"argo_workflows_total_count"}}[family]
    assert own <= used


def test_gke_metric_mapping() -> None:
    assert gke_promql_name("kubernetes.io/container/cpu/core_usage_time") == (
        "kubernetes_io:container_cpu_core_usage_time"
    )
    assert (
        gke_promql_name("kubernetes.io/container/memory/used_bytes")
        == "kubernetes_io:container_memory_used_bytes"
    )


def test_promql_helpers_see_through_labels_and_functions() -> None:
    query = (
        'sum by (cause) (increase(argo_workflows_error_count{job="x",cause=~"a|b"}[10m])) > 0 or '
        'sum by (cause) (argo_workflows_error_count{job="x"} '
        'unless argo_workflows_error_count{job="x"} offset 10m)'
    )
    assert metric_names(query) == {"argo_workflows_error_count"}
    assert selector_labels(query)[0] == ("argo_workflows_error_count", {"job", "cause"})
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        metric_names("sume(up)")


# --- Dashboard ------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_dashboard_renders_to_a_valid_mosaic(family, local_values, renderers) -> None:
    dashboard = render_dashboard(local_values, renderers[family])
    layout = dashboard["mosaicLayout"]
    columns = layout["columns"]
    occupied: set[tuple[int, int]] = set()
    for tile in layout["tiles"]:
        x, y = tile.get("xPos", 0), tile.get("yPos", 0)
        assert x + tile["width"] <= columns, tile["widget"]["title"]
        cells = {(x + i, y + j) for i in range(tile["width"]) for j in range(tile["height"])}
        assert not cells & occupied, f"overlapping tile {tile['widget']['title']}"
        occupied |= cells
        widget = tile["widget"]
        assert widget["title"], tile
        assert {"xyChart", "text"} & set(widget), widget["title"]
    titles = [w["title"] for w in dashboard_widgets(dashboard)]
    assert len(titles) == len(set(titles)), "panel titles must be unique (docs/monitoring.md refers to them)"


def test_every_dashboard_query_is_shown(local_values: dict[str, Any]) -> None:
    used = set(re.findall(r"jsonencode\(q\.(\w+)\)", DASHBOARD.read_text()))
    assert used == set(local_values["dashboard_queries"]), (
        "queries defined but not shown, or shown but undefined"
    )


def test_dashboard_resource_uses_the_template(resources: dict[str, dict[str, Any]]) -> None:
    dashboard = resources["google_monitoring_dashboard.argo"]
    assert "templatefile(" in dashboard["dashboard_json"]
    assert "dashboards/argo.json.tftpl" in dashboard["dashboard_json"]
    assert "local.dashboard_vars" in dashboard["dashboard_json"]


def test_relay_panels_use_the_relays_own_metrics(local_values, renderers) -> None:
    dashboard = render_dashboard(local_values, renderers["3.6"])
    filters = [
        data_set["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
        for widget in dashboard_widgets(dashboard)
        for data_set in widget.get("xyChart", {}).get("dataSets", [])
        if "timeSeriesFilter" in data_set["timeSeriesQuery"]
    ]
    assert any("num_undelivered_messages" in f for f in filters), "dead-letter backlog panel"
    assert any("logging.googleapis.com/user/" in f for f in filters), "relay outcome panels"
    template_vars = local_values["dashboard_vars"]
    for key in ("relay_errors_metric", "relay_outcomes_metric", "publisher_undelivered_metric"):
        assert re.fullmatch(r"\$\{google_logging_metric\.\w+\.name\}", template_vars[key]), key


# --- PodMonitoring --------------------------------------------------------------------------------


def podmonitorings() -> dict[str, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(PODMONITORING.read_text()) if doc]
    items = [item for doc in docs for item in (doc["items"] if doc.get("kind") == "List" else [doc])]
    assert all(item["apiVersion"] == "monitoring.googleapis.com/v1" for item in items)
    assert all(item["kind"] == "PodMonitoring" for item in items)
    return {item["metadata"]["name"]: item for item in items}


def keep_regexes(monitoring: dict[str, Any]) -> list[re.Pattern[str]]:
    out = []
    for endpoint in monitoring["spec"]["endpoints"]:
        assert endpoint["port"] and re.fullmatch(r"\d+s", endpoint["interval"]), endpoint
        assert endpoint["scheme"] in {"http", "https"}
        if endpoint["scheme"] == "https":
            assert endpoint.get("tls", {}).get("insecureSkipVerify") is True, "self-signed certificates"
        rules = endpoint["metricRelabeling"]
        keeps = [r for r in rules if r["action"] == "keep" and r["sourceLabels"] == ["__name__"]]
        assert len(keeps) == 1, endpoint
        out.append(re.compile(keeps[0]["regex"]))
    return out


def test_podmonitoring_names_match_the_policy_selectors(local_values: dict[str, Any]) -> None:
    monitorings = podmonitorings()
    assert set(monitorings) == {local_values["argo_controller_job"], local_values["argo_server_job"]}
    for monitoring in monitorings.values():
        assert monitoring["spec"]["selector"]["matchLabels"], "select the Argo pods"
        assert "namespace" not in monitoring["metadata"], "applied with -n <argo namespace>"


def test_podmonitoring_keeps_every_used_metric_and_nothing_else(policies, local_values, renderers) -> None:
    monitorings = podmonitorings()
    controller = keep_regexes(monitorings[local_values["argo_controller_job"]])
    server = keep_regexes(monitorings[local_values["argo_server_job"]])
    scraped = scraped_argo_metrics()
    used: set[str] = set()
    for family in FAMILIES:
        for query in all_queries(policies, local_values, renderers[family]).values():
            used |= metric_names(query) & scraped
    # A histogram is one Cloud Monitoring metric: its _bucket, _sum and _count series go together.
    for name in [n for n in used if n.endswith("_bucket")]:
        base = name.removesuffix("_bucket")
        used |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    server_series = {n for n in scraped if n.startswith("grpc_server_")}

    def kept(name: str, regexes: list[re.Pattern[str]]) -> bool:
        return any(r.fullmatch(name) for r in regexes)

    for name in sorted(used):
        assert kept(name, server if name in server_series else controller), (
            f"{name} is used but the PodMonitoring keep-regex drops it"
        )
    for name in sorted(scraped - used):
        assert not kept(name, controller + server), (
            f"{name} is kept (and billed) but no policy or panel uses it"
        )


# --- Variables ------------------------------------------------------------------------------------


def test_monitoring_variables_are_typed_described_and_validated(variables: dict[str, dict[str, Any]]) -> None:
    assert not {"alert_email", "project_id", "region", "name_prefix"} & set(variables), (
        "defined in variables.tf"
    )
    for name, body in variables.items():
        assert body.get("type"), f"{name}: type"
        assert len(body.get("description", "")) > 20, f"{name}: description"
        if body["type"] in ("number", "string", "list(string)"):
            assert body.get("validation"), f"{name}: validation"
    family = variables["argo_version_family"]
    assert family["default"] in FAMILIES
    assert all(f'"{f}"' in family["validation"][0]["condition"] for f in FAMILIES)
    for required in (
        "argo_namespace",
        "cluster_name",
        "cluster_location",
        "workflow_duration_p95_seconds",
        "step_duration_threshold_seconds",
        "queue_depth_threshold",
        "pending_pods_minutes",
        "did_not_run_lookback_hours",
        "argo_server_cpu_cores",
        "argo_server_memory_mib",
        "controller_cpu_cores",
        "controller_memory_mib",
    ):
        assert required in variables, required


def test_every_reference_resolves(tf: dict[str, Any]) -> None:
    """Resources, data sources and modules that monitoring.tf names exist somewhere in terraform/."""
    text = MONITORING_TF.read_text() + DASHBOARD.read_text()
    declared: set[str] = set()
    for path in TF.glob("*.tf"):
        doc = load_hcl(path)
        declared |= set(blocks(doc, "resource"))
        declared |= {f"data.{key}" for key in blocks(doc, "data")}
        declared |= {f"module.{key}" for key in blocks(doc, "module")}
        declared |= {f"var.{key}" for key in blocks(doc, "variable")}
        declared |= {f"local.{key}" for key in merged_locals(doc)}
    references = set(re.findall(r"(?<![\w.])(google_\w+\.\w+)\.", text))
    references |= set(re.findall(r"(?<![\w.])(data\.google_\w+\.\w+)\.", text))
    references |= set(re.findall(r"(?<![\w.])((?:module|var|local)\.\w+)", text))
    missing = sorted(references - declared)
    assert not missing, f"monitoring.tf references undefined {missing}"


# --- Documentation --------------------------------------------------------------------------------


def docs_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 4 and not set(cells[0]) <= {"-", " ", ":"}:
            rows[cells[0]] = cells
    return rows


def test_docs_map_every_item_of_the_teams_list(policies, local_values, renderers) -> None:
    rows = docs_rows()
    titles = {w["title"] for w in dashboard_widgets(render_dashboard(local_values, renderers["3.6"]))}
    for item in MUST_HAVE + OPTIONAL:
        assert item in rows, f"docs/monitoring.md has no row for {item!r}"
        _, level, policy_cell, panel_cell = rows[item][:4]
        assert level == ("Must" if item in MUST_HAVE else "Optional"), item
        named_policies = set(re.findall(r'`(\w+(?:\["\w+"\])?)`', policy_cell))
        named_panels = set(re.findall(r"\"([^\"]+)\"", panel_cell))
        assert named_policies <= set(policies), f"{item}: unknown policies {named_policies - set(policies)}"
        assert named_panels <= titles, f"{item}: unknown panels {named_panels - titles}"
        assert named_policies or named_panels, f"{item}: no policy and no panel"


def test_docs_mention_every_policy(policies: dict[str, dict[str, Any]]) -> None:
    text = DOCS.read_text()
    for name in policies:
        assert f"`{name}`" in text, f"docs/monitoring.md does not describe {name}"
