"""Routing: which receivers an event goes to, and why.

The rules file (YAML) is validated once, at load, into ``RoutingConfig``; errors name the key, e.g.
``routes[2].matchers[0]: invalid regex ...`` or ``routes[1].receivers: undefined receiver 'pager'``.

Matchers use Alertmanager's syntax (``name="value"``, ``!=``, ``=~`` and ``!~`` with fully anchored
regular expressions). ``source``, ``status``, ``severity``, ``source_status`` and ``title`` address the
event itself; any other name addresses a label (``labels.NAME`` when a label shares a reserved name).
Routes are tried in order; the first match wins unless it sets ``continue: true``. When nothing
matches, the ``default`` route applies, so no event is ever left without a decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ConfigError
from shared.model import AlertEvent

EVENT_FIELDS = ("source", "status", "severity", "source_status", "title")
_MATCHER = re.compile(r'^\s*([A-Za-z_][\w.\-/]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"


def parse_duration(text: str | int) -> timedelta:
    """'90s', '30m', '1h30m', '1d' (or an integer number of seconds) as a timedelta."""
    if isinstance(text, int) and text >= 0:
        return timedelta(seconds=text)
    match = _DURATION.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 15m, 4h, 1d or 1h30m")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(f'invalid matcher {text!r}: expected name="value" with =, !=, =~ or !~')
        name, op, raw = match.groups()
        value = raw.replace('\\"', '"').replace("\\\\", "\\")
        matcher = cls(name, op, value)  # type: ignore[arg-type]
        if op in ("=~", "!~"):
            try:
                _ = matcher.regex
            except re.error as exc:
                raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
        return matcher

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(rf"(?:{self.value})\Z")

    def target(self, event: AlertEvent) -> str:
        if self.name in EVENT_FIELDS:
            value = getattr(event, self.name)
            return str(getattr(value, "value", value))
        return event.labels.get(self.name.removeprefix("labels."), "")

    def matches(self, event: AlertEvent) -> bool:
        actual = self.target(event)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self.regex.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackTarget(_Strict):
    """Post to Slack: a channel with the bot token, or the incoming webhook when no token is set."""

    channel: Annotated[str, Field(min_length=1, max_length=80)]


class PubSubTarget(_Strict):
    """Publish the normalised event as JSON, with attributes for subscription filters."""

    topic: Annotated[
        str, Field(pattern=r"^(projects/[^/]+/topics/)?[A-Za-z][A-Za-z0-9_.~+%-]+$", max_length=400)
    ]


class WebhookTarget(_Strict):
    """POST the normalised event as JSON, signed with HMAC-SHA256 when a secret is named."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None


class Receiver(_Strict):
    slack: list[SlackTarget] = []
    pubsub: list[PubSubTarget] = []
    webhook: list[WebhookTarget] = []

    @model_validator(mode="after")
    def _not_empty(self) -> Receiver:
        if not (self.slack or self.pubsub or self.webhook):
            raise ValueError("a receiver needs at least one of slack, pubsub or webhook")
        return self


class Route(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    matchers: list[str] = []
    receivers: list[str]
    continue_: bool = Field(False, alias="continue")
    # A repeat of the same alert (same fingerprint and status) within this window is counted, not sent.
    suppress_for: timedelta = timedelta(0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, values: list[str]) -> list[str]:
        for index, text in enumerate(values):
            try:
                Matcher.parse(text)
            except ValueError as exc:
                raise ValueError(f"matchers[{index}]: {exc}") from None
        return values

    @field_validator("suppress_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)

    @cached_property
    def compiled(self) -> tuple[Matcher, ...]:
        return tuple(Matcher.parse(text) for text in self.matchers)


class DefaultRoute(_Strict):
    receivers: list[str]
    suppress_for: timedelta = timedelta(0)

    @field_validator("suppress_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)


class RoutingConfig(_Strict):
    version: Literal[1] = 1
    receivers: dict[Annotated[str, Field(pattern=_NAME)], Receiver]
    routes: list[Route] = []
    default: DefaultRoute

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        seen: set[str] = set()
        for index, route in enumerate(self.routes):
            if route.name in seen:
                raise ValueError(f"routes[{index}].name: duplicate route name {route.name!r}")
            seen.add(route.name)
            for name in route.receivers:
                if name not in self.receivers:
                    raise ValueError(
                        f"routes[{index}].receivers: undefined receiver {name!r} in route {route.name!r}"
                    )
        for name in self.default.receivers:
            if name not in self.receivers:
                raise ValueError(f"default.receivers: undefined receiver {name!r}")
        return self

    def match(self, event: AlertEvent) -> list[RouteDecision]:
        """The routes the event takes, in order; the default route when none matched."""
        taken: list[RouteDecision] = []
        for route in self.routes:
            if all(m.matches(event) for m in route.compiled):
                taken.append(RouteDecision(route.name, tuple(route.receivers), route.suppress_for))
                if not route.continue_:
                    break
        if not taken:
            taken.append(
                RouteDecision(DEFAULT_ROUTE, tuple(self.default.receivers), self.default.suppress_for)
            )
        return taken

    def explain(self, event: AlertEvent) -> list[str]:
        """Human-readable lines saying which routes match and why (``alert-relay routes test``)."""
        lines: list[str] = []
        stopped_at: str | None = None
        for route in self.routes:
            checks = []
            ok = True
            for matcher in route.compiled:
                hit = matcher.matches(event)
                ok = ok and hit
                checks.append(
                    f"{'✓' if hit else '✗'} {matcher} ({matcher.name} is {matcher.target(event)!r})"
                )
            if stopped_at is not None:
                lines.append(
                    f"route {route.name}: not evaluated (route {stopped_at} matched without continue)"
                )
                continue
            verdict = "MATCH" if ok else "no match"
            detail = "; ".join(checks) if checks else "no matchers: matches everything"
            lines.append(f"route {route.name}: {verdict}: {detail}")
            if ok:
                window = f", suppress repeats for {_human(route.suppress_for)}" if route.suppress_for else ""
                lines.append(
                    f"  -> receivers {', '.join(route.receivers) or '(none: dropped on purpose)'}{window}"
                )
                if route.continue_:
                    lines.append("  continue: true, so later routes are tried too")
                else:
                    stopped_at = route.name
        decisions = self.match(event)
        if decisions[0].route == DEFAULT_ROUTE:
            lines.append(
                f"default route: used (no route matched) -> receivers {', '.join(self.default.receivers)}"
            )
        else:
            lines.append("default route: not used (a route matched)")
        return lines


DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class RouteDecision:
    route: str
    receivers: tuple[str, ...]
    suppress_for: timedelta


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _format_errors(exc: ValidationError, origin: str) -> str:
    problems = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{loc}: {msg}" if loc else msg)
    return f"{origin}: " + "; ".join(problems)


def load_routes_text(text: str, origin: str = "routes") -> RoutingConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: must be a mapping with receivers, routes and default")
    try:
        return RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None


def bundled_routes_path() -> Path:
    return Path(__file__).parent / "defaults" / "routes.yaml"


def load_routes(path: Path | None = None) -> RoutingConfig:
    """Load and validate a routes file; the bundled example when ``path`` is None."""
    path = path or bundled_routes_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"RELAY_ROUTES: cannot read {path}: {exc.strerror}") from None
    return load_routes_text(text, origin=str(path))
