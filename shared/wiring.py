"""The composition root: the only module that knows every concrete class and wires them together."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr

from shared.config import Settings, load_settings
from shared.deadletter import DeadLetter, LedgerDeadLetter, PubSubDeadLetter
from shared.errors import ConfigError
from shared.ledger import Ledger, open_ledger
from shared.pipeline import Clock, Relay, utc_now
from shared.routing import RoutingConfig, load_routes
from shared.sinks import Sink
from shared.sinks.pubsub import Publisher, PubSubSink
from shared.sinks.slack import ConsoleTransport, SlackChannelSink, SlackWebhookSink, WebApiTransport
from shared.sinks.webhook import WebhookSink


def on_google_cloud(env: Mapping[str, str] = os.environ) -> bool:
    """True on Cloud Functions gen2 / Cloud Run, which set K_SERVICE."""
    return bool(env.get("K_SERVICE"))


def build_sinks(
    routing: RoutingConfig,
    settings: Settings,
    *,
    publisher: Publisher,
    env: Mapping[str, str] = os.environ,
    console: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    incidents: Ledger | None = None,
    clock: Clock = utc_now,
) -> dict[str, list[Sink]]:
    """One sink object per target in the routing config, keyed by receiver name.

    With ``incidents`` (the ledger), Slack channels keep one message per incident, updated in place.
    """
    sinks: dict[str, list[Sink]] = {}
    web_api: WebApiTransport | None = None  # one WebClient per instance, shared by every channel
    for name, receiver in routing.receivers.items():
        built: list[Sink] = []
        for index, slack in enumerate(receiver.slack):
            key = f"{name}/slack:{slack.channel}"
            if settings.slack_bot_token is None and settings.slack_webhook_url is not None:
                # Incoming webhooks cannot update messages: every event is its own message.
                built.append(
                    SlackWebhookSink(
                        key=key,
                        url=settings.slack_webhook_url,
                        timeout=settings.relay_http_timeout,
                        max_retry_wait=settings.relay_max_retry_wait,
                        sleep=sleep,
                    )
                )
                continue
            if settings.slack_bot_token is not None:
                transport = web_api or WebApiTransport(
                    token=settings.slack_bot_token,
                    api_url=settings.slack_api_url,
                    timeout=settings.relay_http_timeout,
                    max_retry_wait=settings.relay_max_retry_wait,
                    sleep=sleep,
                )
                web_api = transport
            elif on_google_cloud(env):
                raise ConfigError(
                    f"receivers.{name}.slack[{index}]: SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL must be set "
                    "on Google Cloud (the console stand-in is for local runs only)"
                )
            else:
                transport = ConsoleTransport(console)
            built.append(
                SlackChannelSink(
                    key=key, channel=slack.channel, transport=transport, incidents=incidents, clock=clock
                )
            )
        for pubsub in receiver.pubsub:
            topic = settings.topic_path(pubsub.topic)
            built.append(PubSubSink(key=f"{name}/pubsub:{topic}", topic=topic, publisher=publisher))
        for index, hook in enumerate(receiver.webhook):
            secret = None
            if hook.secret_env:
                value = env.get(hook.secret_env)
                if not value:
                    raise ConfigError(
                        f"receivers.{name}.webhook[{index}].secret_env: environment variable "
                        f"{hook.secret_env} is not set"
                    )
                secret = SecretStr(value)
            # The key names the host and a hash, never the full URL (its query may carry a token).
            digest = hashlib.sha256(hook.url.encode()).hexdigest()[:8]
            built.append(
                WebhookSink(
                    key=f"{name}/webhook:{urlsplit(hook.url).netloc}#{digest}",
                    url=hook.url,
                    secret=secret,
                    timeout=settings.relay_http_timeout,
                )
            )
        sinks[name] = built
    return sinks


def build_relay(
    settings: Settings,
    *,
    routing: RoutingConfig | None = None,
    ledger: Ledger | None = None,
    clock: Clock = utc_now,
    env: Mapping[str, str] = os.environ,
    console: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Relay:
    routing = routing or load_routes(settings.relay_routes)
    publisher = Publisher(timeout=settings.relay_http_timeout)
    ledger = ledger or open_ledger(
        settings.relay_ledger,
        retention=timedelta(days=settings.relay_ledger_retention_days),
        project=settings.google_cloud_project,
        database=settings.relay_firestore_database,
        prefix=settings.relay_firestore_prefix,
    )
    dead_letter: DeadLetter
    if settings.relay_dead_letter_topic:
        dead_letter = PubSubDeadLetter(settings.topic_path(settings.relay_dead_letter_topic), publisher)
    else:
        dead_letter = LedgerDeadLetter(ledger)
    return Relay(
        routing=routing,
        sinks=build_sinks(
            routing,
            settings,
            publisher=publisher,
            env=env,
            console=console,
            sleep=sleep,
            incidents=ledger,
            clock=clock,
        ),
        ledger=ledger,
        dead_letter=dead_letter,
        clock=clock,
        max_attempts=settings.relay_max_attempts,
    )


def relay_from_environment() -> Relay:
    """Settings, routes, ledger and sinks from the environment, validated once (cold start)."""
    from shared import logs

    settings = load_settings()
    logs.configure(settings.relay_log_level)
    return build_relay(settings)
