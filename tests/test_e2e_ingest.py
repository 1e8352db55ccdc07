"""End to end through the ingest function and the publisher: sender -> ingest or publish -> topic ->
push subscription -> relay -> fake Slack, on Google's Pub/Sub emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localdev.local import serve_ingest
from shared.publisher import PubSubPath, WorkflowVars, build_payload, publish
from tests.fakes.pubsub_pipeline import Pipeline, poll
from tests.fakes.slack_server import FakeSlackServer
from tests.test_ingest import ALERTMANAGER_GROUP

pytestmark = pytest.mark.emulator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "events"
TOKEN = "e2e-ingest-token"


@pytest.fixture
def ingest_url(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RELAY_ALERTS_TOPIC", pipeline.topic)
    monkeypatch.setenv("INGEST_TOKEN", TOKEN)
    monkeypatch.setenv("INGEST_MONITORING_TOKEN", TOKEN)
    with serve_ingest() as url:
        yield url


def post(url: str, body: bytes, **headers: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_cloud_monitoring_webhook_reaches_slack(ingest_url: str, slack_server: FakeSlackServer) -> None:
    """webhook_tokenauth -> ingest -> topic -> relay -> one message per routed channel."""
    status = post(f"{ingest_url}?auth_token={TOKEN}", (EXAMPLES / "monitoring_open.json").read_bytes())
    assert status == 200
    posts = poll(lambda: slack_server.posts, lambda p: len(p) >= 2, "two Slack posts")
    assert sorted(p.channel for p in posts) == ["C0ALERTS", "C0PLATFORM"]


def test_alertmanager_webhook_reaches_slack_once_per_alert(
    ingest_url: str, slack_server: FakeSlackServer
) -> None:
    """An Alertmanager group of three alerts becomes three Slack messages."""
    status = post(ingest_url, json.dumps(ALERTMANAGER_GROUP).encode(), Authorization=f"Bearer {TOKEN}")
    assert status == 200
    posts = poll(lambda: slack_server.posts, lambda p: len(p) >= 3, "three Slack posts")
    assert len({p.ts for p in posts}) == 3
    assert all("workflow failed in ml-" in json.dumps(p.blocks) for p in posts)


def test_publisher_event_reaches_slack(pipeline: Pipeline, slack_server: FakeSlackServer) -> None:
    """alert-relay publish -> topic -> relay -> Slack, with the failed steps in the message."""
    failures = json.dumps(
        json.dumps(
            [
                {
                    "displayName": "train",
                    "message": "Error (exit code 1)",
                    "templateName": "train",
                    "phase": "Failed",
                    "podName": "p",
                    "finishedAt": "2026-05-02T09:41:07Z",
                }
            ]
        )
    )
    payload = build_payload(
        WorkflowVars(name="asr-abcde", namespace="ml", uid="u", status="Failed", failures=failures)
    )
    result = publish(payload, [PubSubPath(pipeline.topic, deadline=10)])
    assert result.path == "pubsub"
    [post_] = poll(lambda: slack_server.posts, lambda p: len(p) >= 1, "one Slack post")
    assert "Error (exit code 1)" in json.dumps(post_.blocks)
