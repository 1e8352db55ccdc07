"""The ``alert-relay`` command: render, routes test, schema, trace and the local run.

Most cases call ``shared.cli.main(argv)`` in process (fast, output via capsys); the exit-status and
stderr contract, and the local run, go through the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.cli import main
from shared.config import load_settings
from shared.envelope import PUBSUB_CLOUDEVENT_TYPE, decode, push_envelope
from shared.model import AlertEvent
from shared.wiring import build_relay
from tests.fakes import FakeClock
from tests.fakes.slack_server import FakeSlackServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "events"
EXAMPLE_EVENTS = sorted(EXAMPLES.glob("*.json"))
ALERT_RELAY = Path(sys.executable).parent / "alert-relay"

CUSTOM_ROUTES = """
version: 1
receivers:
  ops:
    slack: [{channel: "#ops"}]
    pubsub: [{topic: projects/local-project/topics/alerts-out}]
  audit:
    webhook: [{url: "https://audit.example.com/relay"}]
routes:
  - name: speech-failures
    matchers: ['team="speech"', 'status="firing"']
    receivers: [ops, audit]
  - name: platform-only
    matchers: ['team="platform"']
    receivers: [ops]
default: {receivers: [ops]}
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``alert-relay ARGS`` in process; returns exit code, stdout and stderr."""

    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def console(*argv: str, cwd: Path = ROOT, timeout: float = 60) -> Run:
    """Run the installed console script in a subprocess with the (isolated) test environment."""
    done = subprocess.run(
        [str(ALERT_RELAY), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def write(path: Path, content: str | bytes | dict[str, Any]) -> Path:
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


# -- render ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLE_EVENTS, ids=[p.stem for p in EXAMPLE_EVENTS])
def test_render_prints_the_event_and_each_slack_request(cli, example: Path) -> None:
    """render prints {"event", "deliveries"}; every Slack request has channel, text and blocks."""
    result = cli("render", str(example))

    assert (result.code, result.err) == (0, "")
    rendered = result.json()
    assert set(rendered) == {"event", "deliveries"}
    assert AlertEvent.model_validate(rendered["event"]).event_id == rendered["event"]["event_id"]
    assert rendered["deliveries"], "every event is routed somewhere"
    for delivery in rendered["deliveries"]:
        assert set(delivery) == {"route", "receiver", "sink", "kind", "request"}
        assert delivery["kind"] == "slack.chat.postMessage"
        request = delivery["request"]
        assert request["channel"].startswith("#")
        assert request["text"]
        assert isinstance(request["blocks"], list)
        assert request["blocks"]
        assert request["metadata"]["event_payload"]["event_id"] == rendered["event"]["event_id"]


def test_render_of_argo_failure_goes_to_alerts_via_workflow_failures(cli) -> None:
    """The bundled routes send an Argo failure to #alerts through route workflow-failures."""
    rendered = cli("render", str(EXAMPLES / "argo_failed.json")).json()

    assert [(d["route"], d["receiver"], d["sink"]) for d in rendered["deliveries"]] == [
        ("workflow-failures", "alerts", "alerts/slack:#alerts")
    ]
    assert rendered["event"]["source"] == "argo"
    assert rendered["event"]["status"] == "firing"


def _wrapped_in_push_envelope(bare: bytes) -> dict[str, Any]:
    return push_envelope(bare, message_id="cli-1")


def _wrapped_in_structured_cloudevent(bare: bytes) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": PUBSUB_CLOUDEVENT_TYPE,
        "source": "//pubsub.googleapis.com/projects/local-project/topics/alerts",
        "id": "cli-2",
        "time": "2026-05-02T09:42:00Z",
        "datacontenttype": "application/json",
        "data": push_envelope(bare, message_id="cli-2"),
    }


