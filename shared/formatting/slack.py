"""Render an ``AlertEvent`` as a Slack Block Kit message (pure formatting: no network, no sending).

Two rules drive everything here:

* **Untrusted text never speaks Slack markup.** Titles, summaries, step messages, labels, notes and
  link titles come from workflows and publishers, so every one of them is escaped (``&``, ``<``, ``>``)
  before it is placed in mrkdwn: ``<!channel>`` or ``<https://evil|click>`` is shown, never executed.
  The only ``<...>`` markup in a message is the link markup built here from validated URLs.
* **The result always fits Slack's limits.** Slack rejects an over-long block outright
  (``invalid_blocks`` / ``msg_blocks_too_long``), which would lose the alert, so every text is cut
  deliberately — after escaping, never inside an entity — and a warning is logged naming the event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.basic_objects import EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST, JsonObject
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from shared.model import (
    AlertEvent,
    ArgoDetails,
    FailedStep,
    Link,
    MonitoringDetails,
    Severity,
    Source,
    Status,
)

logger = logging.getLogger(__name__)

# --- Slack's limits (slack_sdk validators and Slack API errors) ------------------------------------
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000  # a context element is a text object: same 3000 cap as any text object
MAX_BLOCKS = 50
FALLBACK_TEXT_MAX = 3000
# Slack answers ``msg_blocks_too_long`` for the message as a whole. The rule is undocumented: Slack staff
# spoke of "12,000 text characters with a buffer for block containers", and a message with 11,341 text
# characters was seen rejected (bolt-js #2509, #2867). So the text across all blocks stays well below.
TOTAL_TEXT_BUDGET = 10_000

# --- Our own caps, so that one long value cannot crowd out the rest of the message -----------------
FIELD_VALUE_MAX = 200
STEP_NAME_MAX = 100
STEP_MESSAGE_MAX = 300
MONITORING_VALUE_MAX = 300
RESOURCE_NAME_MAX = 500
LINK_TITLE_MAX = 100
NOTE_MAX = 500
FOOTER_MAX = 500
SHORT_ID = 12

HEADER_MARKER = "…"
INLINE_MARKER = "…"
SECTION_MARKER = "… (truncated)"

# Minimum text reserved for each later part while earlier parts take their share of the budget, so a
# huge summary cannot starve the failed-step list (and so on down the message).
_RESERVES = {"links": 500, "summary": 1000, "steps": 3000, "monitoring": 1000, "notes": 500}
_BUDGET_ORDER = ("header", "footer", "fields", "links", "summary", "steps", "monitoring", "notes")
# Room kept in a failed-steps section for the final "…and N more failed steps" line.
_MORE_LINE_RESERVE = 48
_ENTITY_MAX = len("&amp;")  # the longest entity escape() produces

_SEVERITY_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.ERROR: ":red_circle:",
    Severity.WARNING: ":warning:",
    Severity.INFO: ":information_source:",
}
_RESOLVED_EMOJI = ":large_green_circle:"
_SOURCE_NAMES = {
    Source.ARGO: "Argo Workflows",
    Source.CLOUD_MONITORING: "Cloud Monitoring",
    Source.ALERTMANAGER: "Alertmanager",
    Source.EVENT: "Event",
}
# A URL we are willing to put inside <url|title>: no pipe, angle bracket or whitespace can end the
# markup early or smuggle a second one in.
_SAFE_URL = re.compile(r"^https?://[^\s|<>]+$", re.IGNORECASE)
# In plain_text Slack parses no markup, but an opener like "<!", "<@", "<#" or "<scheme:" is still
# defused (with a look-alike angle bracket) so no client or downstream copy can ever read it as markup.
_PLAIN_MARKUP_OPENER = re.compile(r"<(?=[!@#]|[A-Za-z][A-Za-z0-9+.\-]*:)")
_SHORT_STATUS = re.compile(r"^[A-Za-z][A-Za-z ]{0,15}$")


@dataclass(frozen=True)
class SlackMessage:
    """A rendered message: fallback ``text`` (notifications, text-only clients) plus Block Kit blocks."""

    text: str
    blocks: tuple[Block, ...]

    def blocks_json(self) -> list[dict[str, Any]]:
        return [as_json(block) for block in self.blocks]

    def as_post_args(self, channel: str) -> dict[str, Any]:
        """Keyword arguments for ``WebClient.chat_postMessage``."""
        return {
            "channel": channel,
            "text": self.text,
            "blocks": self.blocks_json(),
            "unfurl_links": False,
            "unfurl_media": False,
        }

    def as_webhook_body(self) -> dict[str, Any]:
        """JSON body for an incoming webhook."""
        return {
            "text": self.text,
            "blocks": self.blocks_json(),
            "unfurl_links": False,
            "unfurl_media": False,
        }


def as_json(value: Any) -> Any:
    """What slack_sdk's ``JsonObject.to_dict()`` returns, without re-running every validator.

    ``to_dict()`` validates each object on every call by scanning ``dir()`` for validator methods:
    about 0.5 ms per message, three quarters of formatting. The renderer keeps every limit by
    construction, and the tests run slack_sdk's own validation and check ``as_json(b) ==
    b.to_dict()`` for every message shape, so runtime output is the same, only cheaper. Classes that
    define their own ``to_dict`` (options, confirm dialogs) are left to it.
    """
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if not isinstance(value, JsonObject):
        return value
    if type(value).to_dict is not JsonObject.to_dict:
        return value.to_dict()
    kind = getattr(value, "type", None)
    out: dict[str, Any] = {}
    for key in sorted(value.attributes):
        item = value.get_object_attribute(key)
        if item is None:
            continue
        allowed_empty = any(
            e["type"] == kind and e["property"] == key for e in EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST
        )
        if not allowed_empty and hasattr(item, "__len__") and len(item) == 0:
            continue
        out[key] = as_json(item)
    return out


def escape(text: str) -> str:
    """Escape Slack mrkdwn control characters so that untrusted text can neither ping nor link.

    ``&`` goes first so that the entities produced for ``<`` and ``>`` are not escaped twice.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Resolution:
    """How an incident ended, shown when its original message is updated in place."""

    at: datetime | None = None
    duration_seconds: float | None = None
    by: str = ""  # e.g. "run asr-nightly-9pq4m succeeded" (untrusted: escaped when shown)


