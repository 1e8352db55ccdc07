"""The ingest function through the real functions-framework app: every answer it can give."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from localdev.emulators import PROJECT, unique_name

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "functions" / "ingest" / "main.py"
EXAMPLES = ROOT / "examples" / "events"

TOKEN = "ingest-bearer-token-1"
MONITORING_TOKEN = "monitoring-token-2"
USER, PASSWORD = "monitoring", "basic-password-3"

ALERTMANAGER_GROUP = {
    "version": "4",
    "groupKey": '{}:{alertname="ArgoWorkflowFailed"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "alert-relay",
    "groupLabels": {"alertname": "ArgoWorkflowFailed"},
    "commonLabels": {"alertname": "ArgoWorkflowFailed", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ArgoWorkflowFailed", "severity": "critical", "namespace": f"ml-{n}"},
            "annotations": {"summary": f"workflow failed in ml-{n}"},
            "startsAt": "2026-05-02T09:41:07.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=x",
            "fingerprint": f"c0ffee{n}",
        }
        for n in range(3)
    ],
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Any:
    def apply(topic: str = f"projects/{PROJECT}/topics/alerts", **extra: str) -> Any:
        env = {
            "RELAY_ALERTS_TOPIC": topic,
            "INGEST_TOKEN": TOKEN,
            "INGEST_MONITORING_TOKEN": MONITORING_TOKEN,
            "INGEST_BASIC_USER": USER,
            "INGEST_BASIC_PASSWORD": PASSWORD,
            "RELAY_HTTP_TIMEOUT": "2",
            **extra,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return create_app(target="ingest", source=str(SOURCE), signature_type="http").test_client()

    return apply


@pytest.fixture
def topic(pubsub_env: str) -> Iterator[tuple[str, str]]:
    """A fresh topic with a pull subscription on the emulator."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = publisher.create_topic(name=publisher.topic_path(PROJECT, unique_name("alerts"))).name
    sub = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, unique_name("s")), topic=name
    ).name
    yield name, sub
    subscriber.delete_subscription(subscription=sub)


def pulled(subscription: str, expected: int) -> list[Any]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    messages: list[Any] = []
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
        messages += response.received_messages
        if len(messages) >= expected:
            break
    return messages


