"""The readers every source parser shares: clipping, capping, text coercion, URL checks and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import Reason, UnsupportedPayload
from shared.model import MAX_LABELS, MAX_TEXT
from shared.sources.fields import (
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_NOTES,
    MAX_URL,
    as_text,
    cap_labels,
    cap_notes,
    clip,
    has_http_scheme,
    is_http,
    malformed,
    type_name,
)

PRIORITY = ("namespace", "team", "severity")

# --- clip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("", 1, "", id="empty"),
        pytest.param("abc", 3, "abc", id="at-the-limit"),
        pytest.param("abc", 10, "abc", id="under-the-limit"),
        pytest.param("abcd", 3, "ab…", id="one-over"),
        pytest.param("abcdef", 1, "…", id="limit-one"),
        pytest.param("ünïcødé", 5, "ünïc…", id="characters-not-bytes"),
    ],
)
def test_clip_keeps_short_text_and_marks_a_cut(text: str, limit: int, expected: str) -> None:
    """Text within the limit is untouched; longer text ends in an ellipsis."""
    assert clip(text, limit) == expected


@pytest.mark.parametrize("limit", [1, 2, 256, MAX_TEXT])
@pytest.mark.parametrize("over", [0, 1, 2, 1000])
def test_clip_never_cuts_below_the_limit(limit: int, over: int) -> None:
    """A clipped text is exactly ``limit`` long: never longer, and no shorter than it has to be."""
    text = "x" * (limit + over)
    clipped = clip(text, limit)
    assert len(clipped) == limit
    assert clipped == (text if over == 0 else "x" * (limit - 1) + "…")


# --- as_text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "", id="none"),
        pytest.param("", "", id="empty-string"),
        pytest.param(" padded ", " padded ", id="string-untouched"),
        pytest.param(True, "true", id="true-as-json"),
        pytest.param(False, "false", id="false-as-json"),
        pytest.param(0, "0", id="zero"),
        pytest.param(42, "42", id="int"),
        pytest.param(1.1, "1.1", id="float-as-written"),
        pytest.param(2.0, "2.0", id="whole-float"),
        pytest.param([1, "a", None], '[1,"a",null]', id="list-as-compact-json"),
        pytest.param({"k": True}, '{"k":true}', id="object-as-compact-json"),
    ],
)
def test_as_text_writes_scalars_as_they_were_sent(value: Any, expected: str) -> None:
    """Numbers stay as written, booleans and containers become compact JSON, None is empty."""
    assert as_text(value) == expected


# --- cap_labels ----------------------------------------------------------------------------------


def many(count: int, prefix: str = "label") -> dict[str, str]:
    """``count`` labels ``<prefix>000``... that sort before any priority label."""
    return {f"{prefix}{i:03d}": str(i) for i in range(count)}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({}, {}, id="none"),
        pytest.param({"b": "2", "a": "1"}, {"a": "1", "b": "2"}, id="sorted-by-key"),
        pytest.param({"": "dropped", "a": "1"}, {"a": "1"}, id="empty-key-dropped"),
        pytest.param({"a": ""}, {"a": ""}, id="empty-value-kept"),
        pytest.param(
            {"k" * 200: "v" * 600},
            {"k" * (MAX_LABEL_KEY - 1) + "…": "v" * (MAX_LABEL_VALUE - 1) + "…"},
            id="key-and-value-clipped",
        ),
    ],
)
def test_cap_labels_within_the_limit_keeps_every_valid_label(
    labels: dict[str, str], expected: dict[str, str]
) -> None:
    """Under MAX_LABELS nothing is dropped but empty keys, and nothing is noted."""
    notes: list[str] = []
    capped = cap_labels(labels, notes, priority=PRIORITY)
    assert capped == expected
    assert list(capped) == sorted(capped)
    assert notes == []


@pytest.mark.parametrize(
    ("labels", "kept_priority"),
    [
        pytest.param(many(MAX_LABELS + 1), (), id="no-priority-labels"),
        pytest.param({**many(MAX_LABELS), "team": "ml"}, ("team",), id="one-priority-label"),
        pytest.param(
            {**many(MAX_LABELS * 2), "severity": "error", "team": "ml", "namespace": "jobs"},
            PRIORITY,
            id="all-priority-labels",
        ),
    ],
)
def test_cap_labels_over_the_limit_keeps_priority_keys_first(
    labels: dict[str, str], kept_priority: tuple[str, ...]
) -> None:
    """Over MAX_LABELS the priority keys survive, the rest fill up by name, and the cut is noted."""
    notes: list[str] = []
    capped = cap_labels(labels, notes, priority=PRIORITY)
    assert len(capped) == MAX_LABELS
    assert set(kept_priority) <= set(capped)
    others = sorted(k for k in labels if k not in PRIORITY)[: MAX_LABELS - len(kept_priority)]
    assert set(capped) == {*kept_priority, *others}
    assert list(capped) == sorted(capped)
    assert notes == [f"only {MAX_LABELS} of {len(labels)} labels are kept"]


def test_cap_labels_keeps_priority_keys_in_priority_order() -> None:
    """When even the priority keys do not fit, the earlier ones in the tuple win."""
    priority = tuple(f"p{i:03d}" for i in reversed(range(MAX_LABELS + 5)))  # not in name order
    labels = dict.fromkeys(sorted(priority), "v")
    capped = cap_labels(labels, [], priority=priority)
    assert set(capped) == set(priority[:MAX_LABELS])


def test_cap_labels_counts_labels_after_dropping_empty_keys() -> None:
    """The note counts the labels that could have been kept, not the empty keys."""
    notes: list[str] = []
    cap_labels({"": "x", **many(MAX_LABELS + 2)}, notes, priority=PRIORITY)
    assert notes == [f"only {MAX_LABELS} of {MAX_LABELS + 2} labels are kept"]


# --- cap_notes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected_tail"),
    [
        pytest.param(0, None, id="none"),
        pytest.param(1, "note 0", id="one"),
        pytest.param(MAX_NOTES, f"note {MAX_NOTES - 1}", id="at-the-limit"),
        pytest.param(MAX_NOTES + 1, "and 2 more problems", id="one-over"),
        pytest.param(MAX_NOTES + 50, "and 51 more problems", id="far-over"),
    ],
)
def test_cap_notes_keeps_at_most_max_notes_counting_the_rest(count: int, expected_tail: str | None) -> None:
    """Up to MAX_NOTES notes pass unchanged; beyond, the last slot says how many were left out."""
    notes = [f"note {i}" for i in range(count)]
    capped = cap_notes(notes)
    assert isinstance(capped, tuple)
    assert len(capped) == min(count, MAX_NOTES)
    assert capped[: MAX_NOTES - 1] == tuple(notes[: MAX_NOTES - 1])
    assert (capped[-1] if capped else None) == expected_tail


def test_cap_notes_clips_each_note_and_leaves_the_list_alone() -> None:
    """A huge note is clipped to MAX_TEXT; the caller's list is not modified."""
    notes = ["x" * (MAX_TEXT + 10), *(f"note {i}" for i in range(MAX_NOTES))]
    before = list(notes)
    capped = cap_notes(notes)
    assert capped[0] == "x" * (MAX_TEXT - 1) + "…"
    assert notes == before


