"""Structured logs in Cloud Logging's structured format: one JSON object per line on stdout.

Cloud Run and Cloud Functions turn each line into a LogEntry: ``severity`` and ``message`` become the
entry's severity and text, the rest lands in ``jsonPayload`` and ``logging.googleapis.com/labels``
become entry labels. This is the format google-cloud-logging's StructuredLogHandler writes; it is
produced here with the standard library because importing google-cloud-logging costs ~300 ms of
cold start for no gain on this path.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOGGER_NAME = "alert_relay"
_OUTCOME_FIELDS = ("event_id", "source", "fingerprint", "route", "sink", "attempt", "outcome", "reason")


class StructuredFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if v is not None and v != ""})
            labels = {k: str(fields[k]) for k in ("event_id", "source", "outcome") if fields.get(k)}
            if labels:
                entry["logging.googleapis.com/labels"] = labels
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a record is emitted (servers and test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout  # not setStream(): it would flush the previous, maybe closed, stream
        super().emit(record)


def configure(level: str = "INFO", stream: TextIO | None = None) -> logging.Logger:
    """Install the structured handler on the relay's logger (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_alert_relay", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStdout()
    handler.setFormatter(StructuredFormatter())
    handler._alert_relay = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    # slack_sdk logs request URLs at DEBUG, and an incoming webhook's URL is a secret: never below INFO.
    slack_sdk_logger = logging.getLogger("slack_sdk")
    slack_sdk_logger.setLevel(max(logging.INFO, slack_sdk_logger.getEffectiveLevel()))
    return logger


def logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def outcome(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event outcome with the fields operators filter on."""
    unknown = set(fields) - set(_OUTCOME_FIELDS) - {"detail", "transport", "message_id", "verdict", "count"}
    if unknown:
        raise TypeError(f"unexpected log fields: {sorted(unknown)}")
    logger().log(level, message, extra={"fields": fields})
