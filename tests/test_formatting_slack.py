"""Slack rendering: golden messages, mention-injection safety and Slack's limits.

Golden files live in tests/data/slack/; regenerate them with ``UPDATE_GOLDEN=1 pytest ...`` and review
the diff.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import ContextBlock, HeaderBlock, SectionBlock

from shared.formatting import slack
from shared.formatting.slack import (
    CONTEXT_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_MAX,
    MAX_BLOCKS,
    MAX_FIELDS,
    SECTION_TEXT_MAX,
    TOTAL_TEXT_BUDGET,
    SlackMessage,
    blocks_text_length,
    escape,
    format_event,
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
from tests.golden import assert_golden

GOLDEN_DIR = Path(__file__).parent / "data" / "slack"

T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)

INJECTIONS = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<!subteam^S1>",
    "<https://evil.example|click>",
]


# --- event builders (deterministic: explicit datetimes, fixed ids) ---------------------------------


def argo_failure(
    *,
    workflow: str = "asr-nightly-x7k2p",
    title: str = "Workflow asr-nightly-x7k2p failed",
    summary: str = "child 'train' failed",
    step_message: str = "Error (exit code 1)",
    step_name: str = "train",
    template: str = "train-model",
    env: str = "prod",
    note: str | None = None,
    link_title: str = "Argo UI",
) -> AlertEvent:
    steps = (
        FailedStep(
            name=step_name,
            template=template,
            phase="Failed",
            message=step_message,
            finished_at=T0 + timedelta(minutes=11, seconds=7),
            pod_name="asr-nightly-x7k2p-train-123",
            attempts=3,
        ),
        FailedStep(
            name="evaluate",
            template="eval",
            phase="Error",
            message="",
            finished_at=T0 + timedelta(minutes=12),
        ),
        FailedStep(
            name="export[0]",
            template="export-shard",
            message="OOMKilled (exit code 137)\ncontainer ran out of memory",
            finished_at=T0 + timedelta(minutes=12, seconds=30),
        ),
    )
    return AlertEvent(
        event_id="3f2a9c1b7d4e4f0a8b6c5d4e3f2a1b0c",
        source=Source.ARGO,
        fingerprint="9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
        status=Status.FIRING,
        source_status="Failed",
        severity=Severity.ERROR,
        title=title,
        summary=summary,
        labels={"env": env, "team": "speech"},
        started_at=T0,
        ended_at=T0 + timedelta(hours=1, minutes=23, seconds=4),
        duration_seconds=4984.0,
        links=(
            Link(title=link_title, url="https://argo.example.com/workflows/ml/asr-nightly-x7k2p"),
            Link(title="Logs", url="https://console.cloud.google.com/logs/query;query=a%3Db?project=p&x=1"),
        ),
        details=ArgoDetails(
            workflow=workflow,
            namespace="ml",
            uid="0b1c2d3e-aaaa-bbbb-cccc-123456789abc",
            failed_steps=steps,
            failed_steps_total=3,
        ),
        notes=(note,) if note is not None else (),
    )


def argo_success() -> AlertEvent:
    return AlertEvent(
        event_id="7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29",
        source=Source.ARGO,
        fingerprint="9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
        status=Status.RESOLVED,
        source_status="Succeeded",
        severity=Severity.INFO,
        title="Workflow asr-nightly-x7k2p succeeded",
        summary="",
        labels={"env": "prod"},
        started_at=T0,
        ended_at=T0 + timedelta(minutes=42, seconds=5),
        duration_seconds=2525.0,
        links=(Link(title="Argo UI", url="https://argo.example.com/workflows/ml/asr-nightly-x7k2p"),),
        details=ArgoDetails(workflow="asr-nightly-x7k2p", namespace="ml"),
    )


def monitoring(
    *,
    status: Status = Status.FIRING,
    policy_name: str = "High 5xx ratio",
    resource_name: str = "asr-api",
    observed_value: str = "0.123",
) -> AlertEvent:
    open_ = status is Status.FIRING
    return AlertEvent(
        event_id="0.nabc123def456" if open_ else "0.nabc123def456-closed",
        source=Source.CLOUD_MONITORING,
        fingerprint="c0ffee00c0ffee00c0ffee00c0ffee00",
        status=status,
        source_status="open" if open_ else "closed",
        severity=Severity.CRITICAL,
        title="High 5xx ratio on asr-api",
        summary="5xx ratio for asr-api is above the threshold of 0.05 with a value of 0.123.",
        labels={"env": "prod", "team": "speech"},
        started_at=T0,
        ended_at=None if open_ else T0 + timedelta(minutes=17),
        duration_seconds=None if open_ else 1020.0,
        links=(
            Link(
                title="Incident", url="https://console.cloud.google.com/monitoring/alerting/incidents/0.nabc"
            ),
        ),
        details=MonitoringDetails(
            incident_id="0.nabc123def456",
            policy_name=policy_name,
            condition_name="5xx ratio > 5%",
            resource_type="cloud_run_revision",
            resource_name=resource_name,
            metric_type="run.googleapis.com/request_count",
            observed_value=observed_value,
            threshold_value="0.05",
            project_id="speech-prod",
            schema_version="1.2",
        ),
    )


def huge_event(*, total: int = 100, text: str = "x") -> AlertEvent:
    """Past every bound: built with model_construct, since the model itself caps summary at 4000."""
    steps = tuple(
        FailedStep(
            name=f"step-{i:03d}",
            template="fan-out-worker",
            message=(text * 3000)[:3000],
            finished_at=T0 + timedelta(seconds=i),
            attempts=1 + i % 3,
        )
        for i in range(100)
    )
    details = ArgoDetails(
        workflow="w" * 256, namespace="ml", failed_steps=steps, failed_steps_total=max(total, 100)
    )
    return AlertEvent.model_construct(
        schema_version=1,
        event_id="e" * 64,
        source=Source.ARGO,
        fingerprint="f" * 64,
        status=Status.FIRING,
        source_status="Failed",
        severity=Severity.CRITICAL,
        title=(text * 200)[:200],
        summary=(text * 5000)[:5000],
        labels={"env": "prod", "team": "speech"},
        started_at=T0,
        ended_at=T0 + timedelta(hours=5),
        duration_seconds=18000.0,
        links=(),
        details=details,
        notes=(),
    )


def everything_maxed(text: str = "&") -> AlertEvent:
    """Every field at (or past) its model bound, in the worst escaping case."""
    event = huge_event(text=text, total=5000)
    return event.model_copy(
        update={
            "title": text * 1000,
            "labels": {f"k{i}": text * 512 for i in range(64)} | {"env": text * 512, "team": text * 512},
            "links": tuple(
                Link.model_construct(title=text * 256, url="https://e.example/" + "a" * 2900 + str(i))
                for i in range(10)
            ),
            "notes": tuple(text * 4000 for _ in range(10)),
            "source_status": text * 256,
        }
    )


def monitoring_maxed(text: str = "<") -> AlertEvent:
    event = monitoring()
    details = MonitoringDetails.model_construct(
        kind="cloud_monitoring",
        schema_version="",
        incident_id=text * 256,
        policy_name=text * 256,
        condition_name=text * 256,
        resource_type=text * 256,
        resource_name=text * 4000,
        metric_type=text * 256,
        observed_value=text * 4000,
        threshold_value=text * 256,
        project_id=text * 256,
    )
    return event.model_copy(
        update={"details": details, "summary": text * 4000, "notes": tuple(text * 4000 for _ in range(10))}
    )


# --- helpers ---------------------------------------------------------------------------------------


def body(message: SlackMessage) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks_json()}


def serialized(message: SlackMessage) -> str:
    return json.dumps(body(message), ensure_ascii=False)


def all_texts(message: SlackMessage) -> list[str]:
    """Every text in the message: fallback, header, section text and fields, context elements."""
    texts = [message.text]
    for block in message.blocks_json():
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(field["text"] for field in block.get("fields", ()))
        texts.extend(element["text"] for element in block.get("elements", ()) if "text" in element)
    return texts


def assert_within_limits(message: SlackMessage) -> None:
    blocks = message.blocks_json()
    # slack_sdk's own to_dict() runs every validator (SlackObjectFormationError); the fast runtime
    # serialisation must produce exactly the same JSON.
    assert [block.to_dict() for block in message.blocks] == blocks
    assert 1 <= len(blocks) <= MAX_BLOCKS
    assert len(message.text) <= FALLBACK_TEXT_MAX
    total = 0
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= HEADER_MAX
            total += len(block["text"]["text"])
        elif block["type"] == "section":
            text = block.get("text", {}).get("text", "")
            assert len(text) <= SECTION_TEXT_MAX
            fields = block.get("fields", [])
            assert len(fields) <= MAX_FIELDS
            assert all(len(field["text"]) <= FIELD_TEXT_MAX for field in fields)
            total += len(text) + sum(len(field["text"]) for field in fields)
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= CONTEXT_ELEMENTS_MAX
            assert all(len(element["text"]) <= CONTEXT_TEXT_MAX for element in block["elements"])
            total += sum(len(element["text"]) for element in block["elements"])
    assert total <= TOTAL_TEXT_BUDGET
    assert total == blocks_text_length(message.blocks)


def assert_no_broken_entities(message: SlackMessage) -> None:
    for block in message.blocks_json():
        texts = [block.get("text", {}).get("text", "")] if block["type"] != "header" else []
        texts += [field["text"] for field in block.get("fields", ())]
        texts += [element["text"] for element in block.get("elements", ())]
        for text in [*texts, message.text]:
            # Once whole entities are removed, no "&" may remain: a bare one is a cut entity.
            assert "&" not in re.sub(r"&(amp|lt|gt);", "", text), text[-40:]


# --- golden messages -------------------------------------------------------------------------------

GOLDEN_CASES: dict[str, Callable[[], SlackMessage]] = {
    "argo_failure": lambda: format_event(argo_failure()),
    "argo_success": lambda: format_event(argo_success()),
    "monitoring_open": lambda: format_event(monitoring(), repeat_count=2),
    "monitoring_closed": lambda: format_event(monitoring(status=Status.RESOLVED)),
    "huge_event": lambda: format_event(huge_event()),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_rendered_message_matches_golden_file(name: str) -> None:
    """Each representative event renders exactly as its reviewed golden file."""
    message = GOLDEN_CASES[name]()
    assert_golden(body(message), GOLDEN_DIR / f"{name}.json", sort_keys=True)
    assert_within_limits(message)


# --- escaping and injection ------------------------------------------------------------------------


def test_escape_replaces_the_three_control_characters() -> None:
    """escape() turns &, < and > into entities and leaves everything else alone."""
    assert escape("<!channel> & <@U123> *bold*") == "&lt;!channel&gt; &amp; &lt;@U123&gt; *bold*"


def test_escape_handles_ampersand_first_so_entities_are_not_double_escaped() -> None:
    """A literal "&lt;" in the input stays visible as "&lt;" instead of turning into "<"."""
    assert escape("&lt;") == "&amp;lt;"
    assert escape("a<b") == "a&lt;b"


def _inject(target: str, payload: str) -> AlertEvent:
    if target in {"policy", "resource", "observed"}:
        key = {"policy": "policy_name", "resource": "resource_name", "observed": "observed_value"}[target]
        return monitoring(**{key: f"x {payload} y"})
    key = {
        "workflow": "workflow",
        "title": "title",
        "summary": "summary",
        "failure message": "step_message",
        "step name": "step_name",
        "template": "template",
        "label": "env",
        "note": "note",
        "link title": "link_title",
    }[target]
    return argo_failure(**{key: f"x {payload} y"})


INJECTION_TARGETS = [
    "workflow",
    "title",
    "summary",
    "failure message",
    "step name",
    "template",
    "label",
    "note",
    "link title",
    "policy",
    "resource",
    "observed",
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("target", INJECTION_TARGETS)
def test_untrusted_text_cannot_mention_or_link(target: str, payload: str) -> None:
    """Slack markup in any untrusted field reaches Slack escaped: no ping, no injected link."""
    message = format_event(_inject(target, payload))
    out = serialized(message)
    assert payload not in out
    # Our own markup never uses these openers, so none may appear at all.
    assert "<!" not in out
    assert "<@" not in out
    # The only links are the event's own, validated ones.
    assert "<https://evil.example" not in out
    links = re.findall(r"<(https?://[^|>]+)\|", out)
    assert links
    assert all(
        url.startswith(("https://argo.example.com/", "https://console.cloud.google.com/")) for url in links
    )
    assert_within_limits(message)


@pytest.mark.parametrize(
    "url",
    [
        "https://ok.example/a|<!channel>",
        "https://ok.example/a b",
        "https://ok.example/<!here>",
        "https://ok.example/a>b",
    ],
)
def test_link_with_unsafe_url_is_shown_without_link_markup(url: str) -> None:
    """A URL that could break out of <url|title> is not linked; its title is still shown."""
    event = argo_failure().model_copy(update={"links": (Link(title="Argo UI", url=url),)})
    out = serialized(format_event(event))
    assert "<https://ok.example" not in out
    assert "Argo UI (link withheld: unsafe URL)" in out
    assert "<!" not in out


def test_link_url_ampersand_is_escaped_and_title_is_escaped() -> None:
    """Ampersands in a URL are sent as &amp; and a hostile title cannot close the link early."""
    event = argo_failure().model_copy(
        update={"links": (Link(title="a>b|<!here>", url="https://ok.example/?a=1&b=2"),)}
    )
    texts = all_texts(format_event(event))
    assert any("<https://ok.example/?a=1&amp;b=2|a&gt;b|&lt;!here&gt;>" in text for text in texts)


def test_header_defuses_markup_openers_without_entities() -> None:
    """plain_text shows entities literally, so the header defuses "<!" with a look-alike bracket."""
    message = format_event(argo_failure(title="Build <!here> a < b & c"))
    header = message.blocks_json()[0]["text"]["text"]
    assert header == ":red_circle: FAILED  Build \u2039!here> a < b & c"


def test_all_mrkdwn_texts_are_verbatim() -> None:
    """Slack must not auto-link URLs or parse bare @mentions in relayed text."""
    for block in format_event(argo_failure()).blocks_json():
        objects = [block.get("text", {}), *block.get("fields", []), *block.get("elements", [])]
        for obj in objects:
            if obj.get("type") == "mrkdwn":
                assert obj["verbatim"] is True


# --- limits and truncation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        huge_event,
        lambda: huge_event(text="&"),
        lambda: huge_event(text="<!channel>"),
        lambda: everything_maxed("&"),
        lambda: everything_maxed("x"),
        lambda: everything_maxed("a&"),
        lambda: monitoring_maxed("<"),
        lambda: monitoring_maxed("`&"),
    ],
    ids=[
        "huge",
        "huge-ampersands",
        "huge-mentions",
        "maxed-ampersands",
        "maxed-plain",
        "maxed-mixed",
        "monitoring-maxed",
        "monitoring-backticks",
    ],
)
def test_huge_events_always_fit_slack_limits(make: Callable[[], AlertEvent]) -> None:
    """However large or entity-dense the event, every block passes slack_sdk and Slack's limits."""
    for repeat_count in (0, 12345):
        message = format_event(make(), repeat_count=repeat_count)
        assert_within_limits(message)
        assert_no_broken_entities(message)


