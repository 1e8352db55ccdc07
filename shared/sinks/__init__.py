"""Sinks: where a routed event is delivered. One narrow interface; each adapter is a leaf package.

A sink renders the exact request a fresh notification would send (pure, used by ``alert-relay
render``) separately from delivering it. ``deliver`` returns a receipt (e.g. Slack's channel and
ts) or raises ``DeliveryError`` saying whether a retry can help. ``note_repeat`` is told about a
repeat the route suppressed, so that a sink that keeps one message per incident can show the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.model import AlertEvent


class Sink(Protocol):
    #: Stable identity within the routing config, used as the ledger's delivery key.
    key: str
    #: What the request is, e.g. "slack.chat.postMessage", "pubsub.publish", "webhook.post".
    kind: str

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        """The request a fresh notification of this event would send; no I/O."""
        ...

    def deliver(self, event: AlertEvent, *, repeat_count: int = 0) -> Mapping[str, Any]:
        """Deliver the event; return a receipt or raise ``DeliveryError``."""
        ...

    def note_repeat(self, event: AlertEvent, *, count: int) -> Mapping[str, Any] | None:
        """A repeat was suppressed (``count`` so far in this window); None when the sink shows nothing."""
        ...


class RequestSink:
    """A sink whose delivery is one request: ``deliver`` sends what ``render`` built."""

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        raise NotImplementedError

    def deliver(self, event: AlertEvent, *, repeat_count: int = 0) -> Mapping[str, Any]:
        return self.send(self.render(event, repeat_count=repeat_count))

    def note_repeat(self, event: AlertEvent, *, count: int) -> Mapping[str, Any] | None:
        return None  # one request per notification: a suppressed repeat sends nothing
