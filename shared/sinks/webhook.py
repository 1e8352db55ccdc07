"""Generic HTTP webhook: the normalised event as JSON, signed with HMAC-SHA256.

Signature scheme (documented in the README): ``X-Alert-Relay-Signature: v1=<hex>`` where
``<hex> = HMAC_SHA256(secret, "<X-Alert-Relay-Timestamp>.<raw body>")``. Receivers should reject
timestamps older than a few minutes. ``Idempotency-Key`` carries the event id, so a receiver can
drop the rare duplicate that a timeout after a successful POST can cause.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from pydantic import SecretStr

from shared.errors import DeliveryError, classify_http_status, retry_after, transport_error
from shared.model import AlertEvent
from shared.sinks import RequestSink

SIGNATURE_HEADER = "X-Alert-Relay-Signature"
TIMESTAMP_HEADER = "X-Alert-Relay-Timestamp"
USER_AGENT = "alert-relay/0.1"


def sign(secret: SecretStr, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.get_secret_value().encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class WebhookSink(RequestSink):
    kind = "webhook.post"

    def __init__(
        self,
        *,
        key: str,
        url: str,
        secret: SecretStr | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._clock = clock

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": event.event_id,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = "v1=<HMAC-SHA256 computed when sent>"
        body: dict[str, Any] = event.model_dump(mode="json")
        if repeat_count:
            body = {**body, "repeat_count": repeat_count}
        return {"method": "POST", "url": self.url, "headers": headers, "body": body}

    def send(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        host = urlsplit(self.url).netloc  # never the path or query: they may carry tokens
        what = f"webhook POST to {host}"
        body = json.dumps(request["body"], separators=(",", ":"), ensure_ascii=False).encode()
        headers = dict(request["headers"])
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        http_request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) enforced by config)
        try:
            with urllib.request.urlopen(http_request, timeout=self._timeout) as response:  # noqa: S310
                return {"status": response.status}
        except HTTPError as exc:
            reason, retryable = classify_http_status(exc.code)
            detail = exc.read(200).decode("utf-8", "replace").strip()
            raise DeliveryError(
                f"{what}: HTTP {exc.code} {detail}".rstrip(),
                reason=reason,
                retryable=retryable,
                retry_after=retry_after(exc.headers),
            ) from None
        except (TimeoutError, URLError, OSError) as exc:
            raise transport_error(what, exc) from None
