"""The runtime serialisation of Block Kit models equals slack_sdk's own validating to_dict()."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.formatting.slack import Resolution, as_json, format_event, format_reply
from tests.test_formatting_slack import argo_failure, argo_success, huge_event, monitoring

EVENTS = {
    "argo_failure": argo_failure,
    "argo_success": argo_success,
    "monitoring": monitoring,
    "huge": huge_event,
}
RESOLVED = Resolution(
    at=datetime(2026, 5, 2, 10, 0, tzinfo=UTC), duration_seconds=900, by="run <!here> succeeded"
)


@pytest.mark.parametrize("resolution", [None, RESOLVED], ids=["as-posted", "resolved-update"])
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_as_json_equals_slack_sdk_to_dict(name: str, resolution: Resolution | None) -> None:
    """as_json() skips re-validation at runtime but produces exactly what to_dict() (which validates) does."""
    message = format_event(EVENTS[name](), repeat_count=3, resolution=resolution)
    assert [as_json(block) for block in message.blocks] == [block.to_dict() for block in message.blocks]


def test_thread_reply_serialises_like_slack_sdk() -> None:
    """Thread replies go through the same serialisation."""
    reply = format_reply(argo_failure(), "Resolved: <!channel> & done")
    assert [as_json(block) for block in reply.blocks] == [block.to_dict() for block in reply.blocks]
