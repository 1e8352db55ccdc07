"""Every failure says, in its type, whether trying again can help, with a machine-readable reason."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    # input: never retryable
    MALFORMED_ENVELOPE = "malformed_envelope"
    MALFORMED_PAYLOAD = "malformed_payload"
    UNKNOWN_SOURCE = "unknown_source"
    INVALID_EVENT = "invalid_event"
    # configuration
    CONFIG_ERROR = "config_error"
    # delivery
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CLIENT_ERROR = "client_error"
    AUTH_ERROR = "auth_error"
    CHANNEL_ERROR = "channel_error"
    INVALID_REQUEST = "invalid_request"
    IN_PROGRESS = "in_progress"  # another instance holds the delivery lease
    RETRIES_EXHAUSTED = "retries_exhausted"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    DEAD_LETTER_FAILED = "dead_letter_failed"
    INTERNAL_ERROR = "internal_error"  # a bug: retried, then dead-lettered with this reason


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""

    retryable: bool = False
    reason: Reason = Reason.INVALID_EVENT

    def __init__(self, message: str, *, reason: Reason | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self)


class PermanentError(RelayError):
    """Trying again with the same input can never succeed."""

    retryable = False


class RetryableError(RelayError):
    """A later attempt may succeed (rate limits, outages, timeouts)."""

    retryable = True


class UnsupportedPayload(PermanentError):
    """The message is not something the relay can read; the text says what is wrong."""

    reason = Reason.MALFORMED_PAYLOAD


class ConfigError(PermanentError):
    """Configuration is invalid; the text names the offending key."""

    reason = Reason.CONFIG_ERROR


class DeliveryError(RelayError):
    """A sink could not deliver; ``retryable`` and ``reason`` decide what happens next."""

    def __init__(
        self,
        message: str,
        *,
        reason: Reason,
        retryable: bool,
        retry_after: float | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message, reason=reason, retryable=retryable)
        self.retry_after = retry_after
        # The remote side's own error code (e.g. Slack's "message_not_found"), when it gave one.
        self.code = code


def classify_http_status(status: int) -> tuple[Reason, bool]:
    """One place that says what an HTTP status means for delivery: (reason, retryable)."""
    if status == 429:
        return Reason.RATE_LIMITED, True
    if status in (408, 425):
        return Reason.TIMEOUT, True
    if status >= 500:
        return Reason.SERVER_ERROR, True
    if status in (401, 403):
        return Reason.AUTH_ERROR, False
    return Reason.CLIENT_ERROR, False


def is_timeout(error: BaseException | None) -> bool:
    """A socket timeout, bare or wrapped by urllib (a URLError whose reason is the timeout)."""
    return isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError)


def transport_error(what: str, exc: BaseException) -> DeliveryError:
    """A request that got no HTTP answer: a timeout or a connection failure, both retryable."""
    if is_timeout(exc):
        return DeliveryError(f"{what}: timed out", reason=Reason.TIMEOUT, retryable=True)
    # str() of a URLError's reason names host and errno, never the path or a token.
    reason = getattr(exc, "reason", exc)
    return DeliveryError(
        f"{what}: connection failed ({type(exc).__name__}: {reason})",
        reason=Reason.CONNECTION_ERROR,
        retryable=True,
    )


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Retry-After header (any case; a value or a list of values), None when absent or bad."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None