def format_event(
    event: AlertEvent, *, repeat_count: int = 0, resolution: Resolution | None = None
) -> SlackMessage:
    """Render ``event`` as a Slack message that always satisfies Slack's block limits.

    ``repeat_count`` is how many times the same alert was seen again (shown in the footer when > 0).
    ``resolution`` renders the (firing) event as its resolved incident: the update of its message.
    """
    return _Renderer(event, repeat_count, resolution).render()


def format_reply(event: AlertEvent, text: str) -> SlackMessage:
    """A short thread reply about ``event``: one escaped sentence, plus the usual fallback text."""
    line = _cut(escape(_one_line(text)), SECTION_TEXT_MAX, SECTION_MARKER)
    return SlackMessage(text=line, blocks=(SectionBlock(text=_mrkdwn(line)),))


def blocks_text_length(blocks: Sequence[Block]) -> int:
    """Characters of text across ``blocks`` (what counts towards ``TOTAL_TEXT_BUDGET``)."""
    total = 0
    for block in blocks:
        if isinstance(block, HeaderBlock | SectionBlock) and block.text is not None:
            total += len(block.text.text)
        if isinstance(block, SectionBlock):
            total += sum(len(field.text) for field in block.fields or ())
        if isinstance(block, ContextBlock):
            total += sum(len(getattr(element, "text", "") or "") for element in block.elements)
    return total


# --- text helpers ----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces: for headers, fields, list items."""
    return " ".join(text.split())


