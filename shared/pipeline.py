"""The relay pipeline: decode -> normalise -> ledger -> route -> format -> deliver.

``Relay.handle`` always returns an ``Outcome`` that says whether the message may be acked:
- ACK when every routed sink has the event (now or earlier), the repeat was suppressed on purpose,
  or the message was dead-lettered with its reason;
- NACK when something retryable failed, so Pub/Sub redelivers with backoff; on the subscription's
  last attempt the relay dead-letters the message itself, so the reason is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared import logs, sources
from shared.deadletter import DeadLetter
from shared.envelope import InboundMessage
from shared.errors import DeliveryError, Reason, RelayError, UnsupportedPayload
from shared.ledger import ClaimState, DeadLetterRecord, Ledger, TraceEntry
from shared.model import AlertEvent, stable_id
from shared.routing import RouteDecision, RoutingConfig
from shared.sinks import Sink

Clock = Callable[[], datetime]

# Trace entries of the handling in progress, written to the ledger in one batch when it ends (one
# write instead of one per stage). Per context, so concurrent requests on one instance never mix.
_pending_trace: ContextVar[list[TraceEntry] | None] = ContextVar("pending_trace", default=None)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Disposition(StrEnum):
    ACK = "ack"
    NACK = "nack"


class Fate(StrEnum):
    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"  # a redelivery: the ledger says it was sent before
    SUPPRESSED = "suppressed"  # a repeat within the route's window
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryResult:
    route: str
    receiver: str
    sink: str
    fate: Fate
    reason: str = ""
    detail: str = ""
    retryable: bool = False
    receipt: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": self.route,
            "receiver": self.receiver,
            "sink": self.sink,
            "fate": self.fate,
        }
        if self.reason:
            out.update(reason=self.reason, detail=self.detail, retryable=self.retryable)
        if self.receipt:
            out["receipt"] = dict(self.receipt)
        return out


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    event: AlertEvent | None = None
    results: tuple[DeliveryResult, ...] = ()
    reason: str = ""
    detail: str = ""
    dead_lettered: bool = False

    @property
    def http_status(self) -> int:
        # 200 acks a push delivery; any non-2xx makes Pub/Sub (or Eventarc) redeliver with backoff.
        return 200 if self.disposition is Disposition.ACK else 503

    @property
    def summary(self) -> str:
        if self.dead_lettered:
            return "dead_lettered"
        if self.disposition is Disposition.NACK:
            return "retry"
        fates = {r.fate for r in self.results}
        if fates <= {Fate.SUPPRESSED}:
            return "suppressed"
        return "delivered"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.summary, "disposition": self.disposition.value}
        if self.event is not None:
            out["event_id"] = self.event.event_id
            out["fingerprint"] = self.event.fingerprint
        if self.reason:
            out["reason"] = self.reason
            out["detail"] = self.detail
        out["deliveries"] = [r.as_dict() for r in self.results]
        return out


@dataclass(frozen=True)
class Target:
    route: str
    receiver: str
    sink: Sink
    repeat_count: int = 0


class Relay:
    def __init__(
        self,
        *,
        routing: RoutingConfig,
        sinks: Mapping[str, Sequence[Sink]],
        ledger: Ledger,
        dead_letter: DeadLetter,
        clock: Clock = utc_now,
        max_attempts: int = 10,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        missing = set(routing.receivers) - set(sinks)
        if missing:
            raise ValueError(f"no sinks built for receivers {sorted(missing)}")
        self.routing = routing
        self.sinks = sinks
        self.ledger = ledger
        self.dead_letter_store = dead_letter
        self.clock = clock
        self.max_attempts = max_attempts
        # Longer than one invocation can run, so a crashed instance's claim frees itself.
        self.lease = lease

    # -- entry points -------------------------------------------------------------------------

    def handle(self, message: InboundMessage) -> Outcome:
        """Process one inbound message end to end; never raises."""
        token = _pending_trace.set([])
        try:
            return self._handle(message)
        finally:
            self._flush_trace()
            _pending_trace.reset(token)

    def _handle(self, message: InboundMessage) -> Outcome:
        try:
            try:
                event = sources.parse(message, received_at=self.clock())
            except UnsupportedPayload as exc:
                return self._dead_letter(message, None, exc.reason.value, str(exc))
            return self.process(event, message)
        except Exception as exc:
            # A bug or an unavailable ledger: nothing is acked, so nothing is lost.
            reason = exc.reason.value if isinstance(exc, RelayError) else Reason.INTERNAL_ERROR.value
            logs.logger().exception(
                "relay failed; message will be redelivered",
                extra={"fields": {"outcome": "retry", "reason": reason, "attempt": message.delivery_attempt}},
            )
            return Outcome(Disposition.NACK, reason=reason, detail=f"{type(exc).__name__}: {exc}")

    def reject(self, body: bytes, reason: str, detail: str) -> Outcome:
        """Dead-letter a request body that is not even a readable message."""
        token = _pending_trace.set([])
        try:
            return self._dead_letter(InboundMessage(data=body, transport="unreadable"), None, reason, detail)
        finally:
            self._flush_trace()
            _pending_trace.reset(token)

    def plan(self, event: AlertEvent) -> list[Target]:
        """Every (route, receiver, sink) the event would reach, ignoring the ledger; each sink once."""
        seen: set[str] = set()
        return [t for decision in self.routing.match(event) for t in self._targets(decision, seen)]

    def _targets(self, decision: RouteDecision, seen: set[str], repeat_count: int = 0) -> list[Target]:
        """The sinks a route decision reaches, skipping any an earlier route already reached."""
        targets = []
        for receiver in decision.receivers:
            for sink in self.sinks[receiver]:
                if sink.key not in seen:
                    seen.add(sink.key)
                    targets.append(Target(decision.route, receiver, sink, repeat_count))
        return targets

    def process(self, event: AlertEvent, message: InboundMessage) -> Outcome:
        """Route and deliver a parsed event; ``message`` is what it came in (kept if dead-lettered)."""
        attempt = message.delivery_attempt
        now = self.clock()
        self.ledger.save_event(event.event_id, event.to_json(), now)
        transport = f" via {message.transport} message {message.message_id}".rstrip()
        self._trace(
            event, "received", attempt=attempt, detail=f"{event.source.value} {event.status.value}{transport}"
        )

        results: list[DeliveryResult] = []
        targets: list[Target] = []
        seen: set[str] = set()
        for decision in self.routing.match(event):
            repeat = self.ledger.decide_repeat(
                event_id=event.event_id,
                scope=decision.route,
                fingerprint=event.fingerprint,
                status=event.status.value,
                window=decision.suppress_for,
                now=now,
            )
            if not repeat.verdict.send:
                detail = f"repeat #{repeat.count} of event {repeat.repeat_of} within {decision.suppress_for}"
                results.append(DeliveryResult(decision.route, "", "", Fate.SUPPRESSED, detail=detail))
                self._trace(event, "suppressed", route=decision.route, attempt=attempt, detail=detail)
                self._log(event, "suppressed", route=decision.route, attempt=attempt, detail=detail)
                self._note_repeat(event, decision.route, decision.receivers, repeat.count, attempt)
                continue
            targets += self._targets(decision, seen, repeat.count)

        for target in targets:
            results.append(self._deliver(event, target, attempt))

        retryable = [r for r in results if r.fate is Fate.FAILED and r.retryable]
        permanent = [r for r in results if r.fate is Fate.FAILED and not r.retryable]
        if retryable and (attempt is None or attempt < self.max_attempts):
            outcome = Outcome(
                Disposition.NACK,
                event,
                tuple(results),
                reason=retryable[0].reason,
                detail="; ".join(r.detail for r in retryable),
            )
            self._log(event, "retry", attempt=attempt, reason=outcome.reason, detail=outcome.detail)
            self._trace(
                event,
                "handled",
                attempt=attempt,
                reason=outcome.reason,
                detail="nack: Pub/Sub will redeliver",
            )
            return outcome
        if retryable or permanent:
            failed = retryable + permanent
            reason = Reason.RETRIES_EXHAUSTED.value if retryable else permanent[0].reason
            detail = "; ".join(f"{r.sink}: {r.reason}: {r.detail}" for r in failed)
            return self._dead_letter(message, event, reason, detail, results=results)
        outcome = Outcome(Disposition.ACK, event, tuple(results))
        self._log(event, "done", attempt=attempt)
        self._trace(event, "handled", attempt=attempt, detail=f"ack: {outcome.summary}")
        return outcome

    # -- stages ---------------------------------------------------------------------------------

    def _deliver(self, event: AlertEvent, target: Target, attempt: int | None) -> DeliveryResult:
        sink = target.sink
        claim = self.ledger.claim(event_id=event.event_id, sink=sink.key, now=self.clock(), lease=self.lease)
        if claim.state is ClaimState.DONE:
            self._trace(event, Fate.ALREADY_DELIVERED, route=target.route, sink=sink.key, attempt=attempt)
            self._log(event, Fate.ALREADY_DELIVERED, route=target.route, sink=sink.key, attempt=attempt)
            return DeliveryResult(
                target.route, target.receiver, sink.key, Fate.ALREADY_DELIVERED, receipt=claim.receipt
            )
        if claim.state is ClaimState.BUSY:
            detail = "another instance is delivering this event to this sink"
            self._log(
                event, "busy", route=target.route, sink=sink.key, attempt=attempt, reason=Reason.IN_PROGRESS
            )
            return DeliveryResult(
                target.route,
                target.receiver,
                sink.key,
                Fate.FAILED,
                Reason.IN_PROGRESS.value,
                detail,
                retryable=True,
            )
        try:
            receipt = sink.deliver(event, repeat_count=target.repeat_count)
        except Exception as exc:
            self.ledger.release(event_id=event.event_id, sink=sink.key)
            if isinstance(exc, DeliveryError):
                error = exc
            else:
                logs.logger().exception(
                    "sink raised an unexpected error", extra={"fields": {"sink": sink.key}}
                )
                error = DeliveryError(
                    f"{type(exc).__name__}: {exc}", reason=Reason.INTERNAL_ERROR, retryable=True
                )
            self._trace(
                event,
                "failed",
                route=target.route,
                sink=sink.key,
                attempt=attempt,
                reason=error.reason,
                detail=str(error),
            )
            self._log(
                event,
                "failed",
                level=logging.WARNING,
                route=target.route,
                sink=sink.key,
                attempt=attempt,
                reason=error.reason,
                detail=str(error),
            )
            return DeliveryResult(
                target.route,
                target.receiver,
                sink.key,
                Fate.FAILED,
                error.reason.value,
                str(error),
                error.retryable,
            )
        # The only window for a duplicate: a crash between send() returning and this write.
        self.ledger.complete(event_id=event.event_id, sink=sink.key, receipt=receipt, now=self.clock())
        self._trace(
            event,
            "delivered",
            route=target.route,
            sink=sink.key,
            attempt=attempt,
            detail=_receipt_text(receipt),
        )
        self._log(event, Fate.DELIVERED, route=target.route, sink=sink.key, attempt=attempt)
        return DeliveryResult(target.route, target.receiver, sink.key, Fate.DELIVERED, receipt=receipt)

    def _note_repeat(
        self, event: AlertEvent, route: str, receivers: Sequence[str], count: int, attempt: int | None
    ) -> None:
        """Let sinks that keep one message per incident show the count. Best effort: the count is
        shown again, higher, by the next repeat, so a failure here is logged and not retried."""
        for receiver in receivers:
            for sink in self.sinks[receiver]:
                try:
                    receipt = sink.note_repeat(event, count=count)
                except Exception as exc:
                    reason = exc.reason if isinstance(exc, RelayError) else Reason.INTERNAL_ERROR
                    self._log(
                        event,
                        "count_not_shown",
                        level=logging.WARNING,
                        route=route,
                        sink=sink.key,
                        attempt=attempt,
                        reason=reason,
                        detail=str(exc),
                    )
                    continue
                if receipt is not None:
                    self._trace(
                        event,
                        "counted",
                        route=route,
                        sink=sink.key,
                        attempt=attempt,
                        detail=_receipt_text(receipt),
                    )

    def _dead_letter(
        self,
        message: InboundMessage,
        event: AlertEvent | None,
        reason: str,
        detail: str,
        *,
        results: Sequence[DeliveryResult] = (),
    ) -> Outcome:
        now = self.clock()
        key = message.message_id or stable_id("message", message.data.decode("utf-8", "replace"))
        event_id = event.event_id if event else ""
        record = DeadLetterRecord(
            key=key,
            at=now,
            reason=reason,
            detail=detail,
            data=message.data,
            attributes=dict(message.attributes),
            event_id=event_id,
        )
        try:
            self.dead_letter_store.put(record)
        except DeliveryError as exc:
            # Without a dead letter the message must stay in Pub/Sub: nack, never drop.
            self._log(event, "retry", reason=Reason.DEAD_LETTER_FAILED, detail=str(exc), level=logging.ERROR)
            return Outcome(
                Disposition.NACK,
                event,
                tuple(results),
                reason=Reason.DEAD_LETTER_FAILED.value,
                detail=str(exc),
            )
        trace_id = event_id or f"message:{key}"
        self._record(
            TraceEntry(
                trace_id,
                now,
                "dead_lettered",
                attempt=message.delivery_attempt,
                reason=reason,
                detail=f"{detail} -> {self.dead_letter_store.destination}",
            )
        )
        logs.outcome(
            "dead-lettered",
            level=logging.ERROR,
            event_id=trace_id,
            source=event.source.value if event else None,
            fingerprint=event.fingerprint if event else None,
            attempt=message.delivery_attempt,
            outcome="dead_lettered",
            reason=reason,
            detail=detail,
            message_id=message.message_id,
        )
        self._record(
            TraceEntry(
                trace_id,
                self.clock(),
                "handled",
                attempt=message.delivery_attempt,
                detail="ack: dead_lettered",
            )
        )
        return Outcome(
            Disposition.ACK, event, tuple(results), reason=reason, detail=detail, dead_lettered=True
        )

    # -- records --------------------------------------------------------------------------------

    def _trace(
        self,
        event: AlertEvent,
        outcome: str,
        *,
        route: str = "",
        sink: str = "",
        attempt: int | None = None,
        reason: str = "",
        detail: str = "",
    ) -> None:
        self._record(
            TraceEntry(event.event_id, self.clock(), outcome, route, sink, attempt, str(reason), detail)
        )

    def _record(self, entry: TraceEntry) -> None:
        pending = _pending_trace.get()
        if pending is None:
            self.ledger.record_many([entry])
        else:
            pending.append(entry)

    def _flush_trace(self) -> None:
        pending = _pending_trace.get()
        if pending:
            try:
                self.ledger.record_many(pending)
            except Exception:
                # The answer to Pub/Sub does not depend on the trace: log it rather than retry for it.
                logs.logger().exception(
                    "could not write the trace", extra={"fields": {"outcome": "trace_lost"}}
                )
            pending.clear()

    @staticmethod
    def _log(
        event: AlertEvent | None,
        outcome: str,
        *,
        level: int = logging.INFO,
        route: str = "",
        sink: str = "",
        attempt: int | None = None,
        reason: str = "",
        detail: str = "",
    ) -> None:
        logs.outcome(
            f"event {outcome}",
            level=level,
            event_id=event.event_id if event else None,
            source=event.source.value if event else None,
            fingerprint=event.fingerprint if event else None,
            route=route,
            sink=sink,
            attempt=attempt,
            outcome=str(outcome),
            reason=str(reason),
            detail=detail,
        )


def _receipt_text(receipt: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in receipt.items())
