"""Slack transports: the Web API with a bot token, the console stand-in, and the incoming-webhook sink.

Retries inside one request are few and bounded (one retry for a 429 whose Retry-After fits the
budget, a 5xx or a dropped connection); anything else that may still succeed raises a retryable
``DeliveryError`` so that Pub/Sub redelivers with backoff. Neither the token nor the webhook URL
ever appears in an error or a log line.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable, Mapping
from http.client import RemoteDisconnected
from typing import Any, TextIO
from urllib.error import URLError

from pydantic import SecretStr

from shared.errors import (
    DeliveryError,
    Reason,
    classify_http_status,
    is_timeout,
    retry_after,
    transport_error,
)
from shared.formatting.slack import format_event
from shared.model import AlertEvent
from shared.sinks import RequestSink

# Web API error codes (HTTP 200, ok=false) by what they mean for delivery.
_CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
_AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "no_permission",
    "ekm_access_denied",
}
_TRANSIENT_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
# Incoming-webhook bodies (plain text) for permanent failures.
_WEBHOOK_PERMANENT = {
    "channel_not_found": Reason.CHANNEL_ERROR,
    "channel_is_archived": Reason.CHANNEL_ERROR,
    "no_service": Reason.AUTH_ERROR,
    "invalid_token": Reason.AUTH_ERROR,
    "action_prohibited": Reason.AUTH_ERROR,
    "invalid_payload": Reason.INVALID_REQUEST,
    "no_text": Reason.INVALID_REQUEST,
    "invalid_blocks": Reason.INVALID_REQUEST,
    "user_not_found": Reason.INVALID_REQUEST,
}


def bounded_retry_handler(*, max_wait: float, sleep: Callable[[float], None] = time.sleep) -> Any:
    """slack-sdk RetryHandler allowing one retry: 429 within ``max_wait``, 5xx, dropped connections.

    Timeouts are not retried here: the request may have been posted, and the time is already spent.
    Built on demand so that importing this module does not import slack_sdk's HTTP stack.
    """
    from slack_sdk.http_retry.handler import RetryHandler

    class BoundedRetryHandler(RetryHandler):
        def __init__(self) -> None:
            super().__init__(max_retry_count=1)

        def _wait(self, response: Any) -> float:
            if response is not None and response.status_code == 429:
                after = retry_after(response.headers)
                return 1.0 if after is None else after
            return 0.5

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is not None:
                if response.status_code == 429:
                    return self._wait(response) <= max_wait
                return response.status_code in (500, 502, 503, 504)
            if is_timeout(error):
                return False
            return isinstance(error, URLError | ConnectionResetError | RemoteDisconnected)

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            state.next_attempt_requested = True
            sleep(self._wait(response))
            state.increment_current_attempt()

    return BoundedRetryHandler()


def post_args(event: AlertEvent, channel: str, repeat_count: int = 0) -> dict[str, Any]:
    """The chat.postMessage arguments for an event."""
    args = format_event(event, repeat_count=repeat_count).as_post_args(channel)
    # Message metadata lets a later reconciliation find the message an event produced.
    args["metadata"] = {
        "event_type": "alert_relay_event",
        "event_payload": {"event_id": event.event_id, "fingerprint": event.fingerprint},
    }
    return args


class WebApiTransport:
    """chat.postMessage and chat.update with a bot token, through slack-sdk's WebClient."""

    def __init__(
        self,
        *,
        token: SecretStr,
        api_url: str = "https://slack.com/api/",
        timeout: float = 10.0,
        max_retry_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self._api_url = api_url
        self._timeout = timeout
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._client: Any = None

    def _web_client(self) -> Any:
        if self._client is None:
            from slack_sdk.web import WebClient

            self._client = WebClient(
                token=self._token.get_secret_value(),
                base_url=self._api_url,
                timeout=self._timeout,
                retry_handlers=[bounded_retry_handler(max_wait=self._max_retry_wait, sleep=self._sleep)],
            )
        return self._client

    def _call(self, method: str, args: Mapping[str, Any]) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError

        what = f"slack {method} to {args.get('channel', '?')}"
        try:
            response = self._web_client().api_call(method, json=dict(args))
        except SlackApiError as exc:
            raise classify_api_error(
                what, exc.response.status_code, exc.response.data, exc.response.headers
            ) from None
        except Exception as exc:  # transport errors of urllib, as slack_sdk lets them through
            raise transport_error(what, exc) from None
        return {"channel": response.get("channel", ""), "ts": response.get("ts", "")}

    def post(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("chat.postMessage", args)

    def update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("chat.update", args)


def classify_api_error(what: str, status: int, data: Any, headers: Mapping[str, Any] | None) -> DeliveryError:
    """Map a Slack Web API failure to a ``DeliveryError``: the one place that knows Slack's codes."""
    code = data.get("error", "") if isinstance(data, Mapping) else ""
    if status == 429 or code == "ratelimited":
        after = retry_after(headers)
        return DeliveryError(
            f"{what}: rate limited (Retry-After {after if after is not None else 'absent'})",
            reason=Reason.RATE_LIMITED,
            retryable=True,
            retry_after=after,
            code=code,
        )
    if status != 200:
        reason, retryable = classify_http_status(status)
        return DeliveryError(
            f"{what}: HTTP {status} {code}".rstrip(), reason=reason, retryable=retryable, code=code
        )
    if code in _CHANNEL_ERRORS:
        return DeliveryError(f"{what}: {code}", reason=Reason.CHANNEL_ERROR, retryable=False, code=code)
    if code in _AUTH_ERRORS:
        return DeliveryError(f"{what}: {code}", reason=Reason.AUTH_ERROR, retryable=False, code=code)
    if code in _TRANSIENT_ERRORS:
        return DeliveryError(f"{what}: {code}", reason=Reason.SERVER_ERROR, retryable=True, code=code)
    return DeliveryError(
        f"{what}: {code or 'unknown error'}", reason=Reason.INVALID_REQUEST, retryable=False, code=code
    )


class SlackWebhookSink(RequestSink):
    """An incoming webhook: one fixed channel, no updates (each event is its own message).

    The URL itself is the secret.
    """

    kind = "slack.webhook"

    def __init__(
        self,
        *,
        key: str,
        url: SecretStr,
        timeout: float = 10.0,
        max_retry_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self._url = url
        self._timeout = timeout
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._client: Any = None

    def _webhook_client(self) -> Any:
        if self._client is None:
            from slack_sdk.webhook import WebhookClient

            self._client = WebhookClient(
                self._url.get_secret_value(),
                timeout=self._timeout,
                retry_handlers=[bounded_retry_handler(max_wait=self._max_retry_wait, sleep=self._sleep)],
            )
        return self._client

    def render(self, event: AlertEvent, *, repeat_count: int = 0) -> dict[str, Any]:
        return format_event(event, repeat_count=repeat_count).as_webhook_body()

    def send(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        what = "slack incoming webhook"
        try:
            response = self._webhook_client().send_dict(dict(request))
        except Exception as exc:
            raise transport_error(what, exc) from None
        if response.status_code == 200:
            return {"status": 200}
        body = (response.body or "").strip()[:100]
        if response.status_code == 429:
            after = retry_after(response.headers)
            raise DeliveryError(
                f"{what}: rate limited", reason=Reason.RATE_LIMITED, retryable=True, retry_after=after
            )
        if body in _WEBHOOK_PERMANENT and response.status_code < 500:
            raise DeliveryError(
                f"{what}: HTTP {response.status_code} {body}",
                reason=_WEBHOOK_PERMANENT[body],
                retryable=False,
            )
        reason, retryable = classify_http_status(response.status_code)
        raise DeliveryError(
            f"{what}: HTTP {response.status_code} {body}".rstrip(), reason=reason, retryable=retryable
        )


class ConsoleTransport:
    """Local stand-in when no Slack credentials are configured: prints each API call as JSON.

    It answers like Slack (a channel and a unique ``ts``), so incident messages are "updated" too.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._counter = itertools.count(1)

    def _print(self, method: str, args: Mapping[str, Any]) -> None:
        stream = self._stream or sys.stdout
        stream.write(f"--- slack {method} (console: no SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL set) ---\n")
        stream.write(json.dumps(dict(args), indent=2, ensure_ascii=False) + "\n")
        stream.flush()

    def post(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._print("chat.postMessage", args)
        return {"channel": str(args.get("channel", "")), "ts": f"{time.time():.0f}.{next(self._counter):06d}"}

    def update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._print("chat.update", args)
        return {"channel": str(args.get("channel", "")), "ts": str(args.get("ts", ""))}