@pytest.mark.parametrize("wrap", [_wrapped_in_push_envelope, _wrapped_in_structured_cloudevent])
@pytest.mark.parametrize("example", EXAMPLE_EVENTS, ids=[p.stem for p in EXAMPLE_EVENTS])
def test_render_of_a_wrapped_payload_gives_the_same_event_as_the_bare_file(
    cli, tmp_path: Path, example: Path, wrap
) -> None:
    """A payload in a push envelope or a structured CloudEvent renders the same event as bare.

    Except one field: a Cloud Monitoring event id includes the Pub/Sub message id, since Cloud
    Monitoring re-sends identical payloads for an open incident (a repeat, not a redelivery).
    """
    bare = cli("render", str(example)).json()
    wrapped_file = write(tmp_path / f"wrapped-{example.name}", wrap(example.read_bytes()))

    wrapped = cli("render", str(wrapped_file)).json()

    if example.stem.startswith("monitoring"):
        assert wrapped["event"].pop("event_id") != bare["event"].pop("event_id")
        wrapped, bare = _without_ids(wrapped), _without_ids(bare)
    assert wrapped == bare


def _without_ids(rendered: dict[str, Any]) -> dict[str, Any]:
    """The rendered output with every occurrence of the event id blanked (footer, metadata)."""
    text = json.dumps(rendered)
    for delivery in rendered["deliveries"]:
        event_id = delivery["request"]["metadata"]["event_payload"]["event_id"]
        text = text.replace(event_id, "ID").replace(event_id[:12], "ID")
    return json.loads(text)


def test_render_with_custom_routes_shows_every_sink_request(cli, tmp_path: Path) -> None:
    """render --routes FILE plans by that file: Slack, Pub/Sub and webhook requests, nothing sent."""
    routes = write(tmp_path / "routes.yaml", CUSTOM_ROUTES)

    rendered = cli("render", "--routes", str(routes), str(EXAMPLES / "argo_failed.json")).json()

    deliveries = {d["kind"]: d for d in rendered["deliveries"]}
    assert {d["route"] for d in rendered["deliveries"]} == {"speech-failures"}
    assert set(deliveries) == {"slack.chat.postMessage", "pubsub.publish", "webhook.post"}
    assert deliveries["slack.chat.postMessage"]["request"]["channel"] == "#ops"
    publish = deliveries["pubsub.publish"]["request"]
    assert publish["topic"] == "projects/local-project/topics/alerts-out"
    assert publish["data"] == rendered["event"]
    hook = deliveries["webhook.post"]["request"]
    assert (hook["method"], hook["url"]) == ("POST", "https://audit.example.com/relay")
    assert hook["headers"]["Idempotency-Key"] == rendered["event"]["event_id"]


