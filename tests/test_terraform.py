"""The Terraform in terraform/, checked offline (no provider can be downloaded here, so no validate or
plan): formatting, checkov's policies, and, read with python-hcl2, the wiring the Python code relies
on: the push subscription's retry and dead-letter policy, who may invoke what, where secrets go,
which environment variables are set, which files are deployed, which Firestore collections expire.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import os
import re
import shutil
import subprocess
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import functions_framework
import hcl2
import pytest
from hcl2.utils import SerializationOptions
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from localdev.package import deployable_files
from shared.config import Settings
from shared.ingest import IngestSettings
from shared.ledger import firestore as firestore_ledger

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "terraform"
MODULE = TERRAFORM / "modules" / "python_function"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# Fully offline: --skip-download keeps checkov from fetching guidelines from Prisma Cloud.
CHECKOV_ARGS = ("-d", "terraform", "--framework", "terraform", "--skip-download", "--compact", "-o", "json")
CHECKOV_SETUP = "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -q checkov==3.3.30"

_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
_SECRET_LIKE = re.compile(r"TOKEN|PASSWORD|SECRET|WEBHOOK_URL")
_PUBLIC = {"allUsers", "allAuthenticatedUsers"}
_IAM_TARGET = {  # the attribute naming what a grant is on, by resource type
    "google_project_iam_member": "project",
    "google_pubsub_topic_iam_member": "topic",
    "google_pubsub_subscription_iam_member": "subscription",
    "google_secret_manager_secret_iam_member": "secret_id",
    "google_cloud_run_service_iam_member": "service",
    "google_cloud_run_v2_service_iam_member": "name",
    "google_cloudfunctions2_function_iam_member": "cloud_function",
    "google_service_account_iam_member": "service_account_id",
}
# Set by the module for the platform, not read by our code: each with who reads it.
PLATFORM_VARIABLES = {"LOG_EXECUTION_ID": functions_framework}


# --- reading the configuration --------------------------------------------------------------------


@dataclass
class Config:
    """One Terraform module's blocks, keyed like Terraform addresses them."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "type.name" -> body
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for name, body in self.resources.items() if name.split(".")[0] == kind}


def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@functools.cache
def load(directory: Path) -> Config:
    config = Config()
    for path in sorted(directory.glob("*.tf")):
        doc = _parse(path)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for entry in doc.get(kind, []):
                for type_, named in entry.items():
                    for name, body in named.items():
                        target[f"{type_}.{name}"] = body
        for kind, mapping in (
            ("module", config.modules),
            ("locals", config.locals),
            ("variable", config.variables),
            ("output", config.outputs),
        ):
            for entry in doc.get(kind, []):
                mapping.update(entry)
    return config


def root() -> Config:
    return load(TERRAFORM)


def module() -> Config:
    return load(MODULE)


def expr(value: Any) -> str:
    """The expression inside a lone ``${...}``, or the value itself."""
    if isinstance(value, str) and (match := re.fullmatch(r"\$\{(.*)\}", value, re.DOTALL)):
        return match.group(1)
    return value


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a body (python-hcl2 gives blocks as lists)."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


def local(name: str) -> Any:
    return root().locals[name]


def default(name: str) -> Any:
    return root().variables[name]["default"]


def root_variables_of(file_name: str) -> set[str]:
    """Variables declared in one file of the root module (monitoring_variables.tf has its own docs)."""
    return {name for variable in _parse(TERRAFORM / file_name).get("variable", []) for name in variable}


def env_names(value: dict[str, Any] | str) -> set[str]:
    """Variable names of an environment map: a literal map, or an expression merging literal maps."""
    if isinstance(value, dict):
        return set(value)
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*)\s*=", value))


def setting_names(settings: type[BaseSettings]) -> set[str]:
    return {name.upper() for name in settings.model_fields}