def test_huge_event_lists_failed_steps_that_fit_and_counts_the_rest() -> None:
    """The failed-step list is cut whole lines at a time and ends with how many steps are missing."""
    message = format_event(huge_event(total=250))
    texts = [block["text"]["text"] for block in message.blocks_json()[2:] if block["type"] == "section"]
    step_text = "\n".join(text for text in texts if "• *step-" in text)
    shown = step_text.count("• *step-")
    assert 1 <= shown < 100
    assert step_text.endswith(f"…and {250 - shown} more failed steps")
    # Steps keep their order and none is half-shown.
    assert re.findall(r"• \*step-(\d{3})\*", step_text) == [f"{i:03d}" for i in range(shown)]


def test_summary_is_cut_with_truncated_marker() -> None:
    """An over-long summary ends with "… (truncated)" and stays within the section limit."""
    summary = format_event(huge_event()).blocks_json()[1]["text"]["text"]
    assert summary.endswith("… (truncated)")
    assert len(summary) <= SECTION_TEXT_MAX


def test_header_is_cut_with_ellipsis() -> None:
    """A 200-character title is cut so the whole header is at most 150 characters, ending in "…"."""
    header = format_event(huge_event()).blocks_json()[0]["text"]["text"]
    assert len(header) == HEADER_MAX
    assert header.startswith(":rotating_light: FAILED  xxx")
    assert header.endswith("…")