class TestCredentials:
    @pytest.mark.parametrize(
        ("headers", "query"),
        [
            ({}, ""),
            ({"Authorization": "Bearer wrong"}, ""),
            ({"Authorization": f"Bearer {TOKEN}x"}, ""),
            ({"Authorization": basic(USER, "wrong")}, ""),
            ({"Authorization": basic("someone", PASSWORD)}, ""),
            ({"Authorization": "Basic !!!not-base64"}, ""),
            ({}, "?auth_token=wrong"),
            ({}, f"?auth_token={TOKEN}"),  # the bearer token is not the monitoring token
        ],
        ids=[
            "missing",
            "wrong-bearer",
            "bearer-prefix-match",
            "wrong-password",
            "wrong-user",
            "garbled-basic",
            "wrong-query-token",
            "bearer-token-in-query",
        ],
    )
    def test_bad_or_missing_credentials_get_401_without_detail(
        self, configure: Any, headers: dict[str, str], query: str
    ) -> None:
        """Forged or missing credentials: 401 and nothing about any secret in the answer."""
        client = configure()
        response = client.post(
            "/" + query, data=(EXAMPLES / "monitoring_open.json").read_bytes(), headers=headers
        )
        assert response.status_code == 401
        text = response.get_data(as_text=True) + json.dumps(dict(response.headers))
        for secret in (TOKEN, MONITORING_TOKEN, PASSWORD):
            assert secret not in text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_no_credentials_configured_refuses_to_run(
        self, configure: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An ingest function without any secret never accepts anything: 500, a configuration error."""
        configure()  # the topic and the other settings; then every credential is removed
        for name in ("INGEST_TOKEN", "INGEST_MONITORING_TOKEN", "INGEST_BASIC_USER", "INGEST_BASIC_PASSWORD"):
            monkeypatch.delenv(name)
        client = create_app(target="ingest", source=str(SOURCE), signature_type="http").test_client()
        response = client.post("/", data=b"{}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (response.status_code, response.get_json()) == (500, {"error": "config_error"})


class TestRequests:
    AUTH: dict[str, str] = {"Authorization": f"Bearer {TOKEN}"}

    def test_non_post_is_405(self, configure: Any) -> None:
        """Only POST is accepted."""
        assert configure().get("/", headers=self.AUTH).status_code == 405

    def test_oversized_body_is_413(self, configure: Any) -> None:
        """A body over the limit is refused before it is parsed."""
        client = configure(INGEST_MAX_BODY_BYTES="2048")
        response = client.post("/", data=b"{" + b" " * 4096 + b"}", headers=self.AUTH)
        assert response.status_code == 413

    @pytest.mark.parametrize(
        ("body", "reason", "words"),
        [
            (b"{not json", "malformed_payload", "not valid JSON"),
            (b"[]", "malformed_payload", "must be a JSON object"),
            (b'{"hello": 1}', "unknown_source", "cannot tell the source"),
            (b'{"incident": {"state": "open"}}', "malformed_payload", "incident_id"),
            (b'{"version": "4", "groupKey": "g", "alerts": []}', "malformed_payload", "no alerts"),
            (
                b'{"version": "4", "groupKey": "g", "alerts": [{"status": "firing"}]}',
                "malformed_payload",
                "labels",
            ),
        ],
        ids=[
            "not-json",
            "not-object",
            "unknown",
            "incident-without-id",
            "empty-group",
            "alert-without-labels",
        ],
    )
    def test_invalid_payload_is_400_with_the_reason(
        self, configure: Any, body: bytes, reason: str, words: str
    ) -> None:
        """The sender learns what is wrong; nothing is published."""
        response = configure().post("/", data=body, headers=self.AUTH)
        assert response.status_code == 400
        answer = response.get_json()
        assert answer["error"] == reason
        assert words in answer["detail"]

    def test_pubsub_unavailable_is_503_so_the_sender_retries(self, configure: Any) -> None:
        """With Pub/Sub unreachable the answer is 503 with Retry-After, never 200."""
        client = configure(PUBSUB_EMULATOR_HOST="127.0.0.1:9")
        response = client.post("/", data=(EXAMPLES / "monitoring_open.json").read_bytes(), headers=self.AUTH)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"


@pytest.mark.emulator
class TestPublishing:
    @pytest.mark.parametrize(
        ("headers", "query"),
        [
            ({"Authorization": f"Bearer {TOKEN}"}, ""),
            ({}, f"?auth_token={MONITORING_TOKEN}"),
            ({"Authorization": basic(USER, PASSWORD)}, ""),
        ],
        ids=["bearer", "monitoring-token", "basic"],
    )
    def test_monitoring_webhook_is_published_after_pubsub_accepts(
        self, configure: Any, topic: tuple[str, str], pubsub_env: str, headers: dict[str, str], query: str
    ) -> None:
        """A Cloud Monitoring notification is published as is, with its source attribute, then 200."""
        name, sub = topic
        data = (EXAMPLES / "monitoring_open.json").read_bytes()
        response = configure(topic=name, PUBSUB_EMULATOR_HOST=pubsub_env).post(
            "/" + query, data=data, headers=headers
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["accepted"] == 1
        [message] = pulled(sub, 1)
        assert json.loads(message.message.data) == json.loads(data)
        assert message.message.attributes["source"] == "cloud_monitoring"

    def test_alertmanager_group_becomes_one_message_per_alert(
        self, configure: Any, topic: tuple[str, str], pubsub_env: str
    ) -> None:
        """Three alerts in one notification: three messages, each a single-alert payload."""
        name, sub = topic
        client = configure(topic=name, PUBSUB_EMULATOR_HOST=pubsub_env)
        response = client.post("/", json=ALERTMANAGER_GROUP, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["accepted"] == 3
        messages = pulled(sub, 3)
        alerts = sorted(json.loads(m.message.data)["alert"]["fingerprint"] for m in messages)
        assert alerts == ["c0ffee0", "c0ffee1", "c0ffee2"]
        assert {m.message.attributes["source"] for m in messages} == {"alertmanager"}

    def test_publisher_event_is_accepted_with_the_bearer_token(
        self, configure: Any, topic: tuple[str, str], pubsub_env: str
    ) -> None:
        """The publisher's fallback path: a compact Argo event with its event id attribute."""
        name, sub = topic
        data = (EXAMPLES / "argo_failed.json").read_bytes()
        client = configure(topic=name, PUBSUB_EMULATOR_HOST=pubsub_env)
        response = client.post("/", data=data, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        [message] = pulled(sub, 1)
        assert message.message.attributes["event_id"] == response.get_json()["event_ids"][0]
