"""The deployed entry point: the real functions-framework app serving functions/relay/main.py.

Every test builds a fresh app with ``functions_framework.create_app``; it executes main.py into a
new module object each time, so the lazily created relay (a module global) reads that test's env.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import functions_framework
import pytest

from shared.envelope import PUBSUB_CLOUDEVENT_TYPE, push_envelope
from shared.ledger.sqlite import SqliteLedger
from tests.fakes.http import Respond
from tests.fakes.slack_server import FakeSlackServer

ROOT = Path(__file__).resolve().parents[1]
RELAY_SOURCE = ROOT / "functions" / "relay" / "main.py"
EXAMPLES = ROOT / "examples" / "events"
ROUTES_DATA = Path(__file__).parent / "data" / "routes"

ARGO_FAILED = (EXAMPLES / "argo_failed.json").read_bytes()
SUBSCRIPTION = "projects/local-project/subscriptions/alert-relay-push"
TOPIC_SOURCE = "//pubsub.googleapis.com/projects/local-project/topics/alerts"
PUBLISH_TIME = "2026-05-02T09:42:00.123Z"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def as_body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


@dataclass
class RelayFunction:
    """One functions-framework app (one 'instance') plus a reader on the SQLite ledger it uses."""

    client: Any
    module: ModuleType
    ledger_path: Path
    _reader: SqliteLedger | None = None

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> Answer:
        response = self.client.post("/", data=body, headers=headers or {}, content_type=content_type)
        return Answer(response.status_code, json.loads(response.get_data(as_text=True)))

    def push(self, payload: bytes, **envelope: Any) -> Answer:
        return self.post(as_body(push_envelope(payload, **envelope)))

    def ledger(self) -> SqliteLedger:
        """A second connection on the relay's SQLite file (WAL: sees every committed write)."""
        if self._reader is None:
            self._reader = SqliteLedger(self.ledger_path)
        return self._reader

    def close(self) -> None:
        instance = getattr(self.module, "_relay", None)  # main.py's lazily created relay, if any
        if instance is not None:
            instance.ledger.close()
        if self._reader is not None:
            self._reader.close()