def test_truncation_logs_a_warning_with_the_event_id(caplog: pytest.LogCaptureFixture) -> None:
    """Cutting anything logs one warning naming the event and what was cut."""
    with caplog.at_level(logging.WARNING, logger=slack.__name__):
        format_event(huge_event())
    records = [r for r in caplog.records if r.name == slack.__name__]
    assert len(records) == 1
    assert "e" * 64 in records[0].getMessage()
    assert records[0].event_id == "e" * 64  # type: ignore[attr-defined]
    assert "failed steps" in records[0].getMessage()


def test_no_warning_when_nothing_is_truncated(caplog: pytest.LogCaptureFixture) -> None:
    """An ordinary event renders in full and logs nothing."""
    with caplog.at_level(logging.WARNING, logger=slack.__name__):
        format_event(argo_failure())
        format_event(monitoring())
    assert [r for r in caplog.records if r.name == slack.__name__] == []


def test_more_failed_steps_line_uses_failed_steps_total() -> None:
    """When the parser already cut the list, the message still says how many steps are not shown."""
    event = argo_failure()
    assert isinstance(event.details, ArgoDetails)
    event = event.model_copy(update={"details": event.details.model_copy(update={"failed_steps_total": 250})})
    texts = all_texts(format_event(event))
    assert any(text.endswith("…and 247 more failed steps") for text in texts)


