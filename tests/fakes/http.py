"""Shared machinery for the HTTP test doubles: a threaded loopback server with scripted answers.

Subclasses (the fake Slack and the generic webhook receiver) only decide how a request is *routed*
(a route key such as ``"chat.postMessage"`` or ``"/hooks/alerts"``) and how it is *handled* when no
script applies. Everything else -- recording every raw call, scripted failures, stalls, clean
shutdown -- lives here so both fakes behave identically.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "ANY_ROUTE",
    "Action",
    "Call",
    "Respond",
    "ScriptedHTTPServer",
    "Stall",
]

#: Route key of scripts that apply to any request (used after the route-specific queue is empty).
ANY_ROUTE = "*"


@dataclass(frozen=True)
class Respond:
    """Answer with exactly this status/body/headers instead of the fake's normal behaviour.

    ``body``: dict/list -> JSON, str -> text/plain (utf-8), bytes -> as is, None -> empty.
    A scripted answer never records a delivered message, even if it looks successful.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            payload, ctype = b"", "text/plain; charset=utf-8"
        elif isinstance(self.body, bytes):
            payload, ctype = self.body, "application/octet-stream"
        elif isinstance(self.body, str):
            payload, ctype = self.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(self.body).encode(), "application/json; charset=utf-8"
        return payload, self.content_type or ctype


@dataclass(frozen=True)
class Stall:
    """Hold the request for ``seconds`` (so a client timeout fires), then:

    - ``then`` given: answer with it (nothing is recorded as delivered);
    - ``deliver=True``: handle the request normally (it IS recorded if the fake answers ok) -- models
      "the server did the work but the client had already given up", i.e. the duplicate-post risk;
    - otherwise: close the connection without answering (nothing is recorded as delivered).
      Note slack_sdk retries a dropped connection (RemoteDisconnected) by default if it is still waiting.

    ``stop()``/``reset()`` cut stalls short so teardown stays fast.
    """

    seconds: float
    then: Respond | None = None
    deliver: bool = False


Action = Respond | Stall


@dataclass
class Call:
    """One raw HTTP request as received, recorded whatever its outcome.

    ``headers`` has lower-cased names. ``status`` is the answered status, or None while the call is
    stalled / if the connection was dropped without an answer. ``action`` is the scripted action that
    was applied (None = normal handling).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    route: str
    status: int | None = None
    action: Action | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: bytes
    content_type: str
    headers: Mapping[str, str]

    @classmethod
    def of(cls, respond: Respond) -> _Reply:
        payload, ctype = respond.encode()
        return cls(respond.status, payload, ctype, dict(respond.headers))


class _Httpd(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers open connections so stop() can cut idle keep-alives."""

    daemon_threads = True
    block_on_close = True  # server_close() joins handler threads: no thread outlives the fake

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.open_requests: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open_requests.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open_requests.discard(request)
        super().shutdown_request(request)

    def cut_open_connections(self) -> None:
        with self.open_lock:
            sockets = list(self.open_requests)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()  # trailing CRLF (no trailers expected)
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON or form bodies (as slack_sdk sends them) -> python values; anything else -> None."""
    if not raw:
        return None
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError:
        return None


class ScriptedHTTPServer:
    """Base of the fakes: a real HTTP server on 127.0.0.1 (port 0 = free port) in a background thread.

    Subclasses implement ``_route(call) -> str`` and ``_handle(call) -> Respond``. ``_handle`` runs
    under ``self._lock`` and must record delivered messages itself (only when answering success).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._scripts: dict[str, deque[Action]] = {}
        self._abort_stalls = threading.Event()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._abort_stalls.clear()
        self._httpd = _Httpd(self._address, self._make_handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._abort_stalls.set()  # release stalled handlers first, or server_close() would wait for them
        httpd.shutdown()
        httpd.cut_open_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------------------------
    def script(self, route: str, actions: Iterable[Action] | Action) -> None:
        """Queue actions applied, in order, to the next calls on ``route`` (``"*"`` = any route)."""
        items = [actions] if isinstance(actions, Respond | Stall) else list(actions)
        for item in items:
            if not isinstance(item, Respond | Stall):
                raise TypeError(f"script actions must be Respond or Stall, got {item!r}")
        with self._lock:
            self._scripts.setdefault(route, deque()).extend(items)

    def pending(self, route: str | None = None) -> int:
        """Scripted actions not consumed yet (for ``route``, or in total)."""
        with self._lock:
            if route is not None:
                return len(self._scripts.get(route, ()))
            return sum(len(q) for q in self._scripts.values())

    def _next_action(self, route: str) -> tuple[Action | None, threading.Event]:
        # The abort event is taken together with the action: reset() swaps it under the same lock.
        with self._lock:
            for key in (route, ANY_ROUTE):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft(), self._abort_stalls
            return None, self._abort_stalls

    # -- recorded state --------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        """Every request received, in arrival order, whatever its outcome (a snapshot copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, route: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.route == route]

    def reset(self) -> None:
        """Forget calls, scripts and recorded messages; cut current stalls short."""
        with self._lock:
            released, self._abort_stalls = self._abort_stalls, threading.Event()
            released.set()  # stalls in progress end now; stalls scripted later still stall
            self._calls.clear()
            self._scripts.clear()
            self._reset_state()
            self._changed.notify_all()

    def _reset_state(self) -> None:
        """Subclasses clear their recorded messages here (called under the lock)."""

    def wait_for(
        self, predicate: Callable[[Self], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Block until ``predicate(self)`` holds (e.g. an asynchronous push arrived).

        Raises AssertionError on timeout so a test failure reads well.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._changed.wait(remaining)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- subclass hooks --------------------------------------------------------------------------
    def _route(self, call: Call) -> str:
        return call.path

    def _handle(self, call: Call) -> Respond:
        return Respond(status=200)

    # -- request handling ------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        raw = _read_body(handler)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        call = Call(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            raw=raw,
            body=parse_body(raw, headers.get("content-type", "")),
            route="",
        )
        call.route = self._route(call)
        with self._lock:
            self._calls.append(call)
            self._changed.notify_all()

        action, abort = self._next_action(call.route)
        call.action = action
        reply: _Reply | None
        if isinstance(action, Stall):
            aborted = abort.wait(action.seconds)
            if aborted:
                reply = None
            elif action.then is not None:
                reply = _Reply.of(action.then)
            elif action.deliver:
                reply = self._handle_locked(call)
            else:
                reply = None
        elif isinstance(action, Respond):
            reply = _Reply.of(action)
        else:
            reply = self._handle_locked(call)

        if reply is None:  # drop the connection without an answer
            handler.close_connection = True
            return
        with self._lock:
            call.status = reply.status  # set before the client can see the answer
            self._changed.notify_all()
        self._write(handler, reply)

    def _handle_locked(self, call: Call) -> _Reply:
        with self._lock:
            reply = _Reply.of(self._handle(call))
            self._changed.notify_all()
        return reply

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(reply.payload)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client gave up (e.g. timed out); nothing to do

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive for clients that pool connections
            timeout = 30  # bounds idle keep-alive reads; stop() also cuts them

            def _serve(self) -> None:
                try:
                    owner._dispatch(self)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silence per-request stderr logging; ``calls`` is the record."""

        return Handler
