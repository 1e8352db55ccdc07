"""SQLite ledger: the local default. One file, safe across threads and processes on one machine.

Atomicity comes from ``BEGIN IMMEDIATE`` (one writer at a time, taken before the read), so a claim
is a read-then-write no other process can interleave with. Records carry ``expires_at``; reads treat
expired rows as absent, and expired rows are purged opportunistically.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.ledger import (
    Claim,
    ClaimState,
    DeadLetterRecord,
    RepeatDecision,
    TraceEntry,
    Verdict,
    next_repeat,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL, sink TEXT NOT NULL, state TEXT NOT NULL,
    lease_until REAL NOT NULL, receipt TEXT NOT NULL DEFAULT '{}', expires_at REAL NOT NULL,
    PRIMARY KEY (event_id, sink)
);
CREATE TABLE IF NOT EXISTS repeat_state (
    scope TEXT NOT NULL, fingerprint TEXT NOT NULL, last_status TEXT NOT NULL,
    last_sent_at REAL NOT NULL, count INTEGER NOT NULL, last_event_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, fingerprint)
);
CREATE TABLE IF NOT EXISTS repeat_decisions (
    event_id TEXT NOT NULL, scope TEXT NOT NULL, verdict TEXT NOT NULL, count INTEGER NOT NULL,
    repeat_of TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (event_id, scope)
);
CREATE TABLE IF NOT EXISTS trace (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, at REAL NOT NULL, outcome TEXT NOT NULL,
    route TEXT NOT NULL, sink TEXT NOT NULL, attempt INTEGER, reason TEXT NOT NULL, detail TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_event ON trace (event_id);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    key TEXT PRIMARY KEY, state TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL,
    detail TEXT NOT NULL, data BLOB NOT NULL, attributes TEXT NOT NULL, event_id TEXT NOT NULL
);
"""
_PURGE_EVERY = 500  # writes between purges of expired rows


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


class SqliteLedger:
    def __init__(self, path: str | Path, *, retention: timedelta = timedelta(days=30)) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retention = retention
        self._lock = threading.Lock()
        self._writes = 0
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._writes += 1
            if self._writes % _PURGE_EVERY == 0:
                self._purge(datetime.now(UTC))

    def _purge(self, now: datetime) -> None:
        cutoff = _ts(now)
        for table in ("deliveries", "repeat_state", "repeat_decisions", "trace", "events", "incidents"):
            self._db.execute(f"DELETE FROM {table} WHERE expires_at < ?", (cutoff,))  # noqa: S608 (fixed names)

    def _expiry(self, now: datetime) -> float:
        return _ts(now + self._retention)

    def decide_repeat(
        self, *, event_id: str, scope: str, fingerprint: str, status: str, window: timedelta, now: datetime
    ) -> RepeatDecision:
        t = _ts(now)
        with self._tx() as db:
            row = db.execute(
                "SELECT verdict, count, repeat_of FROM repeat_decisions"
                " WHERE event_id = ? AND scope = ? AND expires_at >= ?",
                (event_id, scope, t),
            ).fetchone()
            if row:
                return RepeatDecision(Verdict(row[0]), count=row[1], repeat_of=row[2])
            row = db.execute(
                "SELECT last_status, last_sent_at, count, last_event_id FROM repeat_state"
                " WHERE scope = ? AND fingerprint = ? AND expires_at >= ?",
                (scope, fingerprint, t),
            ).fetchone()
            previous = (
                {"last_status": row[0], "last_sent_at": _dt(row[1]), "count": row[2], "last_event_id": row[3]}
                if row
                else None
            )
            decision, state = next_repeat(previous, event_id=event_id, status=status, window=window, now=now)
            db.execute(
                "INSERT OR REPLACE INTO repeat_state VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    scope,
                    fingerprint,
                    state["last_status"],
                    _ts(state["last_sent_at"]),
                    state["count"],
                    state["last_event_id"],
                    self._expiry(now),
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO repeat_decisions VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event_id,
                    scope,
                    decision.verdict.value,
                    decision.count,
                    decision.repeat_of,
                    self._expiry(now),
                ),
            )
            return decision

    def claim(self, *, event_id: str, sink: str, now: datetime, lease: timedelta) -> Claim:
        t = _ts(now)
        with self._tx() as db:
            row = db.execute(
                "SELECT state, lease_until, receipt FROM deliveries"
                " WHERE event_id = ? AND sink = ? AND expires_at >= ?",
                (event_id, sink, t),
            ).fetchone()
            if row:
                if row[0] == "done":
                    return Claim(ClaimState.DONE, json.loads(row[2]))
                if row[1] > t:
                    return Claim(ClaimState.BUSY)
            db.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, 'leased', ?, '{}', ?)",
                (event_id, sink, _ts(now + lease), self._expiry(now)),
            )
            return Claim(ClaimState.ACQUIRED)

    def complete(self, *, event_id: str, sink: str, receipt: Mapping[str, Any], now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, 'done', ?, ?, ?)",
                (event_id, sink, _ts(now), json.dumps(dict(receipt)), self._expiry(now)),
            )

    def release(self, *, event_id: str, sink: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM deliveries WHERE event_id = ? AND sink = ? AND state = 'leased'",
                (event_id, sink),
            )

    def get_incident(self, key: str, now: datetime) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM incidents WHERE key = ? AND expires_at >= ?", (key, _ts(now))
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_incident(self, key: str, state: Mapping[str, Any], now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?)",
                (key, json.dumps(dict(state)), self._expiry(now)),
            )

    def record(self, entry: TraceEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: Sequence[TraceEntry]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO trace (event_id, at, outcome, route, sink, attempt, reason, detail, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.event_id,
                        _ts(e.at),
                        e.outcome,
                        e.route,
                        e.sink,
                        e.attempt,
                        e.reason,
                        e.detail,
                        self._expiry(e.at),
                    )
                    for e in entries
                ],
            )

    def trace(self, event_id: str) -> list[TraceEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, at, outcome, route, sink, attempt, reason, detail FROM trace"
                " WHERE event_id = ? ORDER BY seq",
                (event_id,),
            ).fetchall()
        return [TraceEntry(r[0], _dt(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def save_event(self, event_id: str, event_json: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?)", (event_id, event_json, self._expiry(now))
            )

    def load_event(self, event_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    def dead_letter(self, record: DeadLetterRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO dead_letters (key, at, reason, detail, data, attributes, event_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.key,
                    _ts(record.at),
                    record.reason,
                    record.detail,
                    record.data,
                    json.dumps(dict(record.attributes)),
                    record.event_id,
                ),
            )

    def dead_letters(self) -> list[DeadLetterRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, at, reason, detail, data, attributes, event_id FROM dead_letters ORDER BY seq"
            ).fetchall()
        return [
            DeadLetterRecord(r[0], _dt(r[1]), r[2], r[3], bytes(r[4]), json.loads(r[5]), r[6]) for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
