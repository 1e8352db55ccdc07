"""Test doubles for the alert relay: a fake Slack, a webhook receiver, Google's emulators, a clock.

The HTTP fakes are real servers on 127.0.0.1 so the production clients (slack_sdk, urllib,
requests) run unmodified against them. Fixtures wrapping all of this live in ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt

from tests.fakes.http import ANY_ROUTE, Action, Call, Respond, ScriptedHTTPServer, Stall
from tests.fakes.slack_server import FakeSlackServer, SlackPost, SlackUpdate
from tests.fakes.webhook_server import FakeWebhookServer, ReceivedWebhook

__all__ = [
    "ANY_ROUTE",
    "CLOCK_START",
    "Action",
    "Call",
    "FakeClock",
    "FakeSlackServer",
    "FakeWebhookServer",
    "ReceivedWebhook",
    "Respond",
    "ScriptedHTTPServer",
    "SlackPost",
    "SlackUpdate",
    "SleepRecorder",
    "Stall",
]

CLOCK_START = dt.datetime(2026, 5, 2, 9, 0, 0, tzinfo=dt.UTC)


class FakeClock:
    """A controllable clock: time moves only through ``advance()`` (or a linked SleepRecorder)."""

    def __init__(self, start: dt.datetime = CLOCK_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(dt.UTC)
        self._monotonic = 0.0

    def now(self) -> dt.datetime:
        """Aware UTC datetime (drop-in for ``lambda: datetime.now(UTC)``)."""
        return self._now

    def time(self) -> float:
        """Epoch seconds (drop-in for ``time.time``)."""
        return self._now.timestamp()

    def monotonic(self) -> float:
        """Seconds since the clock was created (drop-in for ``time.monotonic``)."""
        return self._monotonic

    def advance(self, seconds: float) -> dt.datetime:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += dt.timedelta(seconds=seconds)
        self._monotonic += seconds
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


class SleepRecorder:
    """Callable ``sleep(seconds)`` that records instead of sleeping (inject into retry handlers).

    When linked to a FakeClock, each sleep advances it, so code measuring elapsed time stays consistent.
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")  # same as time.sleep
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)

    @property
    def total(self) -> float:
        return sum(self.calls)

    # Deliberately no __len__: an empty recorder must stay truthy for `sleep or time.sleep` defaults.
