"""The ledger contract, run against every implementation (memory, SQLite; Firestore follows)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localdev.emulators import unique_name
from shared.ledger import (
    ClaimState,
    DeadLetterRecord,
    Ledger,
    RepeatDecision,
    TraceEntry,
    Verdict,
    open_ledger,
)
from shared.ledger.memory import MemoryLedger
from shared.ledger.sqlite import SqliteLedger

T0 = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
WINDOW = timedelta(minutes=30)


def make_ledger(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **kwargs: Any) -> Ledger:
    if kind == "memory":
        return MemoryLedger(**kwargs)
    if kind == "sqlite":
        return SqliteLedger(tmp_path / "ledger.sqlite3", **kwargs)
    request.getfixturevalue("firestore_env")  # skips with the reason where the emulator is missing
    from shared.ledger.firestore import FirestoreLedger

    # A fresh collection prefix per test: the emulator is shared by the whole session.
    return FirestoreLedger(project="local-project", prefix=unique_name("t").replace("-", "_"), **kwargs)


KINDS = ["memory", "sqlite", pytest.param("firestore", marks=pytest.mark.emulator)]


@pytest.fixture(params=KINDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    made = make_ledger(request.param, request, tmp_path)
    yield made
    made.close()


class TestClaims:
    def test_first_claim_is_acquired(self, ledger: Ledger) -> None:
        """Nobody has delivered the event to the sink yet: the caller may send."""
        assert ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state is ClaimState.ACQUIRED

    def test_claim_after_complete_is_done_with_receipt(self, ledger: Ledger) -> None:
        """A redelivered message finds the delivery done, with Slack's receipt."""
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        ledger.complete(event_id="e1", sink="s", receipt={"channel": "C1", "ts": "1.2"}, now=T0)
        claim = ledger.claim(event_id="e1", sink="s", now=T0 + timedelta(hours=1), lease=LEASE)
        assert claim.state is ClaimState.DONE
        assert dict(claim.receipt) == {"channel": "C1", "ts": "1.2"}

    def test_concurrent_claim_within_lease_is_busy(self, ledger: Ledger) -> None:
        """A second instance sees the first one's unexpired lease and must not send."""
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        assert ledger.claim(event_id="e1", sink="s", now=T0 + timedelta(seconds=10), lease=LEASE).state is (
            ClaimState.BUSY
        )

    def test_expired_lease_can_be_taken_over(self, ledger: Ledger) -> None:
        """An instance that crashed mid-send does not block the event forever."""
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        later = T0 + LEASE + timedelta(seconds=1)
        assert ledger.claim(event_id="e1", sink="s", now=later, lease=LEASE).state is ClaimState.ACQUIRED

    def test_released_claim_can_be_retaken_at_once(self, ledger: Ledger) -> None:
        """After a failed attempt the retry does not wait for the lease to expire."""
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        ledger.release(event_id="e1", sink="s")
        assert ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state is ClaimState.ACQUIRED

    def test_release_never_undoes_a_completed_delivery(self, ledger: Ledger) -> None:
        """Releasing is only for leases: a done delivery stays done."""
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        ledger.complete(event_id="e1", sink="s", receipt={}, now=T0)
        ledger.release(event_id="e1", sink="s")
        assert ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state is ClaimState.DONE

    def test_sinks_are_independent(self, ledger: Ledger) -> None:
        """A half-finished fan-out: the delivered sink is done, the other is still open."""
        ledger.claim(event_id="e1", sink="a", now=T0, lease=LEASE)
        ledger.complete(event_id="e1", sink="a", receipt={}, now=T0)
        assert ledger.claim(event_id="e1", sink="b", now=T0, lease=LEASE).state is ClaimState.ACQUIRED