# --- content ---------------------------------------------------------------------------------------


def test_failed_step_line_shows_template_message_attempts_and_time() -> None:
    """Each leaf step is one line: name, template, escaped message, attempts when >1, UTC time."""
    texts = all_texts(format_event(argo_failure(step_message="Error (exit code 1) <x>")))
    what_failed = next(text for text in texts if text.startswith("*What failed*"))
    assert what_failed.splitlines() == [
        "*What failed*",
        "• *train* (template `train-model`) — Error (exit code 1) &lt;x&gt; · after 3 attempts"
        " · 09:41:07 UTC",
        "• *evaluate* (template `eval`) — Error · 09:42:00 UTC",
        "• *export[0]* (template `export-shard`) — OOMKilled (exit code 137) container ran out of memory"
        " · 09:42:30 UTC",
    ]


@pytest.mark.parametrize(
    ("severity", "emoji"),
    [
        (Severity.CRITICAL, ":rotating_light:"),
        (Severity.ERROR, ":red_circle:"),
        (Severity.WARNING, ":warning:"),
        (Severity.INFO, ":information_source:"),
    ],
)
def test_firing_header_starts_with_severity_emoji(severity: Severity, emoji: str) -> None:
    """A firing alert's header shows its severity at a glance."""
    event = monitoring().model_copy(update={"severity": severity})
    header = format_event(event).blocks_json()[0]
    assert header["type"] == "header"
    assert header["text"]["text"] == f"{emoji} FIRING  High 5xx ratio on asr-api"


