"""`alert-relay publish`: real workflow.failures shapes, and a fallback chain that cannot lose the event."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localdev.emulators import PROJECT, unique_name
from localdev.local import serve_ingest
from shared.publisher import (
    EXIT_DELIVERED,
    EXIT_UNDELIVERED,
    MARKER_FIELD,
    MARKER_VALUE,
    WorkflowVars,
    build_payload,
    publish,
)
from shared.sources import argo

ROOT = Path(__file__).resolve().parents[1]
DEAD_EMULATOR = "127.0.0.1:9"  # nothing listens there: Pub/Sub is "down"

NODES = [
    {
        "displayName": "etl-x7k2p",
        "message": "child 'etl-x7k2p-1' failed",
        "templateName": "main",
        "phase": "Failed",
        "podName": "etl-x7k2p",
        "finishedAt": "2026-05-02T09:41:09Z",
    },
    {
        "displayName": "[0]",
        "message": "child 'etl-x7k2p-2' failed",
        "templateName": "",
        "phase": "Failed",
        "podName": "etl-x7k2p-main-1",
        "finishedAt": "2026-05-02T09:41:08Z",
    },
    {
        "displayName": "load",
        "message": "Error (exit code 1)",
        "templateName": "load",
        "phase": "Failed",
        "podName": "etl-x7k2p-load-2",
        "finishedAt": "2026-05-02T09:41:07Z",
    },
    {
        "displayName": "extract",
        "message": "OOMKilled (exit code 137)",
        "templateName": "extract",
        "phase": "Error",
        "podName": "etl-x7k2p-extract-3",
        "finishedAt": "2026-05-02T09:40:01Z",
    },
]
ARRAY = json.dumps(NODES, separators=(",", ":"))


def variables(failures: str, status: str = "Failed", **kw: str) -> WorkflowVars:
    base = {
        "name": "etl-x7k2p",
        "namespace": "data",
        "uid": "u-1",
        "status": status,
        "created_at": "2026-05-02T09:30:00Z",
        "duration": "669.000000",
    }
    return WorkflowVars(failures=failures, **{**base, **kw})


class Recording:
    """A path that records what it was given (a fake of the path port, not of our code)."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail, self.sent = name, fail, []

    def send(self, data: bytes, attributes: Any) -> str:
        from shared.publisher import PathFailed

        self.sent.append((data, dict(attributes)))
        if self.fail:
            raise PathFailed(f"{self.name} is down")
        return f"{self.name}-1"


@pytest.mark.parametrize(
    "failures",
    [json.dumps(ARRAY), ARRAY, json.dumps(json.dumps(ARRAY))],
    ids=["go-quoted-as-substituted", "unescaped-by-a-shell", "quoted-twice"],
)
def test_real_failures_shapes_give_leaf_steps_sorted_by_time(failures: str) -> None:
    """However Argo's value reaches the step, the relay sees the leaf failures, oldest first."""
    event = argo.parse(build_payload(variables(failures)))
    assert [s.name for s in event.details.failed_steps] == ["extract", "load"]  # type: ignore[union-attr]


@pytest.mark.parametrize("failures", ['"null"', "null", ""], ids=["quoted-null", "null", "empty"])
def test_no_failures(failures: str) -> None:
    """A succeeded workflow's "null" means no failed steps, not an error."""
    event = argo.parse(build_payload(variables(failures, status="Succeeded")))
    assert event.details.failed_steps == ()  # type: ignore[union-attr]
    assert event.notes == ()


def test_malformed_variables_still_make_an_event_with_notes() -> None:
    """Bad JSON and an unknown status never crash the step: the event carries notes instead."""
    payload = build_payload(variables("[{not json", status="Exploded", labels="{oops", parameters="[1,"))
    event = argo.parse(payload)
    assert event.status.value == "firing"
    assert len(event.notes) >= 3
    assert payload["event_id"] == event.event_id


def test_event_id_is_the_same_on_every_path_and_every_retry() -> None:
    """The id is derived from the run, so a retried step or a second path is counted once."""
    assert build_payload(variables(ARRAY))["event_id"] == build_payload(variables(ARRAY))["event_id"]


def test_first_working_path_wins() -> None:
    """Pub/Sub works: the ingest path is never tried."""
    first, second = Recording("pubsub"), Recording("ingest")
    result = publish(build_payload(variables(ARRAY)), [first, second], out=io.StringIO())
    assert (result.path, result.exit_code) == ("pubsub", EXIT_DELIVERED)
    assert second.sent == []
    assert first.sent[0][1]["source"] == "argo"


def test_falls_back_to_the_next_path() -> None:
    """Pub/Sub down: the same bytes go to the ingest path; exit 0."""
    first, second = Recording("pubsub", fail=True), Recording("ingest")
    result = publish(build_payload(variables(ARRAY)), [first, second], out=io.StringIO())
    assert (result.path, result.exit_code) == ("ingest", EXIT_DELIVERED)
    assert first.sent[0][0] == second.sent[0][0]