# --- is_http / has_http_scheme -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "link"),
    [
        pytest.param("http://example.com", True, True, id="http"),
        pytest.param("https://example.com/a?b=c", True, True, id="https"),
        pytest.param("https://", True, True, id="scheme-only"),
        pytest.param("https://" + "a" * (MAX_URL - 8), True, True, id="at-max-length"),
        pytest.param("https://" + "a" * (MAX_URL - 7), True, False, id="over-max-length"),
        pytest.param("", False, False, id="empty"),
        pytest.param("example.com", False, False, id="no-scheme"),
        pytest.param("ftp://example.com", False, False, id="other-scheme"),
        pytest.param("javascript:alert(1)", False, False, id="javascript"),
        pytest.param("HTTPS://example.com", False, False, id="upper-case-scheme"),
        pytest.param(" https://example.com", False, False, id="leading-space"),
        pytest.param("https:/example.com", False, False, id="one-slash"),
    ],
)
def test_is_http_needs_an_http_scheme_and_a_link_length(url: str, scheme: bool, link: bool) -> None:
    """has_http_scheme looks at the start only; is_http also holds the URL to the model's length."""
    assert has_http_scheme(url) is scheme
    assert is_http(url) is link


# --- type_name and malformed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        pytest.param({}, "object", id="dict"),
        pytest.param([], "array", id="list"),
        pytest.param("", "string", id="str"),
        pytest.param(True, "boolean", id="bool"),
        pytest.param(1, "int", id="int"),
        pytest.param(1.5, "float", id="float"),
        pytest.param(None, "NoneType", id="none"),
        pytest.param((), "tuple", id="tuple"),
    ],
)
def test_type_name_uses_json_names_where_json_has_them(value: Any, name: str) -> None:
    """JSON's own names for decoded JSON types; Python's for anything else."""
    assert type_name(value) == name


@pytest.mark.parametrize(
    ("prefix", "problem", "message"),
    [
        pytest.param("argo payload:", "workflow is missing", "argo payload: workflow is missing", id="argo"),
        pytest.param(
            "cloud monitoring payload:",
            "incident.state is missing",
            "cloud monitoring payload: incident.state is missing",
            id="monitoring",
        ),
        pytest.param(
            "alertmanager notification",
            "holds no alerts",
            "alertmanager notification holds no alerts",
            id="no-colon",
        ),
    ],
)
def test_malformed_is_a_permanent_refusal_naming_the_source(prefix: str, problem: str, message: str) -> None:
    """The refusal reads "<prefix> <problem>" and is a permanent malformed-payload error."""
    error = malformed(prefix, problem)
    assert isinstance(error, UnsupportedPayload)
    assert str(error) == message
    assert error.reason is Reason.MALFORMED_PAYLOAD
    assert error.retryable is False
