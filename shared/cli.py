"""``alert-relay``: render, routes test, schema, trace, and the local run.

Exit status: 0 on success; 2 when the input or configuration cannot be accepted, with one line on
stderr naming the problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from shared.errors import RelayError

EXIT_INPUT = 2


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _InputError(f"cannot read {path}: {exc.strerror}") from None


class _InputError(Exception):
    pass


def _event_from_file(path: str) -> Any:
    from shared import sources
    from shared.envelope import decode

    return sources.parse(decode(_read(path)))


def _offline_relay(routes: str | None) -> Any:
    """A relay that renders but never sends: in-memory ledger, configured sinks, no clients used."""
    from shared.config import load_settings
    from shared.routing import load_routes
    from shared.wiring import build_relay

    overrides: dict[str, Any] = {"relay_ledger": "memory"}
    if routes:
        overrides["relay_routes"] = Path(routes)
    settings = load_settings(**overrides)
    routing = load_routes(settings.relay_routes)
    # Rendering sends nothing: a webhook secret that is not set here gets a placeholder (it would
    # only sign the request), and K_SERVICE is dropped so the console stand-in is allowed.
    env = {k: v for k, v in os.environ.items() if k != "K_SERVICE"}
    for receiver in routing.receivers.values():
        for hook in receiver.webhook:
            if hook.secret_env:
                env.setdefault(hook.secret_env, "<unset: only used to sign when sending>")
    return build_relay(settings, routing=routing, env=env)


def cmd_render(args: argparse.Namespace) -> int:
    event = _event_from_file(args.payload)
    relay = _offline_relay(args.routes)
    deliveries = [
        {
            "route": t.route,
            "receiver": t.receiver,
            "sink": t.sink.key,
            "kind": t.sink.kind,
            "request": t.sink.render(event),
        }
        for t in relay.plan(event)
    ]
    print(
        json.dumps(
            {"event": event.model_dump(mode="json"), "deliveries": deliveries}, indent=2, ensure_ascii=False
        )
    )
    return 0


def cmd_routes_test(args: argparse.Namespace) -> int:
    event = _event_from_file(args.payload)
    relay = _offline_relay(args.routes)
    print(
        f"event {event.event_id}: source={event.source.value} status={event.status.value} "
        f"severity={event.severity.value} title={event.title!r}"
    )
    if event.labels:
        print("labels: " + ", ".join(f'{k}="{v}"' for k, v in sorted(event.labels.items())))
    for line in relay.routing.explain(event):
        print(line)
    print("delivers to:")
    for target in relay.plan(event):
        print(
            f"  {target.sink.key} ({target.sink.kind}) via route {target.route}, receiver {target.receiver}"
        )
    return 0


def cmd_schema(_: argparse.Namespace) -> int:
    from shared.model import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from shared.config import load_settings
    from shared.ledger import open_ledger

    url = args.ledger or load_settings().relay_ledger
    ledger = open_ledger(url)
    entries = ledger.trace(args.event_id) or ledger.trace(f"message:{args.event_id}")
    if not entries:
        print(f"no record of {args.event_id} in {url}", file=sys.stderr)
        return 1
    for e in entries:
        parts = [e.at.isoformat(timespec="seconds"), e.outcome]
        parts += [
            f"{k}={v}"
            for k, v in (("route", e.route), ("sink", e.sink), ("attempt", e.attempt), ("reason", e.reason))
            if v
        ]
        if e.detail:
            parts.append(f"({e.detail})")
        print(" ".join(str(p) for p in parts))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from shared.publisher import WorkflowVars, build_payload, load_publisher_settings, paths_from, publish

    labels = dict(item.split("=", 1) for item in args.label if "=" in item)
    overrides = {k: v for k, v in {"topic": args.topic, "ingest_url": args.ingest_url}.items() if v}
    try:
        settings = load_publisher_settings(**overrides)
        paths, problem = paths_from(settings), ""
        ui_url, env = args.ui_url or settings.ui_url, args.env or settings.env
    except RelayError as exc:
        # Misconfigured publisher: nothing to send with, but the event must not vanish.
        paths, problem, ui_url, env = [], str(exc), args.ui_url, args.env
    variables = WorkflowVars(
        name=args.name,
        namespace=args.namespace,
        uid=args.uid,
        status=args.status,
        created_at=args.created_at,
        duration=args.duration,
        failures=args.failures,
        labels=args.labels,
        parameters=args.parameters,
    )
    payload = build_payload(variables, ui_url=ui_url, env=env, labels=labels)
    result = publish(payload, paths)
    if problem:
        print(f"alert-relay: {problem}", file=sys.stderr)
    return result.exit_code


def cmd_local(args: argparse.Namespace) -> int:
    from localdev.local import run

    return run(use_emulator=not args.no_emulator, state_dir=Path(args.state_dir))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alert-relay", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="print the event and exactly what would be sent; sends nothing")
    render.add_argument(
        "payload", help="raw payload file (bare, push envelope or CloudEvent), or - for stdin"
    )
    render.add_argument("--routes", help="routes file (default: RELAY_ROUTES or the bundled example)")
    render.set_defaults(func=cmd_render)

    routes = sub.add_parser("routes", help="routing tools")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True)
    test = routes_sub.add_parser("test", help="explain which routes and receivers an event takes, and why")
    test.add_argument("payload")
    test.add_argument("--routes", help="routes file (default: RELAY_ROUTES or the bundled example)")
    test.set_defaults(func=cmd_routes_test)

    schema = sub.add_parser("schema", help="print the alert event's JSON Schema")
    schema.set_defaults(func=cmd_schema)

    trace = sub.add_parser(
        "trace", help="tell the fate of an event (or of a message id that was dead-lettered)"
    )
    trace.add_argument("event_id")
    trace.add_argument("--ledger", help="ledger URL (default: RELAY_LEDGER)")
    trace.set_defaults(func=cmd_trace)

    pub = sub.add_parser(
        "publish",
        help="publish an Argo exit-handler event (Pub/Sub, then the ingest URL, then a log line)",
        description="Pass each {{workflow.*}} value as its own argument, exactly as Argo substitutes it.",
    )
    for flag, variable in (
        ("--name", "workflow.name"),
        ("--namespace", "workflow.namespace"),
        ("--uid", "workflow.uid"),
        ("--status", "workflow.status"),
        ("--created-at", "workflow.creationTimestamp"),
        ("--duration", "workflow.duration"),
        ("--failures", "workflow.failures"),
        ("--labels", "workflow.labels.json"),
        ("--parameters", "workflow.parameters.json"),
    ):
        pub.add_argument(flag, default="", help=f"{{{{{variable}}}}}")
    pub.add_argument("--label", action="append", default=[], help="extra label KEY=VALUE (repeatable)")
    pub.add_argument("--topic", help="alerts topic (default: ALERT_RELAY_TOPIC)")
    pub.add_argument("--ingest-url", help="fallback ingest URL (default: ALERT_RELAY_INGEST_URL)")
    pub.add_argument("--ui-url", default="", help="Argo UI base URL (default: ALERT_RELAY_UI_URL)")
    pub.add_argument("--env", default="", help="environment label (default: ALERT_RELAY_ENV)")
    pub.set_defaults(func=cmd_publish)

    local = sub.add_parser(
        "local", help="run the relay locally on embedded defaults and feed it example events"
    )
    local.add_argument(
        "--no-emulator", action="store_true", help="use the in-process hand-off even if the emulator exists"
    )
    local.add_argument("--state-dir", default=".alert-relay", help="where the local SQLite ledger lives")
    local.set_defaults(func=cmd_local)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RelayError, _InputError) as exc:
        print("alert-relay: " + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