class TestRepeats:
    def decide(
        self,
        ledger: Ledger,
        event_id: str,
        status: str = "firing",
        at: datetime = T0,
        scope: str = "route",
        window: timedelta = WINDOW,
    ) -> RepeatDecision:
        return ledger.decide_repeat(
            event_id=event_id, scope=scope, fingerprint="fp", status=status, window=window, now=at
        )

    def test_first_occurrence_is_sent(self, ledger: Ledger) -> None:
        """The first event of an alert is never suppressed."""
        assert self.decide(ledger, "e1").verdict is Verdict.FIRST

    @pytest.mark.parametrize(
        ("status", "offset", "verdict"),
        [
            ("firing", timedelta(minutes=5), Verdict.SUPPRESSED),
            ("firing", timedelta(minutes=30), Verdict.WINDOW_ELAPSED),
            ("resolved", timedelta(minutes=5), Verdict.CHANGED),
        ],
        ids=["same-status-in-window", "window-elapsed", "status-changed"],
    )
    def test_second_occurrence(
        self, ledger: Ledger, status: str, offset: timedelta, verdict: Verdict
    ) -> None:
        """Only a repeat with the same status inside the window is suppressed."""
        self.decide(ledger, "e1")
        assert self.decide(ledger, "e2", status, T0 + offset).verdict is verdict

    def test_suppressed_repeats_are_counted_and_name_the_original(self, ledger: Ledger) -> None:
        """Each repeat increments the counter and says which event it repeats."""
        self.decide(ledger, "e1")
        decisions = [self.decide(ledger, f"r{i}", at=T0 + timedelta(minutes=i)) for i in range(1, 4)]
        assert [d.count for d in decisions] == [1, 2, 3]
        assert {d.repeat_of for d in decisions} == {"e1"}

    def test_next_notification_after_window_carries_the_folded_count(self, ledger: Ledger) -> None:
        """When the window elapses, the new notification reports how many repeats were folded."""
        self.decide(ledger, "e1")
        self.decide(ledger, "r1", at=T0 + timedelta(minutes=1))
        self.decide(ledger, "r2", at=T0 + timedelta(minutes=2))
        later = self.decide(ledger, "e3", at=T0 + timedelta(minutes=31))
        assert (later.verdict, later.count) == (Verdict.WINDOW_ELAPSED, 2)

    def test_decision_is_stable_for_a_redelivered_event(self, ledger: Ledger) -> None:
        """Asking again for the same event (a redelivery) returns the first answer, not 'suppressed'."""
        first = self.decide(ledger, "e1")
        again = self.decide(ledger, "e1", at=T0 + timedelta(minutes=1))
        assert again == first

    def test_zero_window_never_suppresses(self, ledger: Ledger) -> None:
        """A route without suppress_for sends every event."""
        self.decide(ledger, "e1", window=timedelta(0))
        assert self.decide(ledger, "e2", window=timedelta(0)).verdict is Verdict.NO_WINDOW

    def test_scopes_are_independent(self, ledger: Ledger) -> None:
        """Two routes keep their own windows for the same alert."""
        self.decide(ledger, "e1", scope="a")
        assert self.decide(ledger, "e2", scope="b").verdict is Verdict.FIRST