def test_every_path_down_leaves_the_whole_event_in_one_error_line() -> None:
    """The last resort: one ERROR line with the marker and the full event; exit non-zero."""
    out = io.StringIO()
    payload = build_payload(variables(ARRAY))
    result = publish(payload, [Recording("pubsub", fail=True), Recording("ingest", fail=True)], out=out)
    assert result.exit_code == EXIT_UNDELIVERED
    errors = [json.loads(line) for line in out.getvalue().splitlines() if '"ERROR"' in line]
    assert len(errors) == 1
    assert errors[0][MARKER_FIELD] == MARKER_VALUE
    assert errors[0]["event"] == payload
    assert errors[0]["errors"] == ["pubsub is down", "ingest is down"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The container's entry point, `python -m shared.cli publish`, in a fresh interpreter."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("ALERT_RELAY_", "PUBSUB_EMULATOR_HOST"))
    }
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "publish", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


ARGS = (
    "--name",
    "etl-x7k2p",
    "--namespace",
    "data",
    "--uid",
    "u-1",
    "--status",
    "Failed",
    "--created-at",
    "2026-05-02T09:30:00Z",
    "--duration",
    "669.000000",
    "--failures",
    json.dumps(ARRAY),
    "--labels",
    '{"team":"data","workflows.argoproj.io/cron-workflow":"etl"}',
    "--parameters",
    "[]",
)


def test_unconfigured_publisher_never_crashes_and_keeps_the_event() -> None:
    """No topic and no ingest URL: the event goes to the log line, exit 1, the reason on stderr."""
    done = run_cli(*ARGS, env={})
    assert done.returncode == EXIT_UNDELIVERED
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line[MARKER_FIELD] == MARKER_VALUE
    assert "ALERT_RELAY_TOPIC or ALERT_RELAY_INGEST_URL" in done.stderr


@pytest.mark.emulator
def test_publishes_to_the_topic(pubsub_env: str) -> None:
    """The normal path: the compact event lands on the alerts topic with routing attributes."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, unique_name("alerts"))).name
    sub = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, unique_name("s")), topic=topic
    ).name
    done = run_cli(*ARGS, env={"ALERT_RELAY_TOPIC": topic, "PUBSUB_EMULATOR_HOST": pubsub_env})
    assert done.returncode == EXIT_DELIVERED, done.stdout + done.stderr
    [received] = subscriber.pull(subscription=sub, max_messages=1, timeout=10).received_messages
    payload = json.loads(received.message.data)
    assert payload["workflow"]["failures"] == json.dumps(ARRAY)
    assert dict(received.message.attributes) == {
        "source": "argo",
        "event_id": payload["event_id"],
        "namespace": "data",
        "workflow": "etl-x7k2p",
        "status": "Failed",
    }


@pytest.mark.emulator
def test_pubsub_down_falls_back_to_ingest(pubsub_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulator unreachable for the publisher: bounded retries, then the ingest function takes it."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, unique_name("alerts"))).name
    sub = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, unique_name("s")), topic=topic
    ).name
    for key, value in {"RELAY_ALERTS_TOPIC": topic, "INGEST_TOKEN": "tok-123"}.items():
        monkeypatch.setenv(key, value)
    with serve_ingest() as url:  # the ingest function reaches the (working) emulator
        done = run_cli(
            *ARGS,
            env={
                "ALERT_RELAY_TOPIC": topic,
                "ALERT_RELAY_PUBSUB_DEADLINE": "2",
                "ALERT_RELAY_INGEST_URL": url,
                "ALERT_RELAY_INGEST_TOKEN": "tok-123",
                "PUBSUB_EMULATOR_HOST": DEAD_EMULATOR,
            },
        )
    assert done.returncode == EXIT_DELIVERED, done.stdout + done.stderr
    assert "event sent via ingest" in done.stdout
    [received] = subscriber.pull(subscription=sub, max_messages=1, timeout=10).received_messages
    assert received.message.attributes["via"] == "ingest-bearer"


@pytest.mark.emulator
def test_pubsub_and_ingest_down_leave_the_log_line(pubsub_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths down (ingest answers 503: its Pub/Sub is down too): the marker line, exit 1."""
    for key, value in {
        "RELAY_ALERTS_TOPIC": f"projects/{PROJECT}/topics/alerts",
        "INGEST_TOKEN": "tok-123",
        "PUBSUB_EMULATOR_HOST": DEAD_EMULATOR,
        "RELAY_HTTP_TIMEOUT": "1",
    }.items():
        monkeypatch.setenv(key, value)
    with serve_ingest() as url:
        done = run_cli(
            *ARGS,
            env={
                "ALERT_RELAY_TOPIC": f"projects/{PROJECT}/topics/alerts",
                "ALERT_RELAY_PUBSUB_DEADLINE": "1",
                "ALERT_RELAY_INGEST_URL": url,
                "ALERT_RELAY_INGEST_TOKEN": "tok-123",
                "PUBSUB_EMULATOR_HOST": DEAD_EMULATOR,
            },
        )
    assert done.returncode == EXIT_UNDELIVERED
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last[MARKER_FIELD] == MARKER_VALUE
    assert any("HTTP 503" in error for error in last["errors"])
    assert "tok-123" not in done.stdout + done.stderr
