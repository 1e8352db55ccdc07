"""Compatibility check against real Cloud Monitoring captures kept outside the repository.

The captures live in ../shared/reference/payloads next to the project checkout (see its SOURCES.md).
They are read in place, never copied in; where the folder is missing the test is skipped with a reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from shared.model import AlertEvent, MonitoringDetails, Source, Status
from shared.sources import monitoring, parse_payload

REFERENCE_DIR = (
    Path(__file__).resolve().parent.parent / ".." / "shared" / "reference" / "payloads"
).resolve()
CAPTURES = sorted(REFERENCE_DIR.glob("gcm_*.json")) if REFERENCE_DIR.is_dir() else []
MISSING = pytest.mark.skip(reason=f"reference captures not available: no gcm_*.json in {REFERENCE_DIR}")
CASES = [pytest.param(p, id=p.stem) for p in CAPTURES] or [
    pytest.param(None, id="no-captures", marks=MISSING)
]


def expected_status(path: Path, payload: dict[str, Any]) -> Status:
    """The status the capture is known to carry: from its file name (_open_/_closed_), else its state."""
    if "_open_" in path.name:
        return Status.FIRING
    if "_closed_" in path.name:
        return Status.RESOLVED
    return Status.FIRING if payload["incident"]["state"].lower() == "open" else Status.RESOLVED


@pytest.mark.parametrize("path", CASES)
def test_real_capture_gives_a_valid_event_with_the_right_status(path: Path) -> None:
    """Every real Cloud Monitoring capture parses to a valid event with the capture's status."""
    payload = json.loads(path.read_text())
    event = parse_payload(payload)  # through the dispatcher: the shape alone must identify it
    assert event.source is Source.CLOUD_MONITORING
    assert event.status is expected_status(path, payload)
    assert AlertEvent.model_validate(event.model_dump(mode="json")) == event
    assert isinstance(event.details, MonitoringDetails)
    assert event.details.incident_id == payload["incident"]["incident_id"]
    assert event.title
    assert event.links and event.links[0].title == "Cloud Monitoring incident"
    assert event.started_at is not None
    assert (event.ended_at is None) is (event.status is Status.FIRING)
    assert all(isinstance(v, str) for v in event.labels.values())


@pytest.mark.parametrize("_", [pytest.param(None, id="pairs", marks=[] if CAPTURES else [MISSING])])
def test_real_open_and_close_of_one_incident_share_a_fingerprint(_: None) -> None:
    """Captured open/close pairs (same incident_id) map to one fingerprint and two event ids."""
    by_incident: dict[str, list[AlertEvent]] = defaultdict(list)
    for path in CAPTURES:
        event = monitoring.parse(json.loads(path.read_text()))
        assert isinstance(event.details, MonitoringDetails)
        by_incident[event.details.incident_id].append(event)
    pairs = [events for events in by_incident.values() if len(events) > 1]
    if not pairs:
        pytest.skip("the reference captures hold no open/close pair")
    for events in pairs:
        assert len({e.fingerprint for e in events}) == 1
        assert len({e.event_id for e in events}) == len(events)
        assert {e.status for e in events} == {Status.FIRING, Status.RESOLVED}
