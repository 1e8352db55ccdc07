"""Secrets never leak: not in logs, errors, outcomes, traces, dead letters, HTTP answers or reprs.

The secrets are distinctive strings the real sinks must use and fail with: a bot token the fake
Slack rejects (invalid_auth), an incoming-webhook URL whose secret path the fake does not know
(404 no_service), and an HMAC secret for a webhook receiver that answers 500.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import functions_framework
import pytest

from shared import logs
from shared.config import load_settings
from shared.envelope import decode, push_envelope
from shared.errors import ConfigError
from shared.ledger import Ledger
from shared.pipeline import Relay
from shared.routing import load_routes_text
from shared.wiring import build_relay
from tests.fakes.http import Respond
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.webhook_server import FakeWebhookServer

ROOT = Path(__file__).resolve().parents[1]
RELAY_SOURCE = ROOT / "functions" / "relay" / "main.py"
ARGO_FAILED = (ROOT / "examples" / "events" / "argo_failed.json").read_bytes()
MALFORMED = (ROOT / "examples" / "events" / "malformed.txt").read_bytes()
MAX_ATTEMPTS = 3

BOT_TOKEN = "xoxb-SECRET-TOKEN-123"
WEBHOOK_PATH_SECRET = "hookSECRETpath789xyz"
HOOK_SECRET = "whsec-SECRET-456"
# A token in the query of a routed webhook URL: the sink key and errors name only the host.
QUERY_SECRET = "qsSECRET321"

ROUTES = """
version: 1
receivers:
  alerts: {slack: [{channel: "#alerts"}]}
  hook: {webhook: [{url: "%(hook)s", secret_env: HOOK_SECRET}]}
routes: []
default: {receivers: [alerts, hook]}
"""


@dataclass
class Scenario:
    """Which Slack credential the relay holds, and every secret string that must never show."""

    name: str
    secrets: list[str] = field(default_factory=list)


@pytest.fixture
def failing_hook() -> Iterator[FakeWebhookServer]:
    """A webhook receiver that answers every request with HTTP 500."""
    with FakeWebhookServer(default=Respond(status=500, body="receiver exploded")) as server:
        yield server


@pytest.fixture(params=["bot-token", "incoming-webhook"])
def scenario(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    slack_server: FakeSlackServer,
    failing_hook: FakeWebhookServer,
) -> Scenario:
    """Env for one relay: a Slack credential that fails, plus a signed webhook receiver that fails."""
    routes = tmp_path / "routes.yaml"
    hook_url = failing_hook.url_for(f"/ingest?token={QUERY_SECRET}")
    routes.write_text(ROUTES % {"hook": hook_url}, encoding="utf-8")
    monkeypatch.setenv("RELAY_ROUTES", str(routes))
    monkeypatch.setenv("RELAY_LEDGER", f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    monkeypatch.setenv("RELAY_MAX_ATTEMPTS", str(MAX_ATTEMPTS))
    monkeypatch.setenv("RELAY_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("SLACK_API_URL", slack_server.api_url)
    secrets = [HOOK_SECRET, QUERY_SECRET]
    if request.param == "bot-token":
        assert slack_server.token != BOT_TOKEN
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        secrets += [BOT_TOKEN, BOT_TOKEN.removeprefix("xoxb-")]
    else:
        webhook_url = f"{slack_server.url}/services/T0TEST0000/B0SECRET/{WEBHOOK_PATH_SECRET}"
        monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook_url)
        secrets += [webhook_url, WEBHOOK_PATH_SECRET, "/services/T0TEST0000/B0SECRET"]
    return Scenario(request.param, secrets)


def assert_free_of(secrets: list[str], where: str, text: str) -> None:
    assert text, f"nothing captured from {where}: the check would be vacuous"
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{where} leaks {leaked}:\n{text}"


def ledger_dump(ledger: Ledger, ids: list[str]) -> str:
    entries = [e for i in ids for e in ledger.trace(i)]
    dead = ledger.dead_letters()
    return repr(entries) + repr(dead) + "".join(f"{d.detail}{d.attributes}{d.key}" for d in dead)


def push(payload: bytes, message_id: str, attempt: int) -> bytes:
    return json.dumps(push_envelope(payload, message_id=message_id, delivery_attempt=attempt)).encode()


def test_pipeline_failures_never_reveal_secrets(
    scenario: Scenario,
    slack_server: FakeSlackServer,
    failing_hook: FakeWebhookServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outcomes, structured logs, traces, dead letters and sink reprs carry no secret."""
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    relay: Relay = build_relay(load_settings())
    try:
        retried = relay.handle(decode(push(ARGO_FAILED, "m-1", attempt=1)))
        exhausted = relay.handle(decode(push(ARGO_FAILED, "m-1", attempt=MAX_ATTEMPTS)))
        malformed = relay.handle(decode(push(MALFORMED, "m-2", attempt=1)))
        outcomes = [retried, exhausted, malformed]

        # The failures really happened, with the secrets in use.
        assert retried.summary == "retry"
        assert exhausted.summary == "dead_lettered"
        reasons = {r.sink.split("/")[0]: r.reason for r in exhausted.results}
        assert reasons == {"alerts": "auth_error", "hook": "server_error"}
        assert failing_hook.calls[0].header("x-alert-relay-signature").startswith("v1=")
        used = slack_server.calls[0]
        if scenario.name == "bot-token":
            assert used.header("authorization") == f"Bearer {BOT_TOKEN}"
        else:
            assert WEBHOOK_PATH_SECRET in used.path
        assert slack_server.posts == []

        event_id = exhausted.event.event_id if exhausted.event else ""
        captured = capsys.readouterr()
        texts = {
            "outcomes": json.dumps([o.as_dict() for o in outcomes]),
            "outcome reprs": repr(outcomes),
            "structured logs": stream.getvalue(),
            "stdout/stderr": captured.out + captured.err + "(streams)",
            "other loggers": caplog.text + "(caplog)",
            "ledger": ledger_dump(relay.ledger, [event_id, "message:m-2"]),
            "sinks": repr(relay.sinks) + repr([vars(s) for sinks in relay.sinks.values() for s in sinks]),
        }
    finally:
        relay.ledger.close()
        logs.configure()
    assert "auth_error" in texts["structured logs"]
    for where, text in texts.items():
        secrets = scenario.secrets
        if where == "sinks":  # a webhook sink holds its routed URL (config, not a secret env var)
            secrets = [s for s in secrets if s != QUERY_SECRET]
        assert_free_of(secrets, where, text)


