"""Downstream Pub/Sub topic: the normalised event as JSON, with attributes for subscription filters."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from shared.errors import DeliveryError, Reason
from shared.model import AlertEvent
from shared.sinks import RequestSink

# gRPC status names that a later attempt can get past.
_RETRYABLE_GRPC = {
    "DeadlineExceeded",
    "ServiceUnavailable",
    "InternalServerError",
    "TooManyRequests",
    "ResourceExhausted",
    "Aborted",
    "Unknown",
    "GatewayTimeout",
    "BadGateway",
    "RetryError",
    "TransportError",
}


class Publisher:
    """One google-cloud-pubsub PublisherClient per instance, created on first use.

    Creating it lazily keeps imports free of credentials and of the ~230 ms the library costs.
    """

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the server's acknowledgement; ``DeliveryError`` on failure."""
        from google.api_core import retry

        what = f"pubsub publish to {topic}"
        # The library's default retry runs for 10 minutes in the background; bound it by our answer time.
        policy = retry.Retry(initial=0.1, maximum=2.0, multiplier=2.0, timeout=self._timeout)
        try:
            future = self._publisher().publish(
                topic, data, retry=policy, timeout=self._timeout, **dict(attributes)
            )
            return str(future.result(timeout=self._timeout + 5))
        except DeliveryError:
            raise
        except TimeoutError:
            raise DeliveryError(f"{what}: timed out", reason=Reason.TIMEOUT, retryable=True) from None
        except Exception as exc:
            raise classify_publish_error(what, exc) from None


def classify_publish_error(what: str, exc: BaseException) -> DeliveryError:
    name = type(exc).__name__
    if name in _RETRYABLE_GRPC or isinstance(exc, ConnectionError | OSError):
        return DeliveryError(f"{what}: {name}: {exc}", reason=Reason.SERVER_ERROR, retryable=True)
    if name in ("PermissionDenied", "Unauthenticated", "Forbidden", "DefaultCredentialsError"):
        return DeliveryError(f"{what}: {name}", reason=Reason.AUTH_ERROR, retryable=False)
    if name in ("NotFound", "InvalidArgument", "BadRequest", "FailedPrecondition"):
        return DeliveryError(f"{what}: {name}: {exc}", reason=Reason.CLIENT_ERROR, retryable=False)
    # Unknown failures are treated as retryable: Pub/Sub's dead-letter policy bounds them.
    return DeliveryError(f"{what}: {name}: {exc}", reason=Reason.SERVER_ERROR, retryable=True)


class PubSubSink(RequestSink):
    kind = "pubsub.publish"

    def __init__(self, *, key: str, topic: str, publisher: Publisher) -> None:
        self.key = key
        self.topic = topic
        self._publisher = publisher

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        attributes = event.routing_attributes()
        if repeat_count:
            attributes["repeat_count"] = str(repeat_count)
        return {"topic": self.topic, "data": event.model_dump(mode="json"), "attributes": attributes}

    def send(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        import json

        data = json.dumps(request["data"], separators=(",", ":"), ensure_ascii=False).encode()
        message_id = self._publisher.publish(request["topic"], data, request["attributes"])
        return {"message_id": message_id}