def _cut(text: str, limit: int, marker: str, *, escaped: bool = True) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with ``marker`` when anything was cut.

    For escaped text the cut moves back to before an entity it would split ("&am" would show as
    garbage and a lone "&" could start a new entity with what follows).
    """
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return marker[: max(limit, 0)]
    cut = limit - len(marker)
    if escaped:
        amp = text.rfind("&", max(0, cut - _ENTITY_MAX + 1), cut)
        if amp != -1:
            semi = text.find(";", amp)
            if semi == -1 or semi >= cut:
                cut = amp
    return text[:cut].rstrip() + marker


def _plain(text: str) -> str:
    """Text for a plain_text object: one line, markup openers defused (no entities: they would show)."""
    return _PLAIN_MARKUP_OPENER.sub("\u2039", _one_line(text))


def _code_text(text: str) -> str:
    """Escaped text for inside `backticks`: a backtick in the value would end the code span early."""
    return escape(_one_line(text).replace("`", "'"))


def _mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: Slack must not auto-link URLs, channel names or bare "@here" in relayed text.
    return MarkdownTextObject(text=text, verbatim=True)


def _duration(seconds: float) -> str:
    """Human duration: 5004.2 -> "1h 23m 24s"; zero units are left out ("2h", "1d 5m")."""
    remaining = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def _utc(value: datetime, fmt: str) -> str:
    return value.astimezone(UTC).strftime(fmt)


def _short(identifier: str) -> str:
    return identifier[:SHORT_ID]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- rendering -------------------------------------------------------------------------------------


class _Renderer:
    """One rendering: tracks the remaining text budget and what had to be cut (for the warning)."""

    def __init__(self, event: AlertEvent, repeat_count: int, resolution: Resolution | None = None) -> None:
        self.event = event
        self.repeat_count = max(repeat_count, 0)
        self.resolution = resolution
        self.remaining = TOTAL_TEXT_BUDGET
        self.truncated: list[str] = []
        details = event.details
        self.argo = details if isinstance(details, ArgoDetails) else None
        self.monitoring = details if isinstance(details, MonitoringDetails) else None
        self.present = {
            "links": bool(event.links),
            "summary": bool(event.summary.strip()),
            "steps": bool(self.argo and (self.argo.failed_steps or self.argo.failed_steps_total)),
            "monitoring": self.monitoring is not None,
            "notes": bool(event.notes),
        }

    # budget bookkeeping

    def _allowance(self, part: str, cap: int) -> int:
        """Text ``part`` may use: its cap, less what later parts present in the message have reserved."""
        later = _BUDGET_ORDER[_BUDGET_ORDER.index(part) + 1 :]
        reserved = sum(_RESERVES.get(name, 0) for name in later if self.present.get(name))
        return max(0, min(cap, self.remaining - reserved))

    def _fit(self, text: str, limit: int, marker: str, part: str, *, escaped: bool = True) -> str:
        result = _cut(text, limit, marker, escaped=escaped)
        if result != text and part not in self.truncated:
            self.truncated.append(part)
        return result

    def _note_cut(self, part: str) -> None:
        if part not in self.truncated:
            self.truncated.append(part)

    def _spend(self, *texts: str) -> None:
        self.remaining -= sum(len(text) for text in texts)

    # the message

    def render(self) -> SlackMessage:
        event = self.event
        # Built in budget order (most important first), then laid out in reading order.
        header = self._header()
        footer = self._footer()
        summary_fields = self._fields()
        links = self._links()
        summary = self._summary()
        steps = self._failed_steps()
        monitoring = self._monitoring()
        notes = self._notes()

        blocks: list[Block] = [header]
        if self.resolution is not None:
            blocks.append(self._resolution(self.resolution))
        if summary is not None or summary_fields:
            blocks.append(
                SectionBlock(
                    text=_mrkdwn(summary) if summary is not None else None,
                    fields=summary_fields or None,
                )
            )
        blocks.extend(steps)
        if monitoring is not None:
            blocks.append(monitoring)
        if links is not None:
            blocks.append(links)
        if notes is not None:
            blocks.append(notes)
        blocks.append(footer)
        if len(blocks) > MAX_BLOCKS:  # cannot happen with today's layout; kept as a hard guarantee
            blocks = [*blocks[: MAX_BLOCKS - 1], footer]
            self._note_cut("blocks")

        text = self._fallback_text()
        if self.truncated:
            logger.warning(
                "Slack message for event %s truncated to fit Slack limits: %s",
                event.event_id,
                ", ".join(self.truncated),
                extra={"event_id": event.event_id, "truncated": list(self.truncated)},
            )
        return SlackMessage(text=text, blocks=tuple(blocks))

    def _resolution(self, resolution: Resolution) -> ContextBlock:
        parts = [":white_check_mark: *Resolved*"]
        if resolution.at is not None:
            parts.append(_utc(resolution.at, "%Y-%m-%d %H:%M:%S UTC"))
        if resolution.duration_seconds is not None:
            parts.append(f"after {_duration(resolution.duration_seconds)}")
        if resolution.by:
            parts.append(escape(_one_line(resolution.by)))
        text = self._fit(" · ".join(parts), FOOTER_MAX, INLINE_MARKER, "resolution")
        self._spend(text)
        return ContextBlock(elements=[_mrkdwn(text)])

    def _resolved(self) -> bool:
        return self.resolution is not None or self.event.status is Status.RESOLVED

    def _short_status(self) -> str:
        event = self.event
        if self.resolution is not None:
            return "RESOLVED"
        # Argo's own phase ("Failed", "Error", "Succeeded") says more than firing/resolved; it is
        # used only when it is a few plain letters, since it is publisher-supplied text.
        if event.source is Source.ARGO and _SHORT_STATUS.match(event.source_status):
            return event.source_status.upper()
        return event.status.value.upper()

    def _header(self) -> HeaderBlock:
        event = self.event
        emoji = _RESOLVED_EMOJI if self._resolved() else _SEVERITY_EMOJI[event.severity]
        prefix = f"{emoji} {self._short_status()}  "
        title = self._fit(
            _plain(event.title), HEADER_MAX - len(prefix), HEADER_MARKER, "header", escaped=False
        )
        text = prefix + title
        self._spend(text)
        return HeaderBlock(text=PlainTextObject(text=text, emoji=True))

    def _footer(self) -> ContextBlock:
        event = self.event
        parts = [
            "alert-relay",
            f"source {escape(event.source.value)}",
            f"event `{_code_text(_short(event.event_id))}`",
            f"fingerprint `{_code_text(_short(event.fingerprint))}`",
        ]
        if self.repeat_count:
            parts.append(f"repeated {_plural(self.repeat_count, 'time')}")
        text = self._fit(" · ".join(parts), self._allowance("footer", FOOTER_MAX), INLINE_MARKER, "footer")
        self._spend(text)
        return ContextBlock(elements=[_mrkdwn(text)])

    def _field_values(self) -> list[tuple[str, str]]:
        event = self.event
        values: list[tuple[str, str]] = []
        status = event.status.value
        if event.source_status and event.source_status.lower() != status:
            status = f"{status} ({event.source_status})"
        values.append(("Status", status))
        values.append(("Severity", event.severity.value))
        duration = event.duration_seconds
        if duration is None and event.started_at and event.ended_at and event.ended_at >= event.started_at:
            duration = (event.ended_at - event.started_at).total_seconds()
        if duration is not None:
            values.append(("Duration", _duration(duration)))
        if event.started_at:
            values.append(("Started", _utc(event.started_at, "%Y-%m-%d %H:%M:%S UTC")))
        for key, name in (("env", "Env"), ("team", "Team")):
            if event.labels.get(key):
                values.append((name, event.labels[key]))
        namespace = self.argo.namespace if self.argo else event.labels.get("namespace", "")
        if namespace:
            values.append(("Namespace", namespace))
        if self.argo:
            values.append(("Workflow", self.argo.workflow))
        if self.monitoring and self.monitoring.project_id:
            values.append(("Project", self.monitoring.project_id))
        values.append(("Source", _SOURCE_NAMES.get(event.source, event.source.value)))
        return values

    def _fields(self) -> list[MarkdownTextObject]:
        values = self._field_values()
        if len(values) > MAX_FIELDS:
            # Source is always last and the least useful: drop from just before it.
            values = [*values[: MAX_FIELDS - 1], values[-1]]
            self._note_cut("fields")
        allowance = self._allowance("fields", MAX_FIELDS * (FIELD_VALUE_MAX + 32))
        fields: list[MarkdownTextObject] = []
        for name, raw in values:
            value = self._fit(
                escape(_one_line(raw)), min(FIELD_VALUE_MAX, FIELD_TEXT_MAX), INLINE_MARKER, "fields"
            )
            text = f"*{name}*\n{value}"
            if len(text) > allowance:
                self._note_cut("fields")
                break
            allowance -= len(text)
            self._spend(text)
            fields.append(_mrkdwn(text))
        return fields

    def _summary(self) -> str | None:
        if not self.present["summary"]:
            return None
        allowance = self._allowance("summary", SECTION_TEXT_MAX)
        text = self._fit(escape(self.event.summary.strip()), allowance, SECTION_MARKER, "summary")
        self._spend(text)
        return text or None

    def _step_line(self, step: FailedStep) -> str:
        name = self._fit(escape(_one_line(step.name)), STEP_NAME_MAX, INLINE_MARKER, "failed steps")
        line = f"• *{name}*"
        if step.template:
            template = self._fit(_code_text(step.template), STEP_NAME_MAX, INLINE_MARKER, "failed steps")
            line += f" (template `{template}`)"
        detail = _one_line(step.message) or step.phase
        if detail:
            line += " — " + self._fit(escape(detail), STEP_MESSAGE_MAX, INLINE_MARKER, "failed steps")
        if step.attempts > 1:
            line += f" · after {step.attempts} attempts"
        if step.finished_at:
            line += f" · {_utc(step.finished_at, '%H:%M:%S UTC')}"
        return line

    def _failed_steps(self) -> list[SectionBlock]:
        """The leaf steps that failed, as many as fit, spread over sections of at most 3000 chars."""
        if not self.argo or not self.present["steps"]:
            return []
        steps = self.argo.failed_steps
        total = max(self.argo.failed_steps_total, len(steps))
        allowance = self._allowance("steps", self.remaining)
        heading = "*What failed*"
        sections: list[list[str]] = [[heading]]
        section_len = len(heading)
        used = len(heading)
        shown = 0
        for step in steps:
            line = self._step_line(step)
            cost = len(line) + 1  # with its newline
            if used + cost + _MORE_LINE_RESERVE > allowance:
                break
            if section_len + cost + _MORE_LINE_RESERVE > SECTION_TEXT_MAX:
                sections.append([])
                section_len = -1  # the first line of a section has no newline before it
            sections[-1].append(line)
            section_len += cost
            used += cost
            shown += 1
        if shown < len(steps):
            self._note_cut("failed steps")
        if total > shown:
            # Also when the parser already cut the list to MAX_FAILED_STEPS: say how many are missing.
            missing = total - shown
            sections[-1].append(f"…and {missing} more failed {'step' if missing == 1 else 'steps'}")
        blocks = []
        for lines in sections:
            text = "\n".join(lines)
            self._spend(text)
            blocks.append(SectionBlock(text=_mrkdwn(text)))
        return blocks

    def _monitoring(self) -> SectionBlock | None:
        details = self.monitoring
        if details is None:
            return None

        def code(value: str, cap: int = MONITORING_VALUE_MAX) -> str:
            return "`" + self._fit(_code_text(value), cap, INLINE_MARKER, "monitoring") + "`"

        def plain(value: str) -> str:
            return self._fit(escape(_one_line(value)), MONITORING_VALUE_MAX, INLINE_MARKER, "monitoring")

        lines: list[str] = []
        if details.observed_value or details.threshold_value:
            observed = code(details.observed_value) if details.observed_value else "—"
            line = f"*Observed* {observed}"
            if details.threshold_value:
                line += f" vs threshold {code(details.threshold_value)}"
            lines.append(line)
        policy = []
        if details.policy_name:
            policy.append(f"*Policy* {plain(details.policy_name)}")
        if details.condition_name:
            policy.append(f"*Condition* {plain(details.condition_name)}")
        if policy:
            lines.append(" · ".join(policy))
        if details.resource_type or details.resource_name:
            resource = plain(details.resource_type) if details.resource_type else ""
            if details.resource_name:
                resource = f"{resource} {code(details.resource_name, RESOURCE_NAME_MAX)}".strip()
            lines.append(f"*Resource* {resource}")
        if details.metric_type:
            lines.append(f"*Metric* {code(details.metric_type)}")
        lines.append(f"*Incident* {code(details.incident_id)}")
        allowance = self._allowance("monitoring", SECTION_TEXT_MAX)
        # Whole lines only: cutting mid-line could split a `code span`.
        kept: list[str] = []
        for line in lines:
            if len("\n".join([*kept, line])) > allowance:
                self._note_cut("monitoring")
                break
            kept.append(line)
        if not kept:
            return None
        text = "\n".join(kept)
        self._spend(text)
        return SectionBlock(text=_mrkdwn(text))

    def _links(self) -> SectionBlock | None:
        if not self.event.links:
            return None
        allowance = self._allowance("links", SECTION_TEXT_MAX)
        text = "*Links*"
        if len(text) > allowance:
            self._note_cut("links")
            return None
        for link in self.event.links:
            candidate = f"{text}{'  ' if text == '*Links*' else ' · '}{self._link(link)}"
            if len(candidate) > allowance:
                # Whole links or nothing: a cut link would be broken markup.
                self._note_cut("links")
                break
            text = candidate
        if text == "*Links*":
            return None
        self._spend(text)
        return SectionBlock(text=_mrkdwn(text))

    def _link(self, link: Link) -> str:
        title = self._fit(escape(_one_line(link.title)), LINK_TITLE_MAX, INLINE_MARKER, "links") or "link"
        if not _SAFE_URL.match(link.url):
            # Not safe inside <url|title>: show the title alone rather than risk broken or hostile markup.
            return f"{title} (link withheld: unsafe URL)"
        # Only "&" can remain in a safe URL; Slack decodes &amp; inside link markup.
        return f"<{escape(link.url)}|{title}>"

    def _notes(self) -> ContextBlock | None:
        if not self.event.notes:
            return None
        allowance = self._allowance("notes", CONTEXT_ELEMENTS_MAX * CONTEXT_TEXT_MAX)
        elements: list[MarkdownTextObject] = []
        for note in self.event.notes[:CONTEXT_ELEMENTS_MAX]:
            limit = min(NOTE_MAX, CONTEXT_TEXT_MAX, allowance)
            if limit < 40:  # too little room left for a readable note
                self._note_cut("notes")
                break
            text = self._fit(":memo: " + escape(_one_line(note)), limit, INLINE_MARKER, "notes")
            allowance -= len(text)
            self._spend(text)
            elements.append(_mrkdwn(text))
        if len(self.event.notes) > CONTEXT_ELEMENTS_MAX:
            self._note_cut("notes")
        return ContextBlock(elements=elements) if elements else None

    def _fallback_text(self) -> str:
        event = self.event
        qualifiers = []
        namespace = self.argo.namespace if self.argo else event.labels.get("namespace", "")
        if namespace:
            qualifiers.append(namespace)
        if event.labels.get("env"):
            qualifiers.append(event.labels["env"])
        raw = f"[{'RESOLVED' if self._resolved() else event.status.value.upper()}] {event.title}"
        if qualifiers:
            raw += f" ({', '.join(qualifiers)})"
        return self._fit(escape(_one_line(raw)), FALLBACK_TEXT_MAX, INLINE_MARKER, "text")
