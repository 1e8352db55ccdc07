"""The ledger: what the relay decided and delivered, so nothing is posted twice or lost.

It keeps, per event and sink, a delivery record claimed before sending (so a redelivered message
or a concurrent instance never sends again) and completed after; per route and fingerprint, the
repeat state behind the suppression window; per event, a trace of every outcome; and dead letters.

Implementations: ``MemoryLedger`` (unit tests), ``SqliteLedger`` (local default) and
``FirestoreLedger`` (production), all passing the same contract tests. ``open_ledger(url)`` is the
only place that picks one. The ledger also keeps each incident's Slack message (channel and ts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol


class ClaimState(StrEnum):
    ACQUIRED = "acquired"  # this caller may send now
    DONE = "done"  # already delivered: skip
    BUSY = "busy"  # another instance holds an unexpired lease: retry later


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    receipt: Mapping[str, Any] = field(default_factory=dict)


class Verdict(StrEnum):
    FIRST = "first"  # no earlier notification of this alert on this route
    CHANGED = "changed"  # the status changed since the last notification (e.g. firing -> resolved)
    WINDOW_ELAPSED = "window_elapsed"  # same status, but the suppression window has passed
    SUPPRESSED = "suppressed"  # same status within the window: counted, not sent
    NO_WINDOW = "no_window"  # the route does not suppress repeats

    @property
    def send(self) -> bool:
        return self is not Verdict.SUPPRESSED


@dataclass(frozen=True)
class RepeatDecision:
    verdict: Verdict
    # How many repeats were folded into the notification this decision refers to.
    count: int = 0
    # For a suppressed event: the event whose notification it repeats.
    repeat_of: str = ""


@dataclass(frozen=True)
class TraceEntry:
    """One line of an event's fate: received, suppressed, delivered, failed, dead-lettered."""

    event_id: str
    at: datetime
    outcome: str
    route: str = ""
    sink: str = ""
    attempt: int | None = None
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class DeadLetterRecord:
    key: str
    at: datetime
    reason: str
    detail: str
    data: bytes
    attributes: Mapping[str, str]
    event_id: str = ""


class Ledger(Protocol):
    def decide_repeat(
        self,
        *,
        event_id: str,
        scope: str,
        fingerprint: str,
        status: str,
        window: timedelta,
        now: datetime,
    ) -> RepeatDecision:
        """Decide (once per event and scope; asking again returns the same answer) whether to send."""
        ...

    def claim(self, *, event_id: str, sink: str, now: datetime, lease: timedelta) -> Claim:
        """Atomically take the right to deliver ``event_id`` to ``sink``."""
        ...

    def complete(self, *, event_id: str, sink: str, receipt: Mapping[str, Any], now: datetime) -> None:
        """Record the delivery as done; later claims answer DONE."""
        ...

    def release(self, *, event_id: str, sink: str) -> None:
        """Give the claim back after a failed attempt, so a retry can take it at once."""
        ...

    def get_incident(self, key: str, now: datetime) -> dict[str, Any] | None:
        """The stored state of one incident's message (channel, ts, status...), or None."""
        ...

    def put_incident(self, key: str, state: Mapping[str, Any], now: datetime) -> None:
        """Store an incident's state (callers serialise writers with ``claim``/``release``)."""
        ...

    def record(self, entry: TraceEntry) -> None: ...

    def record_many(self, entries: Sequence[TraceEntry]) -> None:
        """Append trace entries in one write (the pipeline batches one handling's entries)."""
        ...

    def trace(self, event_id: str) -> list[TraceEntry]: ...

    def save_event(self, event_id: str, event_json: str, now: datetime) -> None: ...

    def load_event(self, event_id: str) -> str | None: ...

    def dead_letter(self, record: DeadLetterRecord) -> None: ...

    def dead_letters(self) -> list[DeadLetterRecord]: ...

    def close(self) -> None: ...


def open_ledger(
    url: str,
    *,
    retention: timedelta = timedelta(days=30),
    project: str | None = None,
    database: str = "(default)",
    prefix: str = "alert_relay",
) -> Ledger:
    """The ledger named by RELAY_LEDGER: ``memory``, ``sqlite:///PATH`` or ``firestore``."""
    if url == "memory":
        from shared.ledger.memory import MemoryLedger

        return MemoryLedger(retention=retention)
    if url.startswith("sqlite:///"):
        from shared.ledger.sqlite import SqliteLedger

        return SqliteLedger(url.removeprefix("sqlite:///"), retention=retention)
    if url == "firestore":
        from shared.ledger.firestore import FirestoreLedger

        return FirestoreLedger(project=project, database=database, prefix=prefix, retention=retention)
    from shared.errors import ConfigError

    raise ConfigError(
        f"RELAY_LEDGER: {url!r} is not a known ledger (use memory, sqlite:///PATH or firestore)"
    )


def next_repeat(
    previous: Mapping[str, Any] | None, *, event_id: str, status: str, window: timedelta, now: datetime
) -> tuple[RepeatDecision, dict[str, Any]]:
    """The pure rule behind ``decide_repeat``, shared by every implementation.

    ``previous`` is the stored state of (scope, fingerprint): last_status, last_sent_at, count,
    last_event_id. Returns the decision and the new state to store.
    """
    if window <= timedelta(0):
        verdict = Verdict.NO_WINDOW
    elif previous is None:
        verdict = Verdict.FIRST
    elif previous["last_status"] != status:
        verdict = Verdict.CHANGED
    elif now - previous["last_sent_at"] >= window:
        verdict = Verdict.WINDOW_ELAPSED
    else:
        verdict = Verdict.SUPPRESSED
    if verdict is Verdict.SUPPRESSED:
        assert previous is not None
        count = int(previous["count"]) + 1
        state = {**previous, "count": count}
        return RepeatDecision(verdict, count=count, repeat_of=previous["last_event_id"]), state
    folded = int(previous["count"]) if previous and verdict is Verdict.WINDOW_ELAPSED else 0
    state = {"last_status": status, "last_sent_at": now, "count": 0, "last_event_id": event_id}
    return RepeatDecision(verdict, count=folded), state
