"""The relay's log lines are Cloud Logging's structured format, as google-cloud-logging writes it."""

from __future__ import annotations

import io
import json
import logging

from shared import logs


def test_outcome_line_matches_google_cloud_loggings_structured_handler() -> None:
    """Same severity, message, entry labels and payload fields as StructuredLogHandler produces."""
    from google.cloud.logging.handlers import StructuredLogHandler

    ours = io.StringIO()
    logs.configure("INFO", stream=ours)
    logs.outcome(
        "event delivered",
        level=logging.WARNING,
        event_id="e1",
        source="argo",
        outcome="delivered",
        sink="alerts",
    )
    line = json.loads(ours.getvalue().splitlines()[-1])

    theirs_stream = io.StringIO()
    reference = logging.getLogger("alert_relay_reference")
    reference.propagate = False
    reference.addHandler(StructuredLogHandler(stream=theirs_stream, project_id="p"))
    reference.warning(
        "event delivered",
        extra={
            "labels": {"event_id": "e1", "source": "argo", "outcome": "delivered"},
            "json_fields": {"sink": "alerts"},
        },
    )
    theirs = json.loads(theirs_stream.getvalue().splitlines()[-1])

    assert (line["severity"], line["message"]) == (theirs["severity"], theirs["message"])
    key = "logging.googleapis.com/labels"
    assert line[key].items() <= theirs[key].items()
    assert line["sink"] == theirs["sink"]


def test_lines_follow_the_current_stdout() -> None:
    """Without an explicit stream, each line goes to whatever sys.stdout is at that moment."""
    import contextlib

    logs.configure("INFO")
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        logs.outcome("one", outcome="done")
    with contextlib.redirect_stdout(second):
        logs.outcome("two", outcome="done")
    assert json.loads(first.getvalue())["message"] == "one"
    assert json.loads(second.getvalue())["message"] == "two"
