"""A fake Slack speaking the Web API (chat.postMessage / chat.update / auth.test) and incoming webhooks.

Point the real clients at it::

    WebClient(token=server.token, base_url=server.api_url)   # == f"{server.url}/api/"
    WebhookClient(server.webhook_url)

Behaviour follows Slack's documented protocol (errors are HTTP 200 ``{"ok": false, "error": ...}``,
webhooks answer ``ok`` / ``no_service`` as text/plain). A message is recorded in ``posts`` only when
the fake answers success; scripted failures and stalls never record one (see ``tests.fakes.http``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import Call, Respond, ScriptedHTTPServer

__all__ = [
    "DEFAULT_ALIASES",
    "DEFAULT_CHANNELS",
    "DEFAULT_TOKEN",
    "FakeSlackServer",
    "SlackPost",
    "SlackUpdate",
]

DEFAULT_TOKEN = "xoxb-test-token"
DEFAULT_CHANNELS = frozenset({"C0ALERTS", "C0PLATFORM", "C0RESOLVED"})
DEFAULT_ALIASES: Mapping[str, str] = {
    "#alerts": "C0ALERTS",
    "#platform": "C0PLATFORM",
    "#resolved": "C0RESOLVED",
}
#: 2026-01-01T00:00:00Z -- first ts is "1767225600.000100", then increasing by 100 µs.
DEFAULT_TS_START = 1_767_225_600

TEAM_ID, BOT_USER_ID, BOT_ID, APP_ID = "T0TEST0000", "U0RELAYBOT", "B0RELAYBOT", "A0RELAYAPP"
WEBHOOK_ROUTE = "webhook"

# Limits Slack enforces server-side (protocols.md §5); enough to exercise the relay's fallbacks.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_POST_TEXT = 40_000  # longer text is truncated with a "message_truncated" warning
MAX_UPDATE_TEXT = 4_000  # chat.update answers msg_too_long


@dataclass(frozen=True)
class SlackPost:
    """A message Slack accepted (chat.postMessage or an incoming webhook)."""

    channel: str  # always the channel ID, even when posted by name
    ts: str
    text: str
    blocks: list[Any] | None
    attachments: list[Any] | None
    thread_ts: str | None
    via: str  # "chat.postMessage" | "webhook"
    args: dict[str, Any] = field(repr=False)  # the full request arguments as Slack parsed them


@dataclass(frozen=True)
class SlackUpdate:
    """A successful chat.update."""

    channel: str
    ts: str
    text: str
    blocks: list[Any] | None
    attachments: list[Any] | None
    args: dict[str, Any] = field(repr=False)


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


def _ok(**fields: Any) -> Respond:
    return Respond(body={"ok": True, **fields})


class FakeSlackServer(ScriptedHTTPServer):
    """Fake Slack on 127.0.0.1; use as a context manager or via the ``slack_server`` fixture.

    Route keys for ``script()``: the API method (``"chat.postMessage"``, ``"chat.update"``,
    ``"auth.test"``), ``"webhook"`` for incoming webhooks, ``"*"`` for anything.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        aliases: Mapping[str, str] | None = None,
        webhooks: Mapping[str, str] | None = None,
        ts_start: int = DEFAULT_TS_START,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.channels: set[str] = set(channels)
        self.aliases: dict[str, str] = dict(DEFAULT_ALIASES if aliases is None else aliases)
        unknown = {cid for cid in self.aliases.values() if cid not in self.channels}
        if unknown:
            raise ValueError(f"aliases point at unknown channels: {sorted(unknown)}")
        # Incoming-webhook paths -> the channel each webhook is bound to (as in Slack).
        self.webhooks: dict[str, str] = dict(
            webhooks
            if webhooks is not None
            else {
                f"/services/{TEAM_ID}/B0{cid[2:]}/{cid.lower()}{'x' * (24 - len(cid))}": cid
                for cid in sorted(self.channels)
            }
        )
        self._ts_start = ts_start
        self._ts_counter = itertools.count(1)  # never reset: ts stay unique for the server's lifetime
        self._posts: list[SlackPost] = []
        self._updates: list[SlackUpdate] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}

    # -- URLs ------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """``base_url`` for ``slack_sdk.WebClient`` (ends with ``/api/``)."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        """A valid incoming-webhook URL (bound to C0ALERTS with the default channels)."""
        preferred = [p for p, cid in self.webhooks.items() if cid == "C0ALERTS"] or list(self.webhooks)
        if not preferred:
            raise RuntimeError("no incoming webhooks configured")
        return f"{self.url}{preferred[0]}"

    def webhook_url_for(self, channel: str) -> str:
        """The incoming-webhook URL bound to ``channel`` (ID or alias)."""
        cid = self.resolve_channel(channel) or channel
        for path, bound in self.webhooks.items():
            if bound == cid:
                return f"{self.url}{path}"
        raise KeyError(f"no webhook bound to {channel!r}")

    # -- recorded state --------------------------------------------------------------------------
    @property
    def posts(self) -> list[SlackPost]:
        """Successfully posted messages (API and webhooks), in order."""
        with self._lock:
            return list(self._posts)

    def posts_in(self, channel: str) -> list[SlackPost]:
        """Posts in one channel; ``channel`` may be an ID or an alias like ``"#alerts"``."""
        cid = self.resolve_channel(channel) or channel
        with self._lock:
            return [p for p in self._posts if p.channel == cid]

    @property
    def updates(self) -> list[SlackUpdate]:
        with self._lock:
            return list(self._updates)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Current state of a posted message (after updates), as Slack would return it."""
        cid = self.resolve_channel(channel) or channel
        with self._lock:
            msg = self._messages.get((cid, ts))
            return json.loads(json.dumps(msg)) if msg is not None else None

    def _reset_state(self) -> None:
        self._posts.clear()
        self._updates.clear()
        self._messages.clear()

    # -- channels --------------------------------------------------------------------------------
    def add_channel(self, channel_id: str, *names: str) -> None:
        with self._lock:
            self.channels.add(channel_id)
            for name in names:
                self.aliases[name if name.startswith("#") else f"#{name}"] = channel_id

    def resolve_channel(self, channel: str, *, allow_names: bool = True) -> str | None:
        """Channel ID for an ID or (if allowed) a name with or without '#'; None if unknown."""
        with self._lock:
            if channel in self.channels:
                return channel
            if allow_names:
                return self.aliases.get(channel if channel.startswith("#") else f"#{channel}")
            return None

    def _next_ts(self) -> str:
        micros = next(self._ts_counter) * 100
        return f"{self._ts_start + micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- routing / handling ----------------------------------------------------------------------
    def _route(self, call: Call) -> str:
        if call.path.startswith("/api/"):
            return call.path.removeprefix("/api/")
        if call.path.startswith("/services/"):
            return WEBHOOK_ROUTE
        return call.path

    def _handle(self, call: Call) -> Respond:
        if call.route == WEBHOOK_ROUTE:
            return self._incoming_webhook(call)
        if not call.path.startswith("/api/"):
            return Respond(status=404, body="Not Found")
        args = self._api_args(call)
        try:
            self._check_auth(call, args)
            match call.route:
                case "chat.postMessage":
                    return self._post_message(args)
                case "chat.update":
                    return self._update_message(args)
                case "auth.test":
                    return _ok(
                        url=f"{self.url}/",
                        team="Relay Test",
                        user="relay-bot",
                        team_id=TEAM_ID,
                        user_id=BOT_USER_ID,
                        bot_id=BOT_ID,
                    )
                case _:
                    raise _SlackError("unknown_method", req_method=call.route)
        except _SlackError as err:
            return Respond(body=err.body)  # Slack reports API errors with HTTP 200

    @staticmethod
    def _api_args(call: Call) -> dict[str, Any]:
        # Slack merges query-string and body arguments; form bodies carry JSON-encoded structures.
        args: dict[str, Any] = dict(call.query)
        if isinstance(call.body, dict):
            args.update(call.body)
        return args

    def _check_auth(self, call: Call, args: Mapping[str, Any]) -> None:
        auth = call.header("authorization") or ""
        token = auth[len("Bearer ") :].strip() if auth.lower().startswith("bearer ") else args.get("token")
        if not token:
            raise _SlackError("not_authed")
        if token != self.token:
            raise _SlackError("invalid_auth")

    def _post_message(self, args: dict[str, Any]) -> Respond:
        channel = args.get("channel")
        cid = self.resolve_channel(str(channel)) if channel else None
        if cid is None:
            raise _SlackError("channel_not_found")
        text, blocks, attachments = _content(args)
        warnings = []
        if len(text) > MAX_POST_TEXT:
            text = text[:MAX_POST_TEXT]
            warnings.append("message_truncated")
        ts = self._next_ts()
        message = self._message_json(ts, text, blocks, attachments, args)
        self._messages[(cid, ts)] = message
        self._posts.append(
            SlackPost(
                channel=cid,
                ts=ts,
                text=text,
                blocks=blocks,
                attachments=attachments,
                thread_ts=_opt_str(args.get("thread_ts")),
                via="chat.postMessage",
                args=args,
            )
        )
        extra: dict[str, Any] = {}
        if warnings:
            extra["warning"] = ",".join(warnings)
            extra["response_metadata"] = {"warnings": warnings}
        return _ok(channel=cid, ts=ts, message=message, **extra)

    def _update_message(self, args: dict[str, Any]) -> Respond:
        # chat.update needs the channel ID (what postMessage answered), not a name.
        channel = args.get("channel")
        cid = self.resolve_channel(str(channel), allow_names=False) if channel else None
        if cid is None:
            raise _SlackError("channel_not_found")
        ts = _opt_str(args.get("ts"))
        if ts is None or (cid, ts) not in self._messages:
            raise _SlackError("message_not_found")
        text, blocks, attachments = _content(args)
        if len(text) > MAX_UPDATE_TEXT:
            raise _SlackError("msg_too_long")
        message = self._messages[(cid, ts)]
        message["text"] = text
        for key, value in (("blocks", blocks), ("attachments", attachments)):
            if value is not None:
                message[key] = value
            else:
                message.pop(key, None)
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        self._updates.append(
            SlackUpdate(channel=cid, ts=ts, text=text, blocks=blocks, attachments=attachments, args=args)
        )
        return _ok(channel=cid, ts=ts, text=text, message=json.loads(json.dumps(message)))

    @staticmethod
    def _message_json(
        ts: str, text: str, blocks: list[Any] | None, attachments: list[Any] | None, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": text,
            "ts": ts,
        }
        if blocks is not None:
            message["blocks"] = blocks
        if attachments is not None:
            message["attachments"] = attachments
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        return message

    def _incoming_webhook(self, call: Call) -> Respond:
        cid = self.webhooks.get(call.path)
        if cid is None:
            return Respond(status=404, body="no_service")
        payload = call.body
        if isinstance(payload, dict) and "payload" in payload and len(payload) == 1:
            try:  # legacy form encoding: payload=<json>
                payload = json.loads(payload["payload"])
            except ValueError:
                payload = None
        if not isinstance(payload, dict):
            return Respond(status=400, body="invalid_payload")
        try:
            text, blocks, attachments = _content(payload)
        except _SlackError as err:
            return Respond(status=400, body=err.body["error"])
        ts = self._next_ts()
        self._messages[(cid, ts)] = self._message_json(ts, text, blocks, attachments, payload)
        self._posts.append(
            SlackPost(
                channel=cid,
                ts=ts,
                text=text,
                blocks=blocks,
                attachments=attachments,
                thread_ts=_opt_str(payload.get("thread_ts")),
                via=WEBHOOK_ROUTE,
                args=payload,
            )
        )
        return Respond(status=200, body="ok")


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _json_list(args: Mapping[str, Any], key: str) -> list[Any] | None:
    value = args.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, str):  # form-encoded requests carry blocks/attachments as JSON strings
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _SlackError(f"invalid_{key}_format") from exc
    if not isinstance(value, list):
        raise _SlackError(f"invalid_{key}_format")
    return value


def _content(args: Mapping[str, Any]) -> tuple[str, list[Any] | None, list[Any] | None]:
    """Validate text/blocks/attachments like Slack does; raises _SlackError."""
    text = "" if args.get("text") is None else str(args["text"])
    blocks = _json_list(args, "blocks")
    attachments = _json_list(args, "attachments")
    if not text and not blocks and not attachments:
        raise _SlackError("no_text")
    if blocks:
        errors = _block_errors(blocks)
        if errors:
            raise _SlackError("invalid_blocks", errors=errors)
    return text, blocks, attachments


def _block_errors(blocks: list[Any]) -> list[str]:
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    errors = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not block.get("type"):
            errors.append(f"missing required field: type [json-pointer:/blocks/{i}]")
            continue
        limit = {"section": MAX_SECTION_TEXT, "header": MAX_HEADER_TEXT}.get(block["type"])
        text = block.get("text")
        if limit and isinstance(text, dict) and len(str(text.get("text", ""))) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:/blocks/{i}/text/text]")
    return errors
