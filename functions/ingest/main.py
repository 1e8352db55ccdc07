"""Ingest function (entry point ``ingest``): authenticated webhooks from Cloud Monitoring,
Alertmanager and ``alert-relay publish``, validated and published to the alerts topic.

Importing this module loads only functions-framework and the standard library; settings and the
Pub/Sub client are created on the first request, once per instance.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import functions_framework

from shared.errors import ConfigError

if TYPE_CHECKING:
    import flask

    from shared.ingest import Ingest

_ingest: Ingest | None = None


def _instance() -> Ingest:
    global _ingest
    if _ingest is None:
        from shared.ingest import ingest_from_environment

        _ingest = ingest_from_environment()
    return _ingest


@functions_framework.http
def ingest(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    try:
        instance = _instance()
    except ConfigError as exc:
        from shared import logs

        logs.configure()
        logs.logger().critical(str(exc), extra={"fields": {"outcome": "retry", "reason": exc.reason.value}})
        return json.dumps({"error": exc.reason.value}), 500, {"Content-Type": "application/json"}

    limit = instance.settings.ingest_max_body_bytes
    # Read at most one byte past the limit: an oversized body is refused without buffering it all.
    body = request.stream.read(limit + 1)
    answer = instance.handle(
        method=request.method,
        headers=dict(request.headers),
        query=request.args.to_dict(),
        body=body,
        content_length=request.content_length,
    )
    return json.dumps(answer.body), answer.status, {"Content-Type": "application/json", **answer.headers}