def secret_setting_names(settings: type[BaseSettings]) -> set[str]:
    def is_secret(annotation: Any) -> bool:
        return annotation is SecretStr or SecretStr in typing.get_args(annotation)

    return {name.upper() for name, info in settings.model_fields.items() if is_secret(info.annotation)}


def fileset(base: Path, pattern: str) -> set[str]:
    """Terraform's fileset(): files only, relative, '/'-separated; a trailing ** matches every file."""
    glob = f"{pattern}/*" if pattern.endswith("**") else pattern
    return {path.relative_to(base).as_posix() for path in base.glob(glob) if path.is_file()}


def archive_names(function: str, repo: Path) -> set[str]:
    """The archive the module builds for one function, its patterns evaluated against ``repo``."""
    mod, call = module(), root().modules[function]
    assert local("repo_root") == '${abspath("${path.module}/..")}'
    assert call["function_dir"] == f"${{local.repo_root}}/functions/{function}"
    assert call["shared_dir"] == "${local.repo_root}/shared"
    assert call["requirements_file"] == "${local.repo_root}/requirements.txt"
    archive = mod.data["archive_file.source"]
    fixed = {source["filename"]: source["content"] for source in archive["source"]}
    assert fixed == {
        "main.py": '${file("${var.function_dir}/main.py")}',
        "requirements.txt": "${file(var.requirements_file)}",
    }
    shared_source, extra_source = (d["source"] for d in archive["dynamic"])
    assert expr(shared_source["for_each"]) == "local.shared_files"
    assert shared_source["content"][0]["filename"] == "shared/${source.value}"
    assert expr(extra_source["for_each"]) == "var.extra_files"
    excluded = re.compile(mod.locals["shared_excluded"])
    shared = {
        f"shared/{name}"
        for name in fileset(repo / "shared", mod.locals["shared_pattern"])
        if not excluded.search(name)
    }
    extra = {_resolve_key(key) for key in call.get("extra_files", {})}
    return set(fixed) | shared | extra


def _resolve_key(key: str) -> str:
    inner = expr(key).strip("()")
    return local(inner.removeprefix("local.")) if inner.startswith("local.") else inner


# --- formatting and policies ----------------------------------------------------------------------


