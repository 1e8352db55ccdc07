"""Shared fixtures: fake Slack / webhook servers, Google's emulators, a fake clock and sleep recorder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.emulators import PROJECT, FirestoreEmulator, PubSubEmulator, missing_reason
from tests.fakes import FakeClock, FakeSlackServer, FakeWebhookServer, SleepRecorder
from tests.fakes.pubsub_pipeline import Pipeline, make_pipeline

SLACK_TOKEN = "xoxb-test-token"
SLACK_CHANNELS = frozenset({"C0ALERTS", "C0PLATFORM", "C0RESOLVED"})
SLACK_ALIASES = {"#alerts": "C0ALERTS", "#platform": "C0PLATFORM", "#resolved": "C0RESOLVED"}

# Prefixes of variables a developer's shell (or CI) may carry that would change what the code under
# test talks to; every test starts without them and sets what it needs via monkeypatch.
ISOLATED_ENV_PREFIXES = (
    "RELAY_",
    "SLACK_",
    "PUBSUB_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
)


@pytest.fixture(autouse=True)
def isolate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ISOLATED_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)


# -- HTTP fakes --------------------------------------------------------------------------------


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    """Fake Slack (Web API + incoming webhooks); WebClient(token=..., base_url=slack_server.api_url)."""
    with FakeSlackServer(token=SLACK_TOKEN, channels=SLACK_CHANNELS, aliases=SLACK_ALIASES) as server:
        yield server


@pytest.fixture
def webhook_server() -> Iterator[FakeWebhookServer]:
    """Generic JSON webhook receiver; ``webhook_server.url_for("/hook")``."""
    with FakeWebhookServer() as server:
        yield server


# -- Google emulators (one per session: ~1.5-2 s to start) -------------------------------------


def _emulator_session(kind: str, emulator_cls: type[PubSubEmulator | FirestoreEmulator], env_var: str):
    reason = missing_reason(kind)  # type: ignore[arg-type]
    if reason:
        pytest.skip(reason)
    with emulator_cls() as emulator:
        # Session-wide default for code running outside tests; isolate_environment still removes it
        # inside each test, so tests opt in (pubsub_env / firestore_env or their own monkeypatch).
        patch = pytest.MonkeyPatch()
        patch.setenv(env_var, emulator.host)
        try:
            yield emulator.host
        finally:
            patch.undo()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """Host ("127.0.0.1:port") of a session-wide Pub/Sub emulator; skips when not installed."""
    yield from _emulator_session("pubsub", PubSubEmulator, "PUBSUB_EMULATOR_HOST")


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """Host ("127.0.0.1:port") of a session-wide Firestore emulator; skips when not installed."""
    yield from _emulator_session("firestore", FirestoreEmulator, "FIRESTORE_EMULATOR_HOST")


@pytest.fixture
def pubsub_env(isolate_environment: None, pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PUBSUB_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT set for this test; returns the host.

    Create Pub/Sub clients inside the test (after this fixture), and use unique topic names
    (localdev.emulators.unique_name): the emulator is shared by the whole session.
    """
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return pubsub_emulator


@pytest.fixture
def firestore_env(isolate_environment: None, firestore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT set for this test; returns the host."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return firestore_emulator


# -- time --------------------------------------------------------------------------------------


@pytest.fixture
def fixed_clock() -> FakeClock:
    """Clock at 2026-05-02T09:00:00Z; ``now()`` (aware UTC), ``time()``, ``monotonic()``, ``advance(s)``."""
    return FakeClock()


@pytest.fixture
def sleeps(fixed_clock: FakeClock) -> SleepRecorder:
    """``sleep(seconds)`` recorder (``.calls``, ``.total``); each sleep also advances ``fixed_clock``."""
    return SleepRecorder(fixed_clock)


@pytest.fixture
def pipeline(
    pubsub_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack_server: FakeSlackServer
) -> Iterator[Pipeline]:
    """The relay on loopback behind a push subscription (with dead-letter policy) on the emulator."""
    yield from make_pipeline(pubsub_env, monkeypatch, tmp_path, slack_server)