def test_function_answers_never_reveal_secrets(
    scenario: Scenario,
    slack_server: FakeSlackServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The functions-framework HTTP answers (503, dead letter, config error) and its logs carry no secret."""
    caplog.set_level(logging.INFO)
    client = functions_framework.create_app(
        target="relay", source=str(RELAY_SOURCE), signature_type="http"
    ).test_client()
    module = sys.modules["main"]
    bodies: list[str] = []
    try:
        for body, expected in (
            (push(ARGO_FAILED, "f-1", attempt=1), 503),
            (push(ARGO_FAILED, "f-1", attempt=MAX_ATTEMPTS), 200),
            (push(MALFORMED, "f-2", attempt=1), 200),
            (b"not json", 200),
        ):
            response = client.post("/", data=body, content_type="application/json")
            assert response.status_code == expected, response.get_data(as_text=True)
            bodies.append(response.get_data(as_text=True))
    finally:
        if module._relay is not None:
            module._relay.ledger.close()

    # A configuration error while the secrets are set: the 500 body names the variable only.
    monkeypatch.setenv("RELAY_LEDGER", "bogus")
    broken = functions_framework.create_app(target="relay", source=str(RELAY_SOURCE), signature_type="http")
    response = broken.test_client().post(
        "/", data=push(ARGO_FAILED, "f-3", 1), content_type="application/json"
    )
    assert response.status_code == 500
    assert "RELAY_LEDGER" in response.get_data(as_text=True)
    bodies.append(response.get_data(as_text=True))

    assert json.loads(bodies[1])["reason"] == "retries_exhausted"
    captured = capsys.readouterr()
    assert_free_of(scenario.secrets, "HTTP answers", "\n".join(bodies))
    assert_free_of(scenario.secrets, "function logs (stdout/stderr)", captured.out + captured.err)
    assert_free_of(scenario.secrets, "other loggers", caplog.text + "(caplog)")


def test_settings_str_and_repr_mask_secrets(scenario: Scenario) -> None:
    """str() and repr() of the loaded settings show the secret fields masked."""
    settings = load_settings()

    for text in (str(settings), repr(settings), repr(settings.model_dump())):
        assert_free_of(scenario.secrets, "settings", text)
    assert "**********" in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SLACK_WEBHOOK_URL": "not-a-url-SECRET-999"}, "SLACK_WEBHOOK_URL"),
        ({"SLACK_WEBHOOK_URL": "ftp://hooks.example/SECRET-999"}, "SLACK_WEBHOOK_URL"),
        ({"RELAY_LEDGER": "bogus", "SLACK_WEBHOOK_URL": "https://x/SECRET-999"}, "RELAY_LEDGER"),
    ],
    ids=["webhook-url-not-a-url", "webhook-url-not-http", "other-error-with-secret-set"],
)
def test_config_error_names_the_variable_without_echoing_its_value(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str], named: str
) -> None:
    """An invalid SLACK_WEBHOOK_URL raises ConfigError naming the variable, never quoting the URL."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert named in message
    assert "SECRET-999" not in message
    assert BOT_TOKEN not in message
    assert "SECRET-999" not in repr(caught.value)
    assert (
        caught.value.__cause__ is None
    )  # `from None`: the pydantic error (which holds the input) is dropped
    assert caught.value.__suppress_context__


def test_missing_webhook_secret_is_named_without_echoing_other_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A webhook whose secret_env is unset: ConfigError names the variable; no secret is echoed."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    routing = load_routes_text(
        'version: 1\nreceivers: {h: {webhook: [{url: "https://h.example.com/x", secret_env: HOOK_SECRET}]}}\n'
        "routes: []\ndefault: {receivers: [h]}\n"
    )

    with pytest.raises(ConfigError) as caught:
        build_relay(load_settings(relay_ledger="memory"), routing=routing)

    assert "HOOK_SECRET is not set" in str(caught.value)
    assert BOT_TOKEN not in str(caught.value)
