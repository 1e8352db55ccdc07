"""Slack sinks. With a bot token (or the console stand-in) one message per incident, kept up to date:

- the first firing event of an alert posts a message and stores its channel and ``ts`` in the ledger;
- a repeat the route suppresses updates that message's counter;
- a repeat after the window, while the incident is open, adds one thread reply and updates the counter;
- the resolve updates the original message in place (status, end time, duration) and replies in its
  thread; a resolve with no open incident (a close before its open) posts the resolved message;
- a firing event older than the incident's resolution (a duplicate open after the close) is ignored,
  so a resolved incident is never re-opened by mistake; a newer one opens a new message.

Writers of one incident are serialised by a lease in the ledger, so two instances handling the same
incident at once end with one consistent message. Incoming-webhook mode cannot update messages: each
event is its own message (``SlackWebhookSink``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.errors import DeliveryError, Reason
from shared.formatting.slack import Resolution, format_event, format_reply
from shared.ledger import ClaimState
from shared.model import AlertEvent, Status
from shared.sinks.slack.transport import (
    ConsoleTransport,
    SlackWebhookSink,
    WebApiTransport,
    bounded_retry_handler,
    classify_api_error,
    post_args,
)

__all__ = [
    "ConsoleTransport",
    "SlackChannelSink",
    "SlackWebhookSink",
    "WebApiTransport",
    "bounded_retry_handler",
    "classify_api_error",
    "post_args",
]

log = logging.getLogger(__name__)

# chat.update failures after which the only way to show the resolution is a new message.
_GONE = ("message_not_found", "cant_update_message", "edit_window_closed")


class SlackTransport(Protocol):
    def post(self, args: Mapping[str, Any]) -> dict[str, Any]: ...

    def update(self, args: Mapping[str, Any]) -> dict[str, Any]: ...


class IncidentStore(Protocol):
    """The part of the ledger incidents need (every Ledger provides it)."""

    def get_incident(self, key: str, now: datetime) -> dict[str, Any] | None: ...

    def put_incident(self, key: str, state: Mapping[str, Any], now: datetime) -> None: ...

    def claim(self, *, event_id: str, sink: str, now: datetime, lease: timedelta) -> Any: ...

    def release(self, *, event_id: str, sink: str) -> None: ...

    def load_event(self, event_id: str) -> str | None: ...


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SlackChannelSink:
    """One channel, through the Web API (or the console), with incident messages when a store is given."""

    kind = "slack.chat.postMessage"

    def __init__(
        self,
        *,
        key: str,
        channel: str,
        transport: SlackTransport,
        incidents: IncidentStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.key = key
        self.channel = channel
        self._transport = transport
        self._incidents = incidents
        self._clock = clock
        self._lease = lease

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        return post_args(event, self.channel, repeat_count)

    # -- delivery ----------------------------------------------------------------------------------

    def deliver(self, event: AlertEvent, *, repeat_count: int = 0) -> Mapping[str, Any]:
        if self._incidents is None:
            return {**self._transport.post(self.render(event, repeat_count=repeat_count)), "action": "posted"}
        with self._incident(event) as (key, store):
            state = store.get_incident(key, self._clock())
            if event.status is Status.FIRING:
                return self._firing(key, store, state, event, repeat_count)
            return self._resolved(key, store, state, event)

    def note_repeat(self, event: AlertEvent, *, count: int) -> Mapping[str, Any] | None:
        if self._incidents is None:
            return None
        with self._incident(event) as (key, store):
            state = store.get_incident(key, self._clock())
            if state is None or state["status"] != Status.FIRING.value or state["event_id"] == event.event_id:
                return None
            shown = int(state["repeats"]) + count
            self._update_original(state, store, repeats=shown, fallback=event)
            store.put_incident(key, {**state, "shown_repeats": shown}, self._clock())
            return {
                "channel": state["channel"],
                "ts": state["ts"],
                "action": "counter_updated",
                "repeats": shown,
            }

    # -- the incident state machine ----------------------------------------------------------------

    def _firing(
        self,
        key: str,
        store: IncidentStore,
        state: dict[str, Any] | None,
        event: AlertEvent,
        repeat_count: int,
    ) -> Mapping[str, Any]:
        if state is not None and state["event_id"] == event.event_id:
            return {"channel": state["channel"], "ts": state["ts"], "action": "unchanged"}
        if state is not None and state["status"] == Status.FIRING.value:
            # Fired again after the window while still open: one reply per interval, counter updated.
            repeats = int(state["repeats"]) + repeat_count + 1
            self._update_original(state, store, repeats=repeats, fallback=event)
            reply = self._reply(state, event, f"Fired again: {event.title} ({repeats} repeats so far)")
            store.put_incident(key, {**state, "repeats": repeats, "shown_repeats": repeats}, self._clock())
            return {
                "channel": state["channel"],
                "ts": state["ts"],
                "reply_ts": reply["ts"],
                "action": "repeated",
            }
        if state is not None and self._older_than_resolution(event, state):
            log.info("ignoring a firing event older than its incident's resolution", extra={"key": key})
            return {"channel": state["channel"], "ts": state["ts"], "action": "stale_ignored"}
        posted = self._transport.post(self.render(event, repeat_count=repeat_count))
        store.put_incident(
            key, self._new_state(event, posted, Status.FIRING, repeats=repeat_count), self._clock()
        )
        return {**posted, "action": "posted"}

    def _resolved(
        self, key: str, store: IncidentStore, state: dict[str, Any] | None, event: AlertEvent
    ) -> Mapping[str, Any]:
        if state is None:
            # A close before its open (or an incident we never announced): post it resolved, and keep
            # the state so that a late open does not re-open it.
            posted = self._transport.post(self.render(event))
            store.put_incident(key, self._new_state(event, posted, Status.RESOLVED), self._clock())
            return {**posted, "action": "posted_resolved"}
        if state["status"] == Status.RESOLVED.value:
            return {"channel": state["channel"], "ts": state["ts"], "action": "already_resolved"}
        ended = event.ended_at or self._clock()
        started = _parse(state.get("started_at"))
        resolution = Resolution(
            at=ended,
            duration_seconds=(ended - started).total_seconds() if started and ended >= started else None,
            by=self._resolved_by(event, state),
        )
        updated = self._update_original(
            state,
            store,
            repeats=int(state.get("shown_repeats", state["repeats"])),
            resolution=resolution,
            fallback=event,
        )
        if updated.get("ts") != state["ts"]:  # the original was gone: the resolution is a new message
            store.put_incident(key, self._new_state(event, updated, Status.RESOLVED), self._clock())
            return {**updated, "action": "posted_resolved"}
        reply = self._reply(state, event, f"Resolved: {event.summary or event.title}")
        store.put_incident(
            key, {**state, "status": Status.RESOLVED.value, "ended_at": _iso(ended)}, self._clock()
        )
        return {"channel": state["channel"], "ts": state["ts"], "reply_ts": reply["ts"], "action": "resolved"}

    # -- pieces ------------------------------------------------------------------------------------

    @contextmanager
    def _incident(self, event: AlertEvent) -> Iterator[tuple[str, IncidentStore]]:
        store = self._incidents
        assert store is not None
        key = f"{self.key}|{event.fingerprint}"
        lock = f"incident-lock:{key}"
        claim = store.claim(event_id=lock, sink="slack", now=self._clock(), lease=self._lease)
        if claim.state is not ClaimState.ACQUIRED:
            raise DeliveryError(
                "another instance is updating this incident's message",
                reason=Reason.IN_PROGRESS,
                retryable=True,
            )
        try:
            yield key, store
        finally:
            store.release(event_id=lock, sink="slack")

    @staticmethod
    def _new_state(
        event: AlertEvent, posted: Mapping[str, Any], status: Status, repeats: int = 0
    ) -> dict[str, Any]:
        return {
            "channel": posted["channel"],
            "ts": posted["ts"],
            "status": status.value,
            "event_id": event.event_id,
            "started_at": _iso(event.started_at),
            "ended_at": _iso(event.ended_at) if status is Status.RESOLVED else None,
            "repeats": repeats,
            "shown_repeats": repeats,
        }

    @staticmethod
    def _older_than_resolution(event: AlertEvent, state: Mapping[str, Any]) -> bool:
        resolved_at = _parse(state.get("ended_at"))
        if event.started_at is None or resolved_at is None:
            return False
        return event.started_at <= resolved_at

    @staticmethod
    def _resolved_by(event: AlertEvent, state: Mapping[str, Any]) -> str:
        if event.event_id == state["event_id"]:
            return ""
        workflow = event.labels.get("workflow")
        if event.source_status and workflow:
            return f"{workflow} {event.source_status.lower()}"
        return event.source_status.lower() if event.source_status else ""

    def _original(self, state: Mapping[str, Any], store: IncidentStore, fallback: AlertEvent) -> AlertEvent:
        raw = store.load_event(state["event_id"])
        return AlertEvent.model_validate_json(raw) if raw else fallback

    def _update_original(
        self,
        state: Mapping[str, Any],
        store: IncidentStore,
        *,
        repeats: int,
        fallback: AlertEvent,
        resolution: Resolution | None = None,
    ) -> dict[str, Any]:
        original = self._original(state, store, fallback)
        message = format_event(original, repeat_count=repeats, resolution=resolution)
        args = {
            "channel": state["channel"],
            "ts": state["ts"],
            "text": message.text,
            "blocks": message.blocks_json(),
        }
        try:
            return self._transport.update(args)
        except DeliveryError as exc:
            if resolution is None or exc.code not in _GONE:
                raise
            log.warning(
                "original message cannot be updated; posting the resolution", extra={"error": str(exc)}
            )
            return self._transport.post(post_args(fallback, self.channel))

    def _reply(self, state: Mapping[str, Any], event: AlertEvent, text: str) -> dict[str, Any]:
        message = format_reply(event, text)
        return self._transport.post(
            {
                "channel": state["channel"],
                "thread_ts": state["ts"],
                "text": message.text,
                "blocks": message.blocks_json(),
                "unfurl_links": False,
                "unfurl_media": False,
            }
        )
