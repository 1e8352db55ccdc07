"""Routing: which receivers an event takes, and errors that name the offending key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.model import AlertEvent, Severity, Source, Status
from shared.routing import DEFAULT_ROUTE, Matcher, load_routes, load_routes_text, parse_duration

DATA = Path(__file__).parent / "data" / "routes"
ROUTES = load_routes(DATA / "routes.yaml")


def event(
    source: Source = Source.ARGO,
    status: Status = Status.FIRING,
    severity: Severity = Severity.ERROR,
    **labels: str,
) -> AlertEvent:
    return AlertEvent(
        event_id="e1",
        source=source,
        fingerprint="fp",
        status=status,
        severity=severity,
        title="t",
        labels=labels,
    )


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (
            event(severity=Severity.CRITICAL, env="prod", namespace="ml-asr"),
            [
                ("prod-critical", ("platform",)),
                ("status-feed", ("status",)),
                ("ml-failures", ("ml", "audit")),
            ],
        ),
        (
            event(env="prod", namespace="ml-asr"),
            [("status-feed", ("status",)), ("ml-failures", ("ml", "audit"))],
        ),
        (event(env="dev", namespace="ml-asr"), [("status-feed", ("status",)), ("dev-quiet", ("nowhere",))]),
        (event(namespace="ml-asr", team="platform"), [("status-feed", ("status",))]),
        (event(status=Status.RESOLVED, namespace="ml-asr"), [("status-feed", ("status",))]),
        (event(source=Source.EVENT, namespace="batch"), [("not-ml", ("platform",))]),
        (event(source=Source.EVENT, namespace="ml-x"), [(DEFAULT_ROUTE, ("ml",))]),
    ],
    ids=[
        "prod-critical-continues-through-all",
        "prod-error-skips-critical-route",
        "dev-stops-at-dev-quiet",
        "negation-excludes-team-then-continue-suffices",
        "resolved-matches-only-status-feed",
        "negated-regex-matches",
        "nothing-matches-default",
    ],
)
def test_event_takes_routes(alert: AlertEvent, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    """Routes are tried in order; the first match stops unless it continues; the default catches the rest."""
    assert [(d.route, d.receivers) for d in ROUTES.match(alert)] == expected


def test_route_carries_its_suppression_window() -> None:
    """suppress_for is parsed per route and reaches the decision."""
    decision = next(d for d in ROUTES.match(event(namespace="ml-asr")) if d.route == "ml-failures")
    assert decision.suppress_for == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "value", "matches"),
    [
        ('env="prod"', "prod", True),
        ('env="prod"', "production", False),
        ('env!="prod"', "dev", True),
        ('env=~"prod|staging"', "staging", True),
        ('env=~"prod"', "production", False),  # anchored like Alertmanager
        ('env!~"dev.*"', "dev-1", False),
        ('env=""', "", True),  # an absent label equals the empty string
        ('env="a\\"b"', 'a"b', True),
    ],
)
def test_matcher_semantics(text: str, value: str, matches: bool) -> None:
    """Matchers follow Alertmanager: =, !=, =~, !~ with fully anchored regexes."""
    labels = {"env": value} if value else {}
    assert Matcher.parse(text).matches(event(**labels)) is matches


def test_labels_prefix_reaches_a_label_shadowed_by_an_event_field() -> None:
    """`labels.status` addresses a label even though `status` is the event's own field."""
    alert = AlertEvent(
        event_id="e1",
        source=Source.ARGO,
        fingerprint="fp",
        status=Status.FIRING,
        title="t",
        labels={"status": "degraded"},
    )
    assert Matcher.parse('labels.status="degraded"').matches(alert)
    assert Matcher.parse('status="firing"').matches(alert)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("undefined-receiver", "routes[1].receivers: undefined receiver 'pager' in route 'r2'"),
        ("bad-regex", "routes[0].matchers: matchers[0]: invalid regex in matcher 'env=~\"(prod\"'"),
        ("bad-matcher", "routes[0].matchers: matchers[0]: invalid matcher 'env: prod'"),
        ("unknown-key", "routes[0].contine: unknown key"),
        ("missing-default", "default: Field required"),
        ("bad-duration", "routes[0].suppress_for: invalid duration 'soon'"),
        ("empty-receiver", "receivers.a: a receiver needs at least one of slack, pubsub or webhook"),
        ("duplicate-route", "routes[1].name: duplicate route name 'r1'"),
        ("bad-webhook-url", "receivers.a.webhook[0].url: String should match pattern"),
        ("not-yaml", "not valid YAML"),
        ("wrong-version", "version: Input should be 1"),
    ],
)
def test_bad_config_names_the_offending_key(case: str, message: str) -> None:
    """Each invalid routes file fails at load with an error naming where the problem is."""
    path = DATA / f"config.{case}.yaml"
    with pytest.raises(ConfigError) as info:
        load_routes(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_routes_file_names_the_variable(tmp_path: Path) -> None:
    """A wrong RELAY_ROUTES path says which setting is wrong."""
    with pytest.raises(ConfigError, match="RELAY_ROUTES: cannot read"):
        load_routes(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h30m", 5400), ("1d", 86400), (0, 0), ("0s", 0)]
)
def test_durations(text: str | int, seconds: int) -> None:
    """Durations read like Alertmanager's: s, m, h, d, combinable."""
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_explain_says_why_each_route_matched_or_not() -> None:
    """`routes test` output names the matcher that failed and the value it saw."""
    lines = ROUTES.explain(event(env="dev", namespace="ml-asr"))
    text = "\n".join(lines)
    assert "route prod-critical: no match: ✗ env=\"prod\" (env is 'dev')" in text
    assert "route dev-quiet: MATCH" in text
    assert "route ml-failures: not evaluated (route dev-quiet matched without continue)" in text
    assert "default route: not used (a route matched)" in text


def test_bundled_and_readme_routes_validate() -> None:
    """The embedded default and the documented example load through the same validator."""
    load_routes()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```yaml\n# routes.yaml", 1)[1].split("```", 1)[0]
    load_routes_text("# routes.yaml" + block, origin="README.md")