def test_resolved_header_is_green_with_source_status_for_argo() -> None:
    """A resolved alert is green; Argo's own phase word is the short status."""
    assert format_event(argo_success()).blocks_json()[0]["text"]["text"] == (
        ":large_green_circle: SUCCEEDED  Workflow asr-nightly-x7k2p succeeded"
    )
    assert (
        format_event(monitoring(status=Status.RESOLVED))
        .blocks_json()[0]["text"]["text"]
        .startswith(":large_green_circle: RESOLVED  ")
    )


def test_fields_show_only_present_values() -> None:
    """Fields name status, severity and duration, and leave out what the event does not have."""
    event = monitoring().model_copy(update={"labels": {}})
    fields = [field["text"] for field in format_event(event).blocks_json()[1]["fields"]]
    assert fields == [
        "*Status*\nfiring (open)",
        "*Severity*\ncritical",
        "*Started*\n2024-05-01 09:30:00 UTC",
        "*Project*\nspeech-prod",
        "*Source*\nCloud Monitoring",
    ]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(4984.0, "1h 23m 4s"), (0.4, "0s"), (7200.0, "2h"), (90061.0, "1d 1h 1m 1s"), (59.6, "1m")],
)
def test_duration_is_human_readable(seconds: float, expected: str) -> None:
    """Durations read like "1h 23m 4s"."""
    event = argo_success().model_copy(update={"duration_seconds": seconds})
    assert f"*Duration*\n{expected}" in all_texts(format_event(event))


