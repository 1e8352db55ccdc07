"""Reading untrusted payload fields: the small readers every source parser shares.

A sender's payload is never trusted to fit the model. Text is clipped to the model's limits (marking
the cut) rather than failing the event, labels and notes are capped keeping what matters most, scalars
become text as they were written, and only what makes a payload unusable is refused, as a malformed
payload whose message names the source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shared.errors import Reason, UnsupportedPayload
from shared.model import MAX_LABELS, MAX_TEXT

MAX_NOTES = 10
MAX_LABEL_KEY = 128  # the model's LabelKey
MAX_LABEL_VALUE = 512  # the model's LabelValue
MAX_URL = 3000  # the model's Link.url

_HTTP_SCHEME = re.compile(r"^https?://")
_JSON_TYPE_NAMES: dict[type, str] = {dict: "object", list: "array", str: "string", bool: "boolean"}


def clip(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters, marking the cut: an overlong field must not fail the event."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_text(value: Any) -> str:
    """Any scalar as text: numbers stay as written, booleans as JSON (``true``), ``None`` is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def cap_labels(labels: Mapping[str, str], notes: list[str], *, priority: tuple[str, ...]) -> dict[str, str]:
    """Non-empty keys and their values, clipped; over MAX_LABELS, ``priority`` keys are kept first."""
    clean = {clip(k, MAX_LABEL_KEY): clip(v, MAX_LABEL_VALUE) for k, v in labels.items() if k}
    ordered = [k for k in priority if k in clean] + sorted(k for k in clean if k not in priority)
    if len(ordered) > MAX_LABELS:
        notes.append(f"only {MAX_LABELS} of {len(ordered)} labels are kept")
        ordered = ordered[:MAX_LABELS]
    return {k: clean[k] for k in sorted(ordered)}


def cap_notes(notes: list[str]) -> tuple[str, ...]:
    """At most MAX_NOTES clipped notes, the last one counting the problems left out."""
    if len(notes) > MAX_NOTES:
        notes = [*notes[: MAX_NOTES - 1], f"and {len(notes) - MAX_NOTES + 1} more problems"]
    return tuple(clip(n, MAX_TEXT) for n in notes)


def has_http_scheme(url: str) -> bool:
    """Whether ``url`` starts with ``http://`` or ``https://`` (whatever its length)."""
    return bool(_HTTP_SCHEME.match(url))


def is_http(url: str) -> bool:
    """Whether ``url`` is an http(s) URL short enough for a link."""
    return has_http_scheme(url) and len(url) <= MAX_URL


def type_name(value: Any) -> str:
    """The JSON name of a value's type for messages (``object``, ``array``...), else the Python one."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def malformed(prefix: str, problem: str) -> UnsupportedPayload:
    """A permanent malformed-payload refusal reading ``"<prefix> <problem>"``, e.g. ``argo payload: ...``."""
    return UnsupportedPayload(f"{prefix} {problem}", reason=Reason.MALFORMED_PAYLOAD)
