"""Dead-letter destinations: where a message that can never succeed goes at once, with its reason.

In production a Pub/Sub topic (the raw data, the original attributes, and ``dead_letter_*``
attributes saying why); locally the ledger's own store. ``alert-relay trace`` reads both outcomes
from the ledger's trace either way.
"""

from __future__ import annotations

from typing import Protocol

from shared.ledger import DeadLetterRecord, Ledger
from shared.sinks.pubsub import Publisher

MAX_ATTRIBUTE_VALUE = 1024  # Pub/Sub allows 1,024 bytes per attribute value


class DeadLetter(Protocol):
    #: Where dead letters go, for logs and traces.
    destination: str

    def put(self, record: DeadLetterRecord) -> None:
        """Store the record durably or raise ``DeliveryError``."""
        ...


class LedgerDeadLetter:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.destination = "ledger"

    def put(self, record: DeadLetterRecord) -> None:
        self._ledger.dead_letter(record)


def _clip(text: str) -> str:
    raw = text.encode()
    return (
        text
        if len(raw) <= MAX_ATTRIBUTE_VALUE
        else raw[: MAX_ATTRIBUTE_VALUE - 3].decode("utf-8", "ignore") + "..."
    )


class PubSubDeadLetter:
    def __init__(self, topic: str, publisher: Publisher) -> None:
        self._topic = topic
        self._publisher = publisher
        self.destination = topic

    def put(self, record: DeadLetterRecord) -> None:
        attributes = {
            **{k: v for k, v in record.attributes.items() if not k.startswith("dead_letter_")},
            "dead_letter_reason": record.reason,
            "dead_letter_detail": _clip(record.detail),
            "dead_letter_key": _clip(record.key),
            "dead_letter_at": record.at.isoformat(),
        }
        if record.event_id:
            attributes["dead_letter_event_id"] = record.event_id
        # Pub/Sub rejects empty messages; an empty payload is kept as a single space plus the reason.
        self._publisher.publish(self._topic, record.data or b" ", attributes)