class TestExpiry:
    @pytest.mark.parametrize("kind", KINDS)
    def test_expired_records_read_as_absent(
        self, kind: str, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """Records past their retention are treated as absent (Firestore's TTL deletes them later)."""
        ledger = make_ledger(kind, request, tmp_path, retention=timedelta(days=1))
        ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        ledger.complete(event_id="e1", sink="s", receipt={}, now=T0)
        ledger.decide_repeat(
            event_id="e1", scope="r", fingerprint="fp", status="firing", window=WINDOW, now=T0
        )
        later = T0 + timedelta(days=2)
        assert ledger.claim(event_id="e1", sink="s", now=later, lease=LEASE).state is ClaimState.ACQUIRED
        again = ledger.decide_repeat(
            event_id="e2", scope="r", fingerprint="fp", status="firing", window=WINDOW, now=later
        )
        assert again.verdict is Verdict.FIRST
        ledger.close()


class TestRecords:
    def test_trace_keeps_entries_in_order(self, ledger: Ledger) -> None:
        """`alert-relay trace` reads an event's fate back in the order it happened."""
        for outcome in ("received", "delivered", "handled"):
            ledger.record(TraceEntry("e1", T0, outcome, route="r", sink="s", attempt=1))
        assert [e.outcome for e in ledger.trace("e1")] == ["received", "delivered", "handled"]
        assert ledger.trace("other") == []

    def test_dead_letters_keep_raw_data_and_reason(self, ledger: Ledger) -> None:
        """A dead letter keeps the exact bytes and attributes so it can be replayed."""
        record = DeadLetterRecord("m1", T0, "malformed_payload", "not JSON", b"\x00{bad", {"source": "argo"})
        ledger.dead_letter(record)
        assert ledger.dead_letters() == [record]

    def test_saved_event_round_trips(self, ledger: Ledger) -> None:
        """The normalised event is kept for trace and replay."""
        ledger.save_event("e1", '{"a": 1}', T0)
        assert ledger.load_event("e1") == '{"a": 1}'
        assert ledger.load_event("nope") is None


class TestSqliteDurability:
    def test_state_survives_reopening_the_file(self, tmp_path: Path) -> None:
        """A restarted relay (new process, same file) still knows what it delivered."""
        path = tmp_path / "l.sqlite3"
        first = SqliteLedger(path)
        first.claim(event_id="e1", sink="s", now=T0, lease=LEASE)
        first.complete(event_id="e1", sink="s", receipt={"ts": "1"}, now=T0)
        first.close()
        second = SqliteLedger(path)
        assert second.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state is ClaimState.DONE
        second.close()


def _claim_in_process(
    path: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue
) -> None:  # type: ignore[name-defined]
    ledger = SqliteLedger(path)
    start.wait(10)
    out.put(ledger.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state.value)
    ledger.close()


def test_sqlite_claim_is_atomic_across_processes(tmp_path: Path) -> None:
    """Several processes racing for one delivery: exactly one acquires it."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    path = str(tmp_path / "race.sqlite3")
    SqliteLedger(path).close()
    workers = [ctx.Process(target=_claim_in_process, args=(path, start, out)) for _ in range(6)]
    for w in workers:
        w.start()
    start.set()
    results = sorted(out.get(timeout=30) for _ in workers)
    for w in workers:
        w.join(10)
    assert results == ["acquired"] + ["busy"] * 5


@pytest.mark.parametrize(
    ("url", "kind"),
    [("memory", MemoryLedger), ("sqlite:///{tmp}/x/l.sqlite3", SqliteLedger)],
    ids=["memory", "sqlite"],
)
def test_open_ledger_picks_the_implementation(url: str, kind: Callable[..., Ledger], tmp_path: Path) -> None:
    """RELAY_LEDGER names the implementation; SQLite creates its folder."""
    ledger = open_ledger(url.format(tmp=tmp_path))
    assert isinstance(ledger, kind)  # type: ignore[arg-type]
    ledger.close()


@pytest.mark.emulator
def test_firestore_claim_is_atomic_across_instances(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Six relay instances (own clients) racing for one delivery: exactly one acquires it."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.ledger.firestore import FirestoreLedger

    request.getfixturevalue("firestore_env")
    prefix = unique_name("race").replace("-", "_")
    instances = [FirestoreLedger(project="local-project", prefix=prefix) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        states = list(
            pool.map(lambda lg: lg.claim(event_id="e1", sink="s", now=T0, lease=LEASE).state, instances)
        )
    assert sorted(s.value for s in states) == ["acquired"] + ["busy"] * 5
    for instance in instances:
        instance.close()


@pytest.mark.emulator
def test_firestore_concurrent_repeats_are_all_counted(request: pytest.FixtureRequest) -> None:
    """Five instances deciding repeats of one alert at once: one is sent, four counted 1..4."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.ledger.firestore import FirestoreLedger

    request.getfixturevalue("firestore_env")
    prefix = unique_name("rep").replace("-", "_")
    instances = [FirestoreLedger(project="local-project", prefix=prefix) for _ in range(5)]

    def decide(pair: tuple[int, FirestoreLedger]) -> RepeatDecision:
        n, ledger = pair
        return ledger.decide_repeat(
            event_id=f"e{n}", scope="r", fingerprint="fp", status="firing", window=WINDOW, now=T0
        )

    with ThreadPoolExecutor(5) as pool:
        decisions = list(pool.map(decide, enumerate(instances)))
    assert sorted(d.verdict.value for d in decisions) == ["first"] + ["suppressed"] * 4
    assert sorted(d.count for d in decisions if d.verdict is Verdict.SUPPRESSED) == [1, 2, 3, 4]
    for instance in instances:
        instance.close()


class TestIncidents:
    def test_incident_state_round_trips(self, ledger: Ledger) -> None:
        """The Slack message of an incident is found again by its key."""
        state = {"channel": "C0ALERTS", "ts": "1767225600.000100", "status": "firing", "repeats": 2}
        ledger.put_incident("alerts/slack:#alerts|fp", state, T0)
        assert ledger.get_incident("alerts/slack:#alerts|fp", T0 + timedelta(hours=1)) == state
        assert ledger.get_incident("other", T0) is None

    def test_incident_state_is_replaced(self, ledger: Ledger) -> None:
        """A resolve overwrites the firing state."""
        ledger.put_incident("k", {"status": "firing"}, T0)
        ledger.put_incident("k", {"status": "resolved"}, T0)
        assert ledger.get_incident("k", T0) == {"status": "resolved"}

    def test_incident_state_expires(self, ledger: Ledger) -> None:
        """Past retention an incident is forgotten: the next event opens a new message."""
        ledger.put_incident("k", {"status": "firing"}, T0)
        assert ledger.get_incident("k", T0 + timedelta(days=31)) is None
