"""A generic JSON webhook receiver on 127.0.0.1 (a stand-in for downstream HTTP sinks).

Every request is recorded in ``calls``; requests answered by the default (non-scripted) behaviour
are also listed in ``received`` -- i.e. what the sink actually accepted. Script failures with
``server.script("/hooks/x", [Respond(status=503), Stall(seconds=2)])`` (route = path, ``"*"`` = any).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.http import Call, Respond, ScriptedHTTPServer

__all__ = ["FakeWebhookServer", "ReceivedWebhook"]


@dataclass(frozen=True)
class ReceivedWebhook:
    """A request the receiver accepted. ``headers`` has lower-cased names; ``body`` is the raw bytes."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FakeWebhookServer(ScriptedHTTPServer):
    """Accepts any method on any path; answers ``default`` (200, empty body) unless scripted."""

    def __init__(self, *, default: Respond | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.default = default or Respond(status=200)
        self._received: list[ReceivedWebhook] = []

    def url_for(self, path: str = "/hook") -> str:
        return f"{self.url}/{path.lstrip('/')}"

    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)

    def received_at(self, path: str) -> list[ReceivedWebhook]:
        with self._lock:
            return [r for r in self._received if r.path == path]

    def wait_for_received(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        """Block until at least ``count`` requests were accepted (for asynchronous senders)."""
        self.wait_for(lambda s: len(s._received) >= count, timeout, what=f"{count} webhook(s)")
        return self.received

    def _reset_state(self) -> None:
        self._received.clear()

    def _handle(self, call: Call) -> Respond:
        if 200 <= self.default.status < 300:  # only what the sink accepted counts as received
            self._received.append(
                ReceivedWebhook(call.method, call.path, dict(call.query), dict(call.headers), call.raw)
            )
        return self.default
