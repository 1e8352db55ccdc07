"""In-memory ledger for unit tests and one-off CLI runs: same contract, nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.ledger import (
    Claim,
    ClaimState,
    DeadLetterRecord,
    RepeatDecision,
    TraceEntry,
    next_repeat,
)


class MemoryLedger:
    def __init__(self, *, retention: timedelta = timedelta(days=30)) -> None:
        self._lock = threading.Lock()
        self._retention = retention
        self._decisions: dict[tuple[str, str], tuple[RepeatDecision, datetime]] = {}
        self._repeats: dict[tuple[str, str], dict[str, Any]] = {}
        # (event_id, sink) -> {"state": "leased"|"done", "until": datetime, "receipt": {...}}
        self._deliveries: dict[tuple[str, str], dict[str, Any]] = {}
        self._trace: dict[str, list[TraceEntry]] = {}
        self._events: dict[str, str] = {}
        self._dead: list[DeadLetterRecord] = []
        self._incidents: dict[str, tuple[dict[str, Any], datetime]] = {}

    def decide_repeat(
        self, *, event_id: str, scope: str, fingerprint: str, status: str, window: timedelta, now: datetime
    ) -> RepeatDecision:
        with self._lock:
            known = self._decisions.get((event_id, scope))
            if known is not None and known[1] >= now:
                return known[0]
            previous = self._repeats.get((scope, fingerprint))
            if previous is not None and now - previous["last_sent_at"] > self._retention:
                previous = None
            decision, state = next_repeat(previous, event_id=event_id, status=status, window=window, now=now)
            self._repeats[(scope, fingerprint)] = state
            self._decisions[(event_id, scope)] = (decision, now + self._retention)
            return decision

    def claim(self, *, event_id: str, sink: str, now: datetime, lease: timedelta) -> Claim:
        with self._lock:
            record = self._deliveries.get((event_id, sink))
            if record is not None and record["expires"] >= now:
                if record["state"] == "done":
                    return Claim(ClaimState.DONE, record["receipt"])
                if record["until"] > now:
                    return Claim(ClaimState.BUSY)
            self._deliveries[(event_id, sink)] = {
                "state": "leased",
                "until": now + lease,
                "receipt": {},
                "expires": now + self._retention,
            }
            return Claim(ClaimState.ACQUIRED)

    def complete(self, *, event_id: str, sink: str, receipt: Mapping[str, Any], now: datetime) -> None:
        with self._lock:
            self._deliveries[(event_id, sink)] = {
                "state": "done",
                "until": now,
                "receipt": dict(receipt),
                "expires": now + self._retention,
            }

    def release(self, *, event_id: str, sink: str) -> None:
        with self._lock:
            record = self._deliveries.get((event_id, sink))
            if record is not None and record["state"] == "leased":
                del self._deliveries[(event_id, sink)]

    def get_incident(self, key: str, now: datetime) -> dict[str, Any] | None:
        with self._lock:
            found = self._incidents.get(key)
            return dict(found[0]) if found is not None and found[1] >= now else None

    def put_incident(self, key: str, state: Mapping[str, Any], now: datetime) -> None:
        with self._lock:
            self._incidents[key] = (dict(state), now + self._retention)

    def record(self, entry: TraceEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: Sequence[TraceEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._trace.setdefault(entry.event_id, []).append(entry)

    def trace(self, event_id: str) -> list[TraceEntry]:
        with self._lock:
            return list(self._trace.get(event_id, []))

    def save_event(self, event_id: str, event_json: str, now: datetime) -> None:
        with self._lock:
            self._events.setdefault(event_id, event_json)

    def load_event(self, event_id: str) -> str | None:
        with self._lock:
            return self._events.get(event_id)

    def dead_letter(self, record: DeadLetterRecord) -> None:
        with self._lock:
            self._dead.append(record)

    def dead_letters(self) -> list[DeadLetterRecord]:
        with self._lock:
            return list(self._dead)

    def close(self) -> None:
        pass
