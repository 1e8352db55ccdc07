"""Firestore ledger: the production store, shared by every relay instance.

Documents (collection names start with a configurable prefix, default ``alert_relay``):

- ``deliveries/{sha(event_id, sink)}``: the claim of one delivery. A claim is ``create()`` (atomic
  create-if-absent); taking over an expired lease is an update guarded by the document's
  ``update_time``, so two instances can never both acquire it.
- ``repeats/{sha(scope, fingerprint)}`` and ``decisions/{sha(event_id, scope)}``: the suppression
  window, decided in one transaction so that concurrent repeats count correctly.
- ``incidents/{sha(key)}``: the Slack message of one incident (channel, ts, status), so that a
  resolve updates the original message even after a restart or on another instance.
- ``events/{sha(event_id)}`` with a ``trace`` subcollection ordered by server time.
- ``dead_letters/{auto}``.

Every document carries ``expires_at`` for a Firestore TTL policy (Terraform creates it). TTL deletion
runs within about a day of expiry, and the emulator does not run it at all, so reads treat expired
documents as absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.errors import Reason, RetryableError
from shared.ledger import (
    Claim,
    ClaimState,
    DeadLetterRecord,
    RepeatDecision,
    TraceEntry,
    Verdict,
    next_repeat,
)

EXPIRES_AT = "expires_at"  # the field Terraform's TTL policy names
_CONFLICT_ATTEMPTS = 50  # optimistic retries before giving the message back to Pub/Sub


def _doc_id(*parts: str) -> str:
    # Firestore ids cannot contain "/" and are limited to 1,500 bytes: hash the natural key.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


class FirestoreLedger:
    def __init__(
        self,
        *,
        project: str | None = None,
        database: str = "(default)",
        prefix: str = "alert_relay",
        retention: timedelta = timedelta(days=30),
        client: Any = None,
    ) -> None:
        self._project = project
        self._database = database
        self._prefix = prefix
        self._retention = retention
        self._client_instance = client
        self._lock = threading.Lock()
        # Orders entries committed together (they share one server timestamp).
        self._sequence = itertools.count()

    # -- plumbing ----------------------------------------------------------------------------------

    def _client(self) -> Any:
        # Created on first use, once per instance: importing Firestore costs ~230 ms of cold start.
        with self._lock:
            if self._client_instance is None:
                from google.cloud import firestore

                self._client_instance = firestore.Client(project=self._project, database=self._database)
            return self._client_instance

    def _col(self, name: str) -> Any:
        return self._client().collection(f"{self._prefix}_{name}")

    def _expiry(self, now: datetime) -> datetime:
        return now + self._retention

    @staticmethod
    def _live(snapshot: Any, now: datetime) -> dict[str, Any] | None:
        if not snapshot.exists:
            return None
        data = snapshot.to_dict() or {}
        expires = data.get(EXPIRES_AT)
        return None if expires is not None and expires < now else data

    # -- repeats -----------------------------------------------------------------------------------

    def decide_repeat(
        self, *, event_id: str, scope: str, fingerprint: str, status: str, window: timedelta, now: datetime
    ) -> RepeatDecision:
        """Optimistic concurrency: read, decide, then commit both documents in one batch guarded by
        preconditions; on a conflict, read again. Read-write transactions would take pessimistic locks,
        and concurrent repeats of one alert would queue on them (the emulator holds them for long)."""
        from google.api_core import exceptions

        client = self._client()
        decision_ref = self._col("decisions").document(_doc_id(event_id, scope))
        state_ref = self._col("repeats").document(_doc_id(scope, fingerprint))
        for _ in range(_CONFLICT_ATTEMPTS):
            decision_snap, state_snap = decision_ref.get(), state_ref.get()
            known = self._live(decision_snap, now)
            if known is not None:
                return RepeatDecision(
                    Verdict(known["verdict"]), count=known["count"], repeat_of=known["repeat_of"]
                )
            previous = self._live(state_snap, now)
            decision, state = next_repeat(previous, event_id=event_id, status=status, window=window, now=now)
            expiry = self._expiry(now)
            batch = client.batch()
            self._guarded_write(
                batch,
                state_ref,
                state_snap,
                {**state, "scope": scope, "fingerprint": fingerprint, EXPIRES_AT: expiry},
            )
            self._guarded_write(
                batch,
                decision_ref,
                decision_snap,
                {
                    "event_id": event_id,
                    "scope": scope,
                    "verdict": decision.verdict.value,
                    "count": decision.count,
                    "repeat_of": decision.repeat_of,
                    EXPIRES_AT: expiry,
                },
            )
            try:
                batch.commit()
            except (exceptions.Conflict, exceptions.FailedPrecondition, exceptions.NotFound):
                time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 (jitter, not security)
                continue
            return decision
        raise RetryableError(
            f"repeat decision for {fingerprint} kept conflicting with other instances",
            reason=Reason.IN_PROGRESS,
        )

    def _guarded_write(self, batch: Any, ref: Any, snapshot: Any, data: Mapping[str, Any]) -> None:
        """Write ``data`` only if the document is still as read: absent -> create, present -> update
        guarded by its update_time. Either way a concurrent change makes the whole batch fail."""
        if snapshot.exists:
            batch.update(
                ref, dict(data), option=self._client().write_option(last_update_time=snapshot.update_time)
            )
        else:
            batch.create(ref, dict(data))

    # -- deliveries --------------------------------------------------------------------------------

    def claim(self, *, event_id: str, sink: str, now: datetime, lease: timedelta) -> Claim:
        from google.api_core import exceptions

        ref = self._col("deliveries").document(_doc_id(event_id, sink))
        leased = {
            "event_id": event_id,
            "sink": sink,
            "state": "leased",
            "lease_until": now + lease,
            "receipt": "{}",
            EXPIRES_AT: self._expiry(now),
        }
        try:
            ref.create(leased)
            return Claim(ClaimState.ACQUIRED)
        except exceptions.Conflict:
            pass
        snapshot = ref.get()
        data = self._live(snapshot, now)
        if data is not None:
            if data["state"] == "done":
                return Claim(ClaimState.DONE, json.loads(data.get("receipt") or "{}"))
            if data["lease_until"] > now:
                return Claim(ClaimState.BUSY)
        if not snapshot.exists:  # deleted (e.g. released) between create() and get(): try once more
            try:
                ref.create(leased)
                return Claim(ClaimState.ACQUIRED)
            except exceptions.Conflict:
                return Claim(ClaimState.BUSY)
        # Expired lease or expired record: take it over only if nobody changed it since we read it.
        try:
            ref.update(leased, option=self._client().write_option(last_update_time=snapshot.update_time))
        except (exceptions.FailedPrecondition, exceptions.Conflict):
            return Claim(ClaimState.BUSY)
        return Claim(ClaimState.ACQUIRED)

    def complete(self, *, event_id: str, sink: str, receipt: Mapping[str, Any], now: datetime) -> None:
        self._col("deliveries").document(_doc_id(event_id, sink)).set(
            {
                "event_id": event_id,
                "sink": sink,
                "state": "done",
                "lease_until": now,
                "receipt": json.dumps(dict(receipt)),
                EXPIRES_AT: self._expiry(now),
            }
        )

    def release(self, *, event_id: str, sink: str) -> None:
        from google.api_core import exceptions

        ref = self._col("deliveries").document(_doc_id(event_id, sink))
        snapshot = ref.get()
        if snapshot.exists and (snapshot.to_dict() or {}).get("state") == "leased":
            # Only the version we read: a delivery completed or taken over meanwhile is left alone.
            with contextlib.suppress(exceptions.FailedPrecondition, exceptions.Conflict, exceptions.NotFound):
                ref.delete(option=self._client().write_option(last_update_time=snapshot.update_time))

    # -- records -----------------------------------------------------------------------------------

    def get_incident(self, key: str, now: datetime) -> dict[str, Any] | None:
        data = self._live(self._col("incidents").document(_doc_id(key)).get(), now)
        return json.loads(data["state"]) if data is not None else None

    def put_incident(self, key: str, state: Mapping[str, Any], now: datetime) -> None:
        self._col("incidents").document(_doc_id(key)).set(
            {"key": key, "state": json.dumps(dict(state)), EXPIRES_AT: self._expiry(now)}
        )

    def _event_ref(self, event_id: str) -> Any:
        return self._col("events").document(_doc_id(event_id))

    def record(self, entry: TraceEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: Sequence[TraceEntry]) -> None:
        from google.cloud import firestore

        batch = self._client().batch()  # one commit for the whole handling (at most 500 writes)
        for entry in entries[:500]:
            batch.set(
                self._event_ref(entry.event_id).collection("trace").document(),
                {
                    "event_id": entry.event_id,
                    "at": entry.at,
                    "written": firestore.SERVER_TIMESTAMP,
                    "seq": next(self._sequence),
                    "outcome": entry.outcome,
                    "route": entry.route,
                    "sink": entry.sink,
                    "attempt": entry.attempt,
                    "reason": entry.reason,
                    "detail": entry.detail,
                    EXPIRES_AT: self._expiry(entry.at),
                },
            )
        batch.commit()

    def trace(self, event_id: str) -> list[TraceEntry]:
        # Sorted here, not by the query: two order_by fields would need a composite index.
        docs = sorted(
            (doc.to_dict() for doc in self._event_ref(event_id).collection("trace").stream()),
            key=lambda d: (d["written"], d.get("seq", 0)),
        )
        out = []
        for d in docs:
            out.append(
                TraceEntry(
                    d["event_id"],
                    d["at"],
                    d["outcome"],
                    d["route"],
                    d["sink"],
                    d["attempt"],
                    d["reason"],
                    d["detail"],
                )
            )
        return out

    def save_event(self, event_id: str, event_json: str, now: datetime) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.Conflict):  # first write wins, as in the other ledgers
            self._event_ref(event_id).create(
                {"event_id": event_id, "body": event_json, EXPIRES_AT: self._expiry(now)}
            )

    def load_event(self, event_id: str) -> str | None:
        snapshot = self._event_ref(event_id).get()
        return (snapshot.to_dict() or {}).get("body") if snapshot.exists else None

    def dead_letter(self, record: DeadLetterRecord) -> None:
        self._col("dead_letters").add(
            {
                "key": record.key,
                "at": record.at,
                "reason": record.reason,
                "detail": record.detail,
                "data": record.data,
                "attributes": dict(record.attributes),
                "event_id": record.event_id,
                EXPIRES_AT: self._expiry(record.at),
            }
        )

    def dead_letters(self) -> list[DeadLetterRecord]:
        docs = self._col("dead_letters").order_by("at").stream()
        return [
            DeadLetterRecord(
                d["key"], d["at"], d["reason"], d["detail"], bytes(d["data"]), d["attributes"], d["event_id"]
            )
            for d in (doc.to_dict() for doc in docs)
        ]

    def close(self) -> None:
        with self._lock:
            if self._client_instance is not None:
                self._client_instance.close()
                self._client_instance = None