def test_render_with_routes_naming_a_webhook_secret_works_when_the_secret_is_set(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed webhook renders (signature as a placeholder) when its secret_env variable is set."""
    monkeypatch.setenv("HOOK_SECRET", "whsec-render-test")
    routes = write(
        tmp_path / "routes.yaml",
        "version: 1\n"
        'receivers: {hook: {webhook: [{url: "https://h.example.com/x", secret_env: HOOK_SECRET}]}}\n'
        "routes: []\ndefault: {receivers: [hook]}\n",
    )

    result = cli("render", "--routes", str(routes), str(EXAMPLES / "argo_failed.json"))

    assert result.code == 0, result.err
    (delivery,) = result.json()["deliveries"]
    assert delivery["request"]["headers"]["X-Alert-Relay-Signature"].startswith("v1=<")
    assert "whsec-render-test" not in result.out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "malformed.txt"),
        ({"hello": "world"}, "cannot tell the source"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ("missing", "cannot read"),
    ],
    ids=["malformed-json", "unknown-shape-json", "empty-file", "json-array", "missing-file"],
)
def test_render_of_unusable_input_exits_2_with_one_line_naming_the_problem(
    tmp_path: Path, content: Any, problem: str
) -> None:
    """Unusable input: exit 2, nothing on stdout, exactly one 'alert-relay: ...' line on stderr."""
    if content is None:
        path = EXAMPLES / "malformed.txt"
        problem = "not valid JSON"
    elif content == "missing":
        path = tmp_path / "does-not-exist.json"
    else:
        path = write(tmp_path / "input.json", content)

    result = console("render", str(path))

    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("alert-relay: ")
    assert problem in lines[0]
    if content == "missing":
        assert str(path) in lines[0]


def test_render_with_an_invalid_routes_file_exits_2_naming_the_key(cli) -> None:
    """A routes file with a bad matcher: exit 2, one stderr line naming the offending key."""
    bad = ROOT / "tests" / "data" / "routes" / "config.bad-matcher.yaml"

    result = cli("render", "--routes", str(bad), str(EXAMPLES / "argo_failed.json"))

    assert (result.code, result.out) == (2, "")
    assert result.err.count("\n") == 1
    assert result.err.startswith("alert-relay: ")
    assert "routes[0].matchers" in result.err


# -- routes test ------------------------------------------------------------------------------------


def test_routes_test_explains_matches_with_marks_receivers_and_targets(cli, tmp_path: Path) -> None:
    """routes test names each route, marks each matcher ✓/✗, and lists what it delivers to."""
    routes = write(tmp_path / "routes.yaml", CUSTOM_ROUTES)

    result = cli("routes", "test", "--routes", str(routes), str(EXAMPLES / "argo_failed.json"))

    assert (result.code, result.err) == (0, "")
    out = result.out
    assert out.startswith("event ba4dcbd44d3bd239c1ce78250c38557f: source=argo status=firing severity=error")
    assert 'team="speech"' in out.splitlines()[1]  # the labels line
    assert 'route speech-failures: MATCH: ✓ team="speech"' in out
    assert '✓ status="firing"' in out
    assert "-> receivers ops, audit" in out
    assert "route platform-only: not evaluated" in out
    assert "default route: not used" in out
    targets = out.split("delivers to:\n", 1)[1].splitlines()
    assert targets == [
        "  ops/slack:#ops (slack.chat.postMessage) via route speech-failures, receiver ops",
        "  ops/pubsub:projects/local-project/topics/alerts-out (pubsub.publish) via route speech-failures, "
        "receiver ops",
        "  audit/webhook:audit.example.com#" + targets[2].split("#", 1)[1],
    ]
    assert targets[2].endswith("(webhook.post) via route speech-failures, receiver audit")


def test_routes_test_shows_failed_matchers_and_the_default_route(cli, tmp_path: Path) -> None:
    """An event no route matches: ✗ on the failing matcher, and the default route is used."""
    routes = write(tmp_path / "routes.yaml", CUSTOM_ROUTES)

    result = cli("routes", "test", "--routes", str(routes), str(EXAMPLES / "argo_succeeded.json"))

    assert result.code == 0
    assert 'route speech-failures: no match: ✓ team="speech"' in result.out
    assert '✗ status="firing"' in result.out
    assert 'route platform-only: no match: ✗ team="platform"' in result.out
    assert "delivers to:\n  ops/slack:#ops" in result.out
    assert "receiver ops" in result.out


# -- schema -----------------------------------------------------------------------------------------


def _validate_against(schema: dict[str, Any], event: dict[str, Any]) -> None:
    try:
        import jsonschema
    except ImportError:  # not installed here: check the shape by hand and by the model itself
        assert set(schema["required"]) <= set(event), "required properties missing"
        assert set(event) <= set(schema["properties"]), "properties not in the schema"
        AlertEvent.model_validate(event)
    else:
        jsonschema.validators.validator_for(schema)(schema).validate(event)


def test_schema_prints_the_event_json_schema_every_example_validates_against(cli) -> None:
    """schema prints a 2020-12 JSON Schema; every example's rendered event validates against it."""
    result = cli("schema")

    assert (result.code, result.err) == (0, "")
    schema = result.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    for name in ("event_id", "fingerprint", "status", "source", "severity", "title", "labels"):
        assert name in schema["properties"], name
    assert {"event_id", "fingerprint", "status"} <= set(schema["required"])
    for example in EXAMPLE_EVENTS:
        _validate_against(schema, cli("render", str(example)).json()["event"])


# -- trace ------------------------------------------------------------------------------------------


@pytest.fixture
def ledger_with_history(tmp_path: Path, slack_server: FakeSlackServer) -> tuple[str, str, str]:
    """A SQLite ledger after one Argo failure was delivered and one malformed message dead-lettered.

    Returns (ledger URL, the delivered event id, the dead-lettered message id).
    """
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    settings = load_settings(
        relay_ledger=url, slack_bot_token=slack_server.token, slack_api_url=slack_server.api_url
    )
    relay = build_relay(settings, clock=FakeClock().now)
    try:
        delivered = relay.handle(
            decode(
                json.dumps(
                    push_envelope((EXAMPLES / "argo_failed.json").read_bytes(), message_id="m-1")
                ).encode()
            )
        )
        malformed = relay.handle(
            decode(
                json.dumps(
                    push_envelope((EXAMPLES / "malformed.txt").read_bytes(), message_id="m-2")
                ).encode()
            )
        )
    finally:
        relay.ledger.close()
    assert delivered.summary == "delivered"
    assert malformed.summary == "dead_lettered"
    assert delivered.event is not None
    return url, delivered.event.event_id, "m-2"


def test_trace_prints_received_delivered_and_handled_lines(cli, ledger_with_history) -> None:
    """trace EVENT_ID --ledger URL tells the event's fate line by line."""
    url, event_id, _ = ledger_with_history

    result = cli("trace", event_id, "--ledger", url)

    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines[0] == "2026-05-02T09:00:00+00:00 received (argo firing via push message m-1)"
    assert lines[1].startswith(
        "2026-05-02T09:00:00+00:00 delivered route=workflow-failures sink=alerts/slack:#alerts "
        "(channel=C0ALERTS, ts="
    )
    assert lines[2] == "2026-05-02T09:00:00+00:00 handled (ack: delivered)"
    assert len(lines) == 3


def test_trace_reads_the_ledger_from_relay_ledger_when_not_given(
    cli, ledger_with_history, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --ledger, trace reads RELAY_LEDGER."""
    url, event_id, _ = ledger_with_history
    monkeypatch.setenv("RELAY_LEDGER", url)

    result = cli("trace", event_id)

    assert result.code == 0
    assert " delivered " in result.out


def test_trace_of_a_dead_lettered_message_id_shows_the_reason(cli, ledger_with_history) -> None:
    """trace MESSAGE_ID finds a message that never became an event, with its dead-letter reason."""
    url, _, message_id = ledger_with_history

    result = cli("trace", message_id, "--ledger", url)

    assert result.code == 0
    first, second = result.out.splitlines()
    assert " dead_lettered reason=malformed_payload (message data is not valid JSON" in first
    assert first.endswith("-> ledger)")
    assert second.endswith("handled (ack: dead_lettered)")


def test_trace_of_an_unknown_id_exits_1(cli, ledger_with_history) -> None:
    """An id the ledger never saw: exit 1, stdout empty, stderr says so."""
    url, _, _ = ledger_with_history

    result = cli("trace", "no-such-event", "--ledger", url)

    assert (result.code, result.out) == (1, "")
    assert result.err.strip() == f"no record of no-such-event in {url}"


# -- local run ----------------------------------------------------------------------------------------


def test_local_run_without_emulator_reports_each_events_fate(cli, tmp_path: Path) -> None:
    """alert-relay local --no-emulator feeds the examples and reads every fate back from the ledger."""
    state = tmp_path / "state"
    # One "delivered to" line per planned delivery of each distinct example event: with the bundled
    # routes 6 (a prod-critical incident goes to #platform and #alerts, both when opened and closed).
    planned = sum(len(cli("render", str(example)).json()["deliveries"]) for example in EXAMPLE_EVENTS)
    assert planned == 6

    result = console("local", "--no-emulator", "--state-dir", str(state), cwd=tmp_path, timeout=120)

    assert result.code == 0, result.err
    out = result.out
    assert "What became of each event" in out
    fates = out.split("What became of each event", 1)[1].splitlines()
    assert sum(1 for line in fates if line.strip().startswith("delivered to")) == planned
    assert sum(1 for line in fates if line.strip().startswith("already delivered to")) == 1
    assert sum(1 for line in fates if line.strip().startswith("dead lettered reason=malformed_payload")) == 1
    assert "Dead letters kept in the local ledger: 1" in out
    assert (state / "ledger.sqlite3").is_file()