@pytest.fixture
def relay_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack_server: FakeSlackServer) -> Path:
    """The env the relay reads on its first request; returns the ledger file."""
    ledger_path = tmp_path / "l.sqlite3"
    monkeypatch.setenv("RELAY_LEDGER", f"sqlite:///{ledger_path}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_server.token)
    monkeypatch.setenv("SLACK_API_URL", slack_server.api_url)
    return ledger_path


@pytest.fixture
def make_function(relay_env: Path) -> Iterator[Callable[[], RelayFunction]]:
    """Build a fresh functions-framework app (main.py executed anew) from the current env."""
    built: list[RelayFunction] = []

    def make() -> RelayFunction:
        app = functions_framework.create_app(target="relay", source=str(RELAY_SOURCE), signature_type="http")
        module = sys.modules["main"]  # create_app registers the freshly executed module under its name
        ledger_url = os.environ.get("RELAY_LEDGER", "")
        path = (
            Path(ledger_url.removeprefix("sqlite:///")) if ledger_url.startswith("sqlite:///") else relay_env
        )
        function = RelayFunction(app.test_client(), module, path)
        built.append(function)
        return function

    yield make
    for function in built:
        function.close()


@pytest.fixture
def function(make_function: Callable[[], RelayFunction]) -> RelayFunction:
    return make_function()


def write_routes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- delivered: every inbound shape the relay accepts -------------------------------------------


def _binary_cloudevent(message: dict[str, Any], ce_id: str) -> tuple[bytes, dict[str, str]]:
    headers = {
        "ce-id": ce_id,
        "ce-source": TOPIC_SOURCE,
        "ce-specversion": "1.0",
        "ce-type": PUBSUB_CLOUDEVENT_TYPE,
        "ce-time": PUBLISH_TIME,
    }
    return as_body({"message": message, "subscription": SUBSCRIPTION}), headers


def _structured_cloudevent(message: dict[str, Any], ce_id: str) -> bytes:
    return as_body(
        {
            "specversion": "1.0",
            "type": PUBSUB_CLOUDEVENT_TYPE,
            "source": TOPIC_SOURCE,
            "id": ce_id,
            "time": PUBLISH_TIME,
            "datacontenttype": "application/json",
            "data": {"message": message, "subscription": SUBSCRIPTION},
        }
    )


@dataclass(frozen=True)
class Accepted:
    body: bytes
    headers: dict[str, str]
    content_type: str
    message_id: str
    transport: str
    attempt: int | None


ACCEPTED = {
    "push-envelope": Accepted(
        as_body(push_envelope(ARGO_FAILED, message_id="push-1")),
        {},
        "application/json",
        "push-1",
        "push",
        None,
    ),
    "push-envelope-with-delivery-attempt": Accepted(
        as_body(push_envelope(ARGO_FAILED, message_id="push-2", delivery_attempt=3)),
        {},
        "application/json",
        "push-2",
        "push",
        3,
    ),
    "push-envelope-snake-case-ids-only": Accepted(
        as_body(
            {
                "message": {
                    "data": b64(ARGO_FAILED),
                    "attributes": {},
                    "message_id": "snake-1",
                    "publish_time": PUBLISH_TIME,
                },
                "subscription": SUBSCRIPTION,
            }
        ),
        {},
        "application/json",
        "snake-1",
        "push",
        None,
    ),
    "push-envelope-without-attributes": Accepted(
        as_body(
            {"message": {"data": b64(ARGO_FAILED), "messageId": "no-attrs-1"}, "subscription": SUBSCRIPTION}
        ),
        {},
        "application/json",
        "no-attrs-1",
        "push",
        None,
    ),
    "eventarc-binary-cloudevent": Accepted(
        *_binary_cloudevent(
            {"data": b64(ARGO_FAILED), "messageId": "ce-bin-1", "publishTime": PUBLISH_TIME}, "ce-bin-1"
        ),
        "application/json",
        "ce-bin-1",
        "cloudevent",
        None,
    ),
    "binary-cloudevent-message-id-from-ce-id": Accepted(
        *_binary_cloudevent({"data": b64(ARGO_FAILED)}, "ce-bin-2"),
        "application/json",
        "ce-bin-2",
        "cloudevent",
        None,
    ),
    "structured-cloudevent": Accepted(
        _structured_cloudevent({"data": b64(ARGO_FAILED), "messageId": "ce-str-1"}, "ce-str-1"),
        {},
        "application/cloudevents+json",
        "ce-str-1",
        "cloudevent",
        None,
    ),
}


@pytest.mark.parametrize("case", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_shape_posts_argo_failure_once_to_alerts(
    function: RelayFunction, slack_server: FakeSlackServer, case: Accepted
) -> None:
    """Each accepted inbound shape is acked with 200 and posts the failure once in #alerts."""
    answer = function.post(case.body, case.headers, case.content_type)

    assert answer.status == 200, answer.body
    assert answer.body["outcome"] == "delivered"
    assert answer.body["disposition"] == "ack"
    assert [d["fate"] for d in answer.body["deliveries"]] == ["delivered"]
    posts = slack_server.posts
    assert [p.channel for p in posts] == ["C0ALERTS"]
    assert "asr-nightly-7xk2p" in posts[0].text
    received = next(e for e in function.ledger().trace(answer.body["event_id"]) if e.outcome == "received")
    assert received.detail.endswith(f"via {case.transport} message {case.message_id}")
    assert received.attempt == case.attempt


def test_redelivered_envelope_is_acked_without_a_second_post(
    function: RelayFunction, slack_server: FakeSlackServer
) -> None:
    """The same push envelope twice: both acked with 200, Slack gets exactly one post."""
    first = function.push(ARGO_FAILED, message_id="dup-1")
    second = function.push(ARGO_FAILED, message_id="dup-1", delivery_attempt=2)

    assert (first.status, second.status) == (200, 200)
    assert first.body["deliveries"][0]["fate"] == "delivered"
    assert second.body["deliveries"][0]["fate"] == "already_delivered"
    assert second.body["deliveries"][0]["receipt"] == first.body["deliveries"][0]["receipt"]
    assert len(slack_server.posts_in("C0ALERTS")) == 1
    assert len(slack_server.calls_to("chat.postMessage")) == 1


def test_each_app_builds_its_own_relay_from_the_current_env(
    make_function: Callable[[], RelayFunction],
    slack_server: FakeSlackServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """create_app executes main.py afresh: a second app uses the env it was built under."""
    first = make_function()
    event_id = first.push(ARGO_FAILED).body["event_id"]

    monkeypatch.setenv("RELAY_LEDGER", f"sqlite:///{tmp_path / 'other.sqlite3'}")
    second = make_function()

    assert second.module is not first.module
    assert second.push(ARGO_FAILED).body["deliveries"][0]["fate"] == "delivered"  # its own, empty ledger
    assert first.push(ARGO_FAILED).body["deliveries"][0]["fate"] == "already_delivered"  # still the first
    assert len(slack_server.posts_in("C0ALERTS")) == 2
    assert [e.outcome for e in second.ledger().trace(event_id)] == ["received", "delivered", "handled"]


# -- dead-lettered: what can never be delivered is acked with its reason ------------------------


@dataclass(frozen=True)
class Rejected:
    body: bytes
    headers: dict[str, str]
    content_type: str
    reason: str
    detail: str


OTHER_TYPE = "google.cloud.storage.object.v1.finalized"
REJECTED = {
    "binary-cloudevent-of-another-type": Rejected(
        as_body({"bucket": "b", "name": "o"}),
        {
            "ce-id": "gcs-1",
            "ce-source": "//storage.googleapis.com/b",
            "ce-specversion": "1.0",
            "ce-type": OTHER_TYPE,
        },
        "application/json",
        "malformed_envelope",
        OTHER_TYPE,
    ),
    "structured-cloudevent-of-another-type": Rejected(
        as_body({"specversion": "1.0", "type": OTHER_TYPE, "source": "//storage", "id": "gcs-2", "data": {}}),
        {},
        "application/cloudevents+json",
        "malformed_envelope",
        OTHER_TYPE,
    ),
    "non-json-body": Rejected(
        b"this is not json {", {}, "text/plain", "malformed_envelope", "not valid JSON"
    ),
    "json-array-body": Rejected(b"[1, 2, 3]", {}, "application/json", "malformed_envelope", "JSON object"),
    "base64-garbage-in-data": Rejected(
        as_body(
            {
                "message": {"data": "%%% not base64 %%%", "messageId": "garbage-1"},
                "subscription": SUBSCRIPTION,
            }
        ),
        {},
        "application/json",
        "malformed_envelope",
        "not valid base64",
    ),
}


@pytest.mark.parametrize("case", REJECTED.values(), ids=REJECTED.keys())
def test_unreadable_request_is_acked_and_dead_lettered_with_its_reason(
    function: RelayFunction, slack_server: FakeSlackServer, case: Rejected
) -> None:
    """A body that is no readable message: 200 (acked), dead-lettered with the reason, nothing posted."""
    answer = function.post(case.body, case.headers, case.content_type)

    assert answer.status == 200, answer.body
    assert answer.body["outcome"] == "dead_lettered"
    assert answer.body["reason"] == case.reason
    assert case.detail in answer.body["detail"]
    (record,) = function.ledger().dead_letters()
    assert record.reason == case.reason
    assert record.data == case.body  # the whole request body is kept for inspection
    assert slack_server.calls == []


def test_message_data_that_is_not_json_is_dead_lettered_with_the_raw_data(
    function: RelayFunction, slack_server: FakeSlackServer
) -> None:
    """Readable envelope, unreadable payload: 200, reason malformed_payload, the raw data kept."""
    raw = (EXAMPLES / "malformed.txt").read_bytes()
    answer = function.push(raw, message_id="bad-1", attributes={"origin": "argo-exit-handler"})

    assert answer.status == 200
    assert answer.body["outcome"] == "dead_lettered"
    assert answer.body["reason"] == "malformed_payload"
    assert "not valid JSON" in answer.body["detail"]
    ledger = function.ledger()
    (record,) = ledger.dead_letters()
    assert (record.key, record.reason, record.data) == ("bad-1", "malformed_payload", raw)
    assert record.attributes == {"origin": "argo-exit-handler"}
    assert [e.outcome for e in ledger.trace("message:bad-1")] == ["dead_lettered", "handled"]
    assert slack_server.calls == []


# -- Slack failures --------------------------------------------------------------------------------


def test_slack_500_twice_answers_503_so_pubsub_retries(
    function: RelayFunction, slack_server: FakeSlackServer
) -> None:
    """Slack 500 on the call and its one in-request retry: 503 with outcome retry, reason server_error."""
    slack_server.script("chat.postMessage", [Respond(status=500), Respond(status=500)])

    answer = function.push(ARGO_FAILED, message_id="outage-1", delivery_attempt=1)

    assert answer.status == 503
    assert answer.body["outcome"] == "retry"
    assert answer.body["disposition"] == "nack"
    assert answer.body["reason"] == "server_error"
    assert answer.body["deliveries"][0]["retryable"] is True
    assert len(slack_server.calls_to("chat.postMessage")) == 2
    assert slack_server.posts == []
    assert function.ledger().dead_letters() == []

    redelivered = function.push(ARGO_FAILED, message_id="outage-1", delivery_attempt=2)
    assert redelivered.status == 200
    assert redelivered.body["deliveries"][0]["fate"] == "delivered"
    assert len(slack_server.posts_in("C0ALERTS")) == 1


def test_slack_channel_not_found_is_dead_lettered_as_channel_error(
    function: RelayFunction, slack_server: FakeSlackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A channel Slack does not know can never succeed: 200, dead-lettered with reason channel_error."""
    routes = write_routes(
        tmp_path,
        'version: 1\nreceivers: {gone: {slack: [{channel: "#no-such-channel"}]}}\n'
        "routes: []\ndefault: {receivers: [gone]}\n",
    )
    monkeypatch.setenv("RELAY_ROUTES", str(routes))

    answer = function.push(ARGO_FAILED, message_id="gone-1")

    assert answer.status == 200
    assert answer.body["outcome"] == "dead_lettered"
    assert answer.body["reason"] == "channel_error"
    assert "channel_not_found" in answer.body["detail"]
    (record,) = function.ledger().dead_letters()
    assert (record.key, record.reason, record.event_id) == (
        "gone-1",
        "channel_error",
        answer.body["event_id"],
    )
    assert slack_server.posts == []


# -- configuration errors: never ack, so Pub/Sub keeps the message until a fixed deploy ----------


CONFIG_ERRORS = {
    "routes-file-with-a-bad-matcher": (
        "RELAY_ROUTES",
        str(ROUTES_DATA / "config.bad-matcher.yaml"),
        "routes[0].matchers",
    ),
    "routes-file-missing": ("RELAY_ROUTES", str(ROUTES_DATA / "does-not-exist.yaml"), "RELAY_ROUTES"),
    "routes-file-not-yaml": ("RELAY_ROUTES", str(ROUTES_DATA / "config.not-yaml.yaml"), "not valid YAML"),
    "ledger-url-bogus": ("RELAY_LEDGER", "bogus", "RELAY_LEDGER"),
}


@pytest.mark.parametrize(("var", "value", "named"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_configuration_error_answers_500_naming_the_problem(
    function: RelayFunction,
    slack_server: FakeSlackServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    var: str,
    value: str,
    named: str,
) -> None:
    """Bad configuration: 500 (retry, never ack), reason config_error, the body names the problem."""
    monkeypatch.setenv(var, value)

    answer = function.push(ARGO_FAILED)

    assert answer.status == 500
    assert answer.body["outcome"] == "retry"
    assert answer.body["reason"] == "config_error"
    assert named in answer.body["detail"]
    assert slack_server.calls == []
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(e["severity"] == "CRITICAL" and e.get("reason") == "config_error" for e in logged)


# -- Cloud Monitoring --------------------------------------------------------------------------------


def test_monitoring_incident_open_then_closed_posts_twice(
    function: RelayFunction, slack_server: FakeSlackServer
) -> None:
    """An incident opening then closing: two posts in #alerts (and, being prod-critical, in #platform)."""
    opened = function.push((EXAMPLES / "monitoring_open.json").read_bytes(), message_id="gcm-1")
    closed = function.push((EXAMPLES / "monitoring_closed.json").read_bytes(), message_id="gcm-2")

    assert (opened.status, closed.status) == (200, 200)
    assert opened.body["event_id"] != closed.body["event_id"]
    assert opened.body["fingerprint"] == closed.body["fingerprint"]
    alerts = slack_server.posts_in("#alerts")
    assert len(alerts) == 2
    assert alerts[0].text != alerts[1].text
    assert len(slack_server.posts_in("#platform")) == 2
