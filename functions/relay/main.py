"""Relay function (entry point ``relay``): a Pub/Sub push envelope or a CloudEvent in; 200 to ack,
503 to have Pub/Sub redeliver with backoff.

Importing this module loads only functions-framework and the standard library: settings, routes,
the ledger and every client are created on the first request, once per instance.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import functions_framework

from shared.envelope import decode
from shared.errors import ConfigError, UnsupportedPayload

if TYPE_CHECKING:
    import flask

    from shared.pipeline import Relay

_relay: Relay | None = None


def _instance() -> Relay:
    global _relay
    if _relay is None:
        from shared.wiring import relay_from_environment

        _relay = relay_from_environment()
    return _relay


def _answer(body: dict[str, object], status: int) -> tuple[str, int, dict[str, str]]:
    return json.dumps(body), status, {"Content-Type": "application/json"}


@functions_framework.http
def relay(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    try:
        instance = _instance()
    except ConfigError as exc:
        # Bad configuration: answer non-2xx so Pub/Sub keeps the message until a fixed deploy.
        from shared import logs

        logs.configure()
        logs.logger().critical(str(exc), extra={"fields": {"outcome": "retry", "reason": exc.reason.value}})
        return _answer({"outcome": "retry", "reason": exc.reason.value, "detail": str(exc)}, 500)

    body = request.get_data()
    try:
        message = decode(body, dict(request.headers))
    except UnsupportedPayload as exc:
        outcome = instance.reject(body, exc.reason.value, str(exc))
    else:
        outcome = instance.handle(message)
    return _answer(outcome.as_dict(), outcome.http_status)