class TestFormattingAndPolicies:
    def test_terraform_files_are_formatted(self) -> None:
        """`terraform fmt -check -recursive` finds nothing to rewrite."""
        terraform = shutil.which("terraform")
        if terraform is None:
            pytest.skip("the terraform binary is not on PATH; install Terraform >= 1.5 to run fmt -check")
        env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}
        result = subprocess.run(
            [terraform, "fmt", "-check", "-diff", "-recursive", "terraform"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (
            f"run: terraform fmt -recursive terraform\n{result.stdout}{result.stderr}"
        )

    @pytest.fixture(scope="class")
    def checkov(self) -> dict[str, Any]:
        if not CHECKOV.is_file():
            pytest.skip(f"checkov is not installed in .venv-checkov (CI creates it): {CHECKOV_SETUP}")
        result = subprocess.run(
            [str(CHECKOV), *CHECKOV_ARGS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.stdout.strip(), result.stderr[-2000:]
        report = json.loads(result.stdout)
        assert isinstance(report, dict), "expected one report, for the terraform framework"
        return report

    def test_checkov_reports_no_failed_check(self, checkov: dict[str, Any]) -> None:
        """checkov, fully offline, passes every policy that is not explicitly skipped."""
        failed = [
            f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
            for c in checkov["results"].get("failed_checks", [])
        ]
        assert checkov["summary"]["parsing_errors"] == 0
        assert checkov["summary"]["passed"] > 0
        assert failed == []

    def test_every_checkov_skip_gives_its_reason(self, checkov: dict[str, Any]) -> None:
        """Each `# checkov:skip=ID:reason` next to a resource says why, in a sentence."""
        unexplained = [
            f"{c['check_id']} {c['resource']}"
            for c in checkov["results"].get("skipped_checks", [])
            if len((c.get("check_result") or {}).get("suppress_comment") or "") < 30
        ]
        assert unexplained == []


# --- the push subscription and dead letters -------------------------------------------------------


class TestPushSubscription:
    @pytest.fixture
    def subscription(self) -> dict[str, Any]:
        return root().resources["google_pubsub_subscription.relay_push"]

    def test_it_delivers_the_alerts_topic_to_the_relay_endpoint(self, subscription: dict[str, Any]) -> None:
        """Messages on the alerts topic are pushed to the relay's Cloud Run URI in the v1 envelope."""
        push = block(subscription, "push_config")
        assert expr(subscription["topic"]) == "google_pubsub_topic.alerts.id"
        assert expr(push["push_endpoint"]) == "module.relay.uri"
        assert push["attributes"] == {"x-goog-version": "v1"}

    def test_it_authenticates_with_an_oidc_token_of_the_pusher(self, subscription: dict[str, Any]) -> None:
        """Pub/Sub signs each push as the dedicated pusher account, for the relay's own URI."""
        token = block(block(subscription, "push_config"), "oidc_token")
        assert expr(token["service_account_email"]) == "google_service_account.pusher.email"
        assert expr(token["audience"]) == "module.relay.uri"

    def test_it_retries_with_exponential_backoff(self, subscription: dict[str, Any]) -> None:
        """A 503 from the relay is redelivered after a backoff bounded by the two variables."""
        retry = block(subscription, "retry_policy")
        assert retry["minimum_backoff"] == "${var.minimum_backoff_seconds}s"
        assert retry["maximum_backoff"] == "${var.maximum_backoff_seconds}s"
        assert 0 <= default("minimum_backoff_seconds") <= default("maximum_backoff_seconds") <= 600

    def test_it_dead_letters_after_max_delivery_attempts(self, subscription: dict[str, Any]) -> None:
        """After max_delivery_attempts the message moves to the dead-letter topic."""
        policy = block(subscription, "dead_letter_policy")
        assert expr(policy["dead_letter_topic"]) == "google_pubsub_topic.dead_letter.id"
        assert expr(policy["max_delivery_attempts"]) == "var.max_delivery_attempts"
        assert 5 <= default("max_delivery_attempts") <= 100

    def test_it_never_expires(self, subscription: dict[str, Any]) -> None:
        """A quiet month does not delete the relay's only trigger (the default expiry is 31 days)."""
        assert block(subscription, "expiration_policy")["ttl"] == ""

    def test_its_ack_deadline_is_checked_against_the_relay_timeout(
        self, subscription: dict[str, Any]
    ) -> None:
        """Planning refuses an ack deadline shorter than the relay's timeout."""
        conditions = [p["condition"] for p in block(subscription, "lifecycle")["precondition"]]
        assert "${var.ack_deadline_seconds >= var.relay_function.timeout_seconds}" in conditions
        assert default("ack_deadline_seconds") >= 60  # the relay_function default timeout

    def test_max_delivery_attempts_is_also_the_relays_max_attempts(self) -> None:
        """RELAY_MAX_ATTEMPTS comes from the same variable, with the same default as the relay's."""
        env = root().modules["relay"]["environment_variables"]
        assert expr(env["RELAY_MAX_ATTEMPTS"]) == "tostring(var.max_delivery_attempts)"
        assert default("max_delivery_attempts") == Settings.model_fields["relay_max_attempts"].default

    def test_the_relay_has_no_event_trigger(self) -> None:
        """The relay is an HTTP service fed by the push subscription, not an Eventarc trigger."""
        function = module().resources["google_cloudfunctions2_function.this"]
        assert "event_trigger" not in function


class TestDeadLetters:
    def test_the_dead_letter_topic_has_a_subscription_that_keeps_them(self) -> None:
        """Dead letters land in a pull subscription that keeps them at least 7 days and never expires."""
        keeping = [
            body
            for body in root().of_type("google_pubsub_subscription").values()
            if expr(body["topic"]) == "google_pubsub_topic.dead_letter.id"
        ]
        assert len(keeping) == 1
        (subscription,) = keeping
        assert "push_config" not in subscription
        assert subscription["message_retention_duration"] == "${var.dead_letter_retention_days * 86400}s"
        assert default("dead_letter_retention_days") >= 7
        assert block(subscription, "expiration_policy")["ttl"] == ""

    @pytest.mark.parametrize(
        ("kind", "attribute", "target", "role"),
        [
            ("google_pubsub_topic_iam_member", "topic", "google_pubsub_topic.dead_letter.name", "publisher"),
            (
                "google_pubsub_subscription_iam_member",
                "subscription",
                "google_pubsub_subscription.relay_push.name",
                "subscriber",
            ),
        ],
        ids=["publisher-on-dead-letter-topic", "subscriber-on-push-subscription"],
    )
    def test_the_pubsub_service_agent_can_dead_letter(
        self, kind: str, attribute: str, target: str, role: str
    ) -> None:
        """The Pub/Sub service agent holds the two grants dead-lettering needs."""
        agent = (
            "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
        )
        assert local("pubsub_service_agent") == agent
        grants = {
            (expr(body[attribute]), body["role"])
            for body in root().of_type(kind).values()
            if expr(body["member"]) == "local.pubsub_service_agent"
        }
        assert (target, f"roles/pubsub.{role}") in grants

    def test_the_relay_dead_letters_to_the_same_topic(self) -> None:
        """RELAY_DEAD_LETTER_TOPIC is the subscription's dead-letter topic, a full topic path."""
        env = root().modules["relay"]["environment_variables"]
        assert expr(env["RELAY_DEAD_LETTER_TOPIC"]) == "google_pubsub_topic.dead_letter.id"


# --- identities and invokers ----------------------------------------------------------------------


def _grants() -> set[tuple[str, str, str, str]]:
    """(member, resource type, role, target) of every IAM member binding in the root module."""
    out = set()
    for address, body in root().resources.items():
        kind = address.split(".")[0]
        if kind.endswith("_iam_binding") or kind.endswith("_iam_policy"):
            pytest.fail(f"{address}: authoritative IAM resources would remove grants made elsewhere")
        if kind.endswith("_iam_member"):
            assert kind in _IAM_TARGET, f"{address}: add its target attribute to _IAM_TARGET"
            out.add((expr(body["member"]), kind, body["role"], expr(body[_IAM_TARGET[kind]])))
    return out


_SECRET_OF_EACH = "google_secret_manager_secret.this[each.key].secret_id"
LEAST_PRIVILEGE = {
    "relay": {
        ("google_project_iam_member", "roles/datastore.user", "var.project_id"),
        ("google_project_iam_member", "roles/logging.logWriter", "var.project_id"),
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.dead_letter.name"),
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.status.name"),
        ("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", _SECRET_OF_EACH),
    },
    "ingest[0]": {
        ("google_project_iam_member", "roles/logging.logWriter", "var.project_id"),
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.alerts.name"),
        ("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", _SECRET_OF_EACH),
    },
    "pusher": {
        ("google_cloud_run_service_iam_member", "roles/run.invoker", "module.relay.service_name"),
    },
    "publisher": {
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.alerts.name"),
    },
}


class TestIdentities:
    @pytest.mark.parametrize("account", sorted(LEAST_PRIVILEGE))
    def test_each_service_account_holds_exactly_its_grants(self, account: str) -> None:
        """Every service account has the grants in the table and no other."""
        member = f"google_service_account.{account}.member"
        held = {(kind, role, target) for who, kind, role, target in _grants() if who == member}
        assert held == LEAST_PRIVILEGE[account]

    @pytest.mark.parametrize(
        ("function", "binding", "wanted"),
        [("relay", "relay_reads_its_secrets", "relay"), ("ingest", "ingest_reads_its_secrets", "ingest")],
    )
    def test_each_function_reads_only_its_own_secrets(self, function: str, binding: str, wanted: str) -> None:
        """Secret access is granted per secret, only for the secrets of that function."""
        body = root().resources[f"google_secret_manager_secret_iam_member.{binding}"]
        assert expr(body["for_each"]) == f"local.{function}_secrets"
        assert f'secret.function == "{wanted}"' in local(f"{function}_secrets")

    def test_the_relay_is_invokable_only_by_the_pusher(self) -> None:
        """No allUsers or other principal may call the relay: only the push subscription's identity."""
        invokers = {
            (who, role) for who, kind, role, target in _grants() if target.startswith("module.relay.")
        }
        assert invokers == {("google_service_account.pusher.member", "roles/run.invoker")}

    def test_only_the_ingest_function_is_public(self) -> None:
        """allUsers may invoke the ingest function (webhooks cannot send OIDC), and nothing else."""
        public = {(kind, role, target) for who, kind, role, target in _grants() if who in _PUBLIC}
        assert public == {
            ("google_cloud_run_service_iam_member", "roles/run.invoker", "module.ingest[0].service_name")
        }

    def test_the_public_ingest_binding_says_why_next_to_it(self) -> None:
        """The allUsers binding carries a checkov skip with its reason, in the resource itself."""
        text = (TERRAFORM / "iam.tf").read_text()
        resource = text[text.index('"ingest_invoker_public" {') :]
        resource = resource[: resource.index("\n}\n")]
        assert re.search(r"# checkov:skip=CKV_GCP_102:\S.{30,}", resource)

    def test_argo_exit_handlers_can_publish_through_workload_identity(self) -> None:
        """The publisher account trusts the exit handler's Kubernetes ServiceAccount in each namespace."""
        body = root().resources["google_service_account_iam_member.publisher_workload_identity"]
        assert body["role"] == "roles/iam.workloadIdentityUser"
        assert expr(body["service_account_id"]) == "google_service_account.publisher.name"
        assert body["member"] == (
            "serviceAccount:${local.workload_identity_project_id}.svc.id.goog"
            "[${each.key}/${var.publisher_kubernetes_service_account}]"
        )
        template = (ROOT / "argo" / "exit-handler-workflowtemplate.yaml").read_text()
        assert f"serviceAccountName: {default('publisher_kubernetes_service_account')}" in template


# --- secrets --------------------------------------------------------------------------------------

FUNCTIONS = [("relay", Settings), ("ingest", IngestSettings)]


class TestSecrets:
    @pytest.mark.parametrize(("function", "settings"), FUNCTIONS, ids=[f for f, _ in FUNCTIONS])
    def test_every_secret_setting_has_a_secret_manager_secret(
        self, function: str, settings: type[BaseSettings]
    ) -> None:
        """Each SecretStr setting the function reads can come from Secret Manager, for that function."""
        catalog = local("secret_catalog")
        ours = {name for name, secret in catalog.items() if secret["function"] == function}
        assert ours == secret_setting_names(settings)

    def test_secrets_are_created_without_a_value(self) -> None:
        """No secret value is ever in Terraform: secrets are created empty, versions are added by hand."""
        kinds = {address.split(".")[0] for address in [*root().resources, *root().data]}
        assert not {kind for kind in kinds if "secret_version" in kind}
        secret = root().resources["google_secret_manager_secret.this"]
        assert expr(secret["for_each"]) == "local.secrets"
        assert block(secret, "replication") == {"auto": [{}]}

    @pytest.mark.parametrize("function", ["relay", "ingest"])
    def test_functions_get_secrets_only_as_secret_references(self, function: str) -> None:
        """Secrets reach a function through secret_environment_variables, built from its grants."""
        call = root().modules[function]
        refs = call["secret_environment_variables"]
        assert f"google_secret_manager_secret_iam_member.{function}_reads_its_secrets" in refs
        assert "google_secret_manager_secret.this[name].secret_id" in refs
        assert not env_names(call["environment_variables"]) & set(local("secret_catalog"))

    @pytest.mark.parametrize(
        "environment",
        [
            pytest.param(lambda: root().modules["relay"]["environment_variables"], id="relay"),
            pytest.param(lambda: root().modules["ingest"]["environment_variables"], id="ingest"),
            pytest.param(
                lambda: module().resources["google_cloudfunctions2_function.this"]["service_config"][0][
                    "environment_variables"
                ],
                id="module",
            ),
        ],
    )
    def test_no_plain_environment_variable_is_named_like_a_secret(self, environment: Any) -> None:
        """No environment_variables entry is a token, password, secret or webhook URL."""
        assert {name for name in env_names(environment()) if _SECRET_LIKE.search(name)} == set()

    def test_the_module_refuses_plain_variables_named_like_secrets(self) -> None:
        """The module's own validation rejects such names, whoever calls it."""
        rules = module().variables["environment_variables"]["validation"]
        assert any("TOKEN|PASSWORD|SECRET|WEBHOOK_URL" in rule["condition"] for rule in rules)

    def test_secret_variables_go_through_the_dynamic_block(self) -> None:
        """The function's secret_environment_variables are one block per entry: key, secret, version."""
        service = module().resources["google_cloudfunctions2_function.this"]["service_config"][0]
        (dynamic,) = service["dynamic"]
        secret = dynamic["secret_environment_variables"]
        assert expr(secret["for_each"]) == "var.secret_environment_variables"
        assert expr(secret["content"][0]["key"]) == "secret_environment_variables.key"
        assert expr(secret["content"][0]["secret"]) == "secret_environment_variables.value.secret"


# --- environment variables ------------------------------------------------------------------------


class TestEnvironmentVariables:
    @pytest.mark.parametrize(("function", "settings"), FUNCTIONS, ids=[f for f, _ in FUNCTIONS])
    def test_every_variable_terraform_sets_is_one_the_code_reads(
        self, function: str, settings: type[BaseSettings]
    ) -> None:
        """Plain and secret variable names are all fields of the function's settings class."""
        call = root().modules[function]
        names = env_names(call["environment_variables"])
        names |= {n for n, s in local("secret_catalog").items() if s["function"] == function}
        assert names - setting_names(settings) == set()
        assert names  # the comparison above is not vacuous

    @pytest.mark.parametrize("name", sorted(PLATFORM_VARIABLES))
    def test_platform_variables_the_module_sets_are_read_by_the_runtime(self, name: str) -> None:
        """The module's own variables are read by the framework it serves the function with."""
        service = module().resources["google_cloudfunctions2_function.this"]["service_config"][0]
        assert env_names(service["environment_variables"]) == set(PLATFORM_VARIABLES)
        assert f'"{name}"' in inspect.getsource(PLATFORM_VARIABLES[name])

    def test_the_relay_reads_the_routes_file_shipped_in_its_archive(self) -> None:
        """RELAY_ROUTES points where Cloud Functions unpacks the routes.yaml added to the archive."""
        env = root().modules["relay"]["environment_variables"]
        assert expr(env["RELAY_ROUTES"]) == "local.routes_path"
        name = local("routes_archive_name")
        assert local("routes_path") == "/workspace/${local.routes_archive_name}"
        assert {_resolve_key(k) for k in root().modules["relay"]["extra_files"]} == {name}
        assert name == "routes.yaml"

    @pytest.mark.parametrize(
        ("variable", "setting"),
        [
            ("max_delivery_attempts", "relay_max_attempts"),
            ("ledger_retention_days", "relay_ledger_retention_days"),
            ("ledger_collection_prefix", "relay_firestore_prefix"),
            ("log_level", "relay_log_level"),
        ],
    )
    def test_terraform_defaults_match_the_relays_defaults(self, variable: str, setting: str) -> None:
        """A deployment with default inputs behaves like the relay's documented defaults."""
        assert default(variable) == Settings.model_fields[setting].default

    def test_the_relay_uses_the_firestore_ledger(self) -> None:
        """Production shares one Firestore ledger between instances, with the TTL'd prefix."""
        env = root().modules["relay"]["environment_variables"]
        assert env["RELAY_LEDGER"] == "firestore"
        assert expr(env["RELAY_FIRESTORE_PREFIX"]) == "var.ledger_collection_prefix"
        assert expr(env["RELAY_FIRESTORE_DATABASE"]) == "local.firestore_database"

    def test_ingest_publishes_to_the_alerts_topic(self) -> None:
        """RELAY_ALERTS_TOPIC is the alerts topic's full path, the one the push subscription reads."""
        env = root().modules["ingest"]["environment_variables"]
        assert "RELAY_ALERTS_TOPIC = google_pubsub_topic.alerts.id" in env


# --- the deployed source --------------------------------------------------------------------------


@pytest.fixture
def synthetic_repo(tmp_path: Path) -> Path:
    """A repository tree with the awkward cases: caches, stray .pyc, nested and non-Python files."""
    files = {
        "functions/relay/main.py": "import shared\n",
        "functions/relay/helper.py": "# not deployed: only main.py is\n",
        "functions/ingest/main.py": "import shared\n",
        "requirements.txt": "pydantic\n",
        "shared/model.py": "",
        "shared/defaults/routes.yaml": "version: 1\n",
        "shared/sinks/slack/__init__.py": "",
        "shared/stray.pyc": "",
        "shared/__pycache__/model.cpython-311.pyc": "",
        "shared/sinks/__pycache__/pubsub.cpython-311.pyc": "",
        "shared/sinks/__pycache__/notes.txt": "",
        "tests/test_x.py": "",
    }
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


class TestSourceArchive:
    @pytest.mark.parametrize("function", ["relay", "ingest"])
    def test_the_archive_holds_exactly_the_deployable_files(self, function: str) -> None:
        """Terraform's archive is localdev.package.deployable_files(), plus routes.yaml for the relay."""
        extra = {"routes.yaml"} if function == "relay" else set()
        assert archive_names(function, ROOT) == set(deployable_files(function)) | extra

    @pytest.mark.parametrize("function", ["relay", "ingest"])
    def test_the_file_selection_agrees_on_caches_and_stray_files(
        self, function: str, synthetic_repo: Path
    ) -> None:
        """On a tree with __pycache__ folders, .pyc files and data files, both selections agree."""
        extra = {"routes.yaml"} if function == "relay" else set()
        expected = set(deployable_files(function, synthetic_repo)) | extra
        assert archive_names(function, synthetic_repo) == expected
        assert "shared/defaults/routes.yaml" in expected
        assert not {name for name in expected if "__pycache__" in name or name.endswith(".pyc")}

    @pytest.mark.parametrize("function", ["relay", "ingest"])
    def test_every_deployed_file_is_utf8_text(self, function: str) -> None:
        """Terraform's file() reads UTF-8 only: a binary file in shared/ would break the plan."""
        unreadable = []
        for name, path in deployable_files(function).items():
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                unreadable.append(name)
        assert unreadable == []

    def test_the_archive_object_is_named_by_its_content(self) -> None:
        """A code change is a new object name, hence a new build; no change, no redeploy."""
        mod = module()
        obj = mod.resources["google_storage_bucket_object.source"]
        assert "${data.archive_file.source.output_md5}" in obj["name"]
        assert expr(obj["source"]) == "data.archive_file.source.output_path"
        build = block(mod.resources["google_cloudfunctions2_function.this"], "build_config")
        storage = block(block(build, "source"), "storage_source")
        assert expr(storage["object"]) == "google_storage_bucket_object.source.name"
        assert mod.data["archive_file.source"]["output_file_mode"] == "0644"

    def test_functions_run_on_python_311(self) -> None:
        """The runtime matches the Python the project is tested with."""
        build = block(module().resources["google_cloudfunctions2_function.this"], "build_config")
        assert expr(build["runtime"]) == "var.runtime"
        assert module().variables["runtime"]["default"] == "python311"


# --- Firestore TTL ----------------------------------------------------------------------------------


def _ledger_collections() -> tuple[set[str], set[str]]:
    """(collections via self._col("..."), subcollections via .collection("...")) of FirestoreLedger."""
    tree = ast.parse(inspect.getsource(firestore_ledger))
    top, sub = set(), set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if node.func.attr == "_col" and args:
            top.add(args[0])
        elif node.func.attr == "collection" and args:
            sub.add(args[0])
    return top, sub


class TestFirestoreTtl:
    def test_every_collection_the_ledger_writes_expires(self) -> None:
        """Terraform's TTL list is exactly the collections FirestoreLedger writes, and the trace."""
        top, sub = _ledger_collections()
        assert top and sub
        assert set(local("ledger_collections")) == top
        assert set(local("ledger_subcollections")) == sub

    def test_the_collection_groups_with_the_default_prefix(self) -> None:
        """With default inputs, the TTL policies cover these collection groups."""
        prefix = default("ledger_collection_prefix")
        groups = {f"{prefix}_{name}" for name in local("ledger_collections")} | set(
            local("ledger_subcollections")
        )
        assert groups == {
            "alert_relay_deliveries",
            "alert_relay_repeats",
            "alert_relay_decisions",
            "alert_relay_events",
            "alert_relay_incidents",
            "alert_relay_dead_letters",
            "trace",
        }

    def test_the_ttl_policy_is_on_the_field_the_ledger_writes(self) -> None:
        """One TTL policy per collection group, on expires_at, which nothing indexes."""
        ttl = root().resources["google_firestore_field.ledger_ttl"]
        assert expr(ttl["for_each"]) == "local.ledger_collection_groups"
        assert expr(ttl["field"]) == "local.ledger_ttl_field"
        assert local("ledger_ttl_field") == firestore_ledger.EXPIRES_AT
        assert ttl["ttl_config"] == [{}]
        assert ttl["index_config"] == [{}]
        assert expr(ttl["database"]) == "local.firestore_database"


# --- inputs, outputs and the example --------------------------------------------------------------


def _modules() -> list[Any]:
    return [pytest.param(root, id="root"), pytest.param(module, id="python_function")]


class TestInterface:
    @pytest.mark.parametrize("config", _modules())
    def test_every_variable_is_typed_and_described(self, config: Any) -> None:
        """Each variable says what it is for and what type it takes."""
        vague = [
            name
            for name, body in config().variables.items()
            if not body.get("type") or len(body.get("description", "")) < 10
        ]
        assert vague == []

    @pytest.mark.parametrize("config", _modules())
    def test_every_output_is_described(self, config: Any) -> None:
        """Each output says what it is."""
        assert [name for name, body in config().outputs.items() if not body.get("description")] == []

    def test_the_example_sets_every_required_variable_and_no_unknown_one(self) -> None:
        """terraform.tfvars.example is a complete input: copy, edit, apply."""
        example = _parse(TERRAFORM / "terraform.tfvars.example")
        declared = root().variables
        required = {name for name, body in declared.items() if "default" not in body}
        assert set(example) - set(declared) == set()
        assert required - set(example) == set()

    @pytest.mark.parametrize(
        "output",
        ["alerts_topic", "dead_letter_topic", "dead_letter_subscription", "relay_uri", "ingest_url"],
    )
    def test_the_outputs_operators_need_exist(self, output: str) -> None:
        """Publishers, webhooks and the deploy steps in terraform/README.md use these."""
        assert output in root().outputs

    @pytest.mark.parametrize("kind", ["variable", "output"])
    def test_the_readme_documents_every_input_and_output(self, kind: str) -> None:
        """terraform/README.md has a table row for each variable of variables.tf and each output."""
        names = {"variable": root_variables_of("variables.tf"), "output": set(root().outputs)}[kind]
        readme = (TERRAFORM / "README.md").read_text()
        assert {name for name in names if f"| `{name}` |" not in readme} == set()
