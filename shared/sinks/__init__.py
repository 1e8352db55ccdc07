"""Sinks: where a routed event is delivered. One narrow interface; each adapter is a leaf module.

A sink renders the exact request it would send (pure, used by ``alert-relay render``) separately
from sending it. ``send`` returns a receipt (e.g. Slack's channel and ts) or raises ``DeliveryError``
saying whether a retry can help.
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
        """The request that would be sent for this event; no I/O."""
        ...

    def send(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """Deliver a rendered request; return a receipt or raise ``DeliveryError``."""
        ...