def test_duration_falls_back_to_start_and_end() -> None:
    """Without duration_seconds, the duration comes from started_at and ended_at."""
    event = argo_success().model_copy(update={"duration_seconds": None})
    assert "*Duration*\n42m 5s" in all_texts(format_event(event))


def test_monitoring_section_shows_observed_threshold_policy_and_resource() -> None:
    """A Cloud Monitoring alert says what was observed against what threshold, on which resource."""
    texts = all_texts(format_event(monitoring()))
    section = next(text for text in texts if text.startswith("*Observed*"))
    assert section.splitlines() == [
        "*Observed* `0.123` vs threshold `0.05`",
        "*Policy* High 5xx ratio · *Condition* 5xx ratio &gt; 5%",
        "*Resource* cloud_run_revision `asr-api`",
        "*Metric* `run.googleapis.com/request_count`",
        "*Incident* `0.nabc123def456`",
    ]


def test_notes_are_shown_escaped_in_a_context_block() -> None:
    """Parser notes are visible but cannot format or mention."""
    message = format_event(argo_failure(note="failures list malformed: <!here>"))
    contexts = [block for block in message.blocks if isinstance(block, ContextBlock)]
    assert contexts[0].elements[0].text == ":memo: failures list malformed: &lt;!here&gt;"


def test_footer_shows_ids_and_repeat_count() -> None:
    """The footer names the source, short ids and, when repeated, how often."""
    footer = format_event(argo_failure(), repeat_count=3).blocks_json()[-1]
    assert footer["elements"][0]["text"] == (
        "alert-relay · source argo · event `3f2a9c1b7d4e` · fingerprint `9a8b7c6d5e4f` · repeated 3 times"
    )
    plain = format_event(argo_failure()).blocks_json()[-1]["elements"][0]["text"]
    assert "repeated" not in plain


def test_fallback_text_is_one_escaped_line() -> None:
    """The notification text is "[STATUS] title (namespace, env)", escaped, on one line."""
    assert format_event(argo_failure()).text == "[FIRING] Workflow asr-nightly-x7k2p failed (ml, prod)"
    message = format_event(argo_failure(title="Workflow\n<!channel> failed"))
    assert message.text == "[FIRING] Workflow &lt;!channel&gt; failed (ml, prod)"


def test_blocks_are_slack_sdk_models_in_reading_order() -> None:
    """The message is built from slack_sdk models: header, summary, what failed, links, footer."""
    message = format_event(argo_failure(note="n"))
    assert [type(block) for block in message.blocks] == [
        HeaderBlock,
        SectionBlock,
        SectionBlock,
        SectionBlock,
        ContextBlock,
        ContextBlock,
    ]


def test_post_args_and_webhook_body_disable_unfurling() -> None:
    """Both delivery shapes carry text and blocks and never unfurl links."""
    message = format_event(argo_failure())
    assert message.as_post_args("C123") == {
        "channel": "C123",
        "text": message.text,
        "blocks": message.blocks_json(),
        "unfurl_links": False,
        "unfurl_media": False,
    }
    assert message.as_webhook_body() == {
        "text": message.text,
        "blocks": message.blocks_json(),
        "unfurl_links": False,
        "unfurl_media": False,
    }
    json.dumps(message.as_webhook_body())  # serialisable as-is
