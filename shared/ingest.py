"""The ingest function's logic: authenticated webhooks in, validated messages onto the alerts topic.

Senders and how they authenticate (any configured credential accepts any supported payload):
- Cloud Monitoring ``webhook_tokenauth`` channel: ``?auth_token=`` equal to ``INGEST_MONITORING_TOKEN``;
- Cloud Monitoring ``webhook_basicauth`` channel, Alertmanager ``basic_auth``: HTTP Basic equal to
  ``INGEST_BASIC_USER`` / ``INGEST_BASIC_PASSWORD``;
- ``alert-relay publish`` (its fallback path), Alertmanager ``authorization``: ``Authorization:
  Bearer`` equal to ``INGEST_TOKEN``.

Answers: 200 only after Pub/Sub accepted every message; 401 bad or missing credentials (compared in
constant time, nothing about the secret in the answer or the logs); 400 an invalid payload, with the
reason; 405 not a POST; 413 a body over ``INGEST_MAX_BODY_BYTES``; 503 Pub/Sub unavailable (with
Retry-After), so the sender retries. An Alertmanager group becomes one message per alert.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import logs, sources
from shared.errors import ConfigError, DeliveryError, UnsupportedPayload
from shared.model import Source
from shared.sinks.pubsub import Publisher
from shared.sources import alertmanager

RETRY_AFTER_SECONDS = 30


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    relay_alerts_topic: str = ""
    google_cloud_project: str | None = None
    ingest_token: SecretStr | None = None
    ingest_monitoring_token: SecretStr | None = None
    ingest_basic_user: str | None = None
    ingest_basic_password: SecretStr | None = None
    ingest_max_body_bytes: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 1024 * 1024
    relay_http_timeout: Annotated[float, Field(gt=0, le=60)] = 10.0
    relay_log_level: str = "INFO"

    def topic_path(self) -> str:
        topic = self.relay_alerts_topic
        if topic.startswith("projects/"):
            return topic
        if not topic:
            raise ConfigError("RELAY_ALERTS_TOPIC: must be set (the topic the relay subscribes to)")
        if not self.google_cloud_project:
            raise ConfigError("RELAY_ALERTS_TOPIC: a short topic name needs GOOGLE_CLOUD_PROJECT")
        return f"projects/{self.google_cloud_project}/topics/{topic}"


def load_ingest_settings(**overrides: Any) -> IngestSettings:
    try:
        settings = IngestSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid ingest configuration: {problems}") from None
    settings.topic_path()
    if not (settings.ingest_token or settings.ingest_monitoring_token or settings.ingest_basic_password):
        raise ConfigError(
            "INGEST_TOKEN, INGEST_MONITORING_TOKEN or INGEST_BASIC_USER/INGEST_BASIC_PASSWORD must be set: "
            "the ingest function never accepts unauthenticated requests"
        )
    if bool(settings.ingest_basic_user) != bool(settings.ingest_basic_password):
        raise ConfigError("INGEST_BASIC_USER and INGEST_BASIC_PASSWORD must be set together")
    return settings


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _same(provided: str, expected: SecretStr | str | None) -> bool:
    if expected is None:
        return False
    secret = expected.get_secret_value() if isinstance(expected, SecretStr) else expected
    # compare_digest takes the same time whatever the first differing byte is.
    return hmac.compare_digest(provided.encode(), secret.encode())


class Ingest:
    def __init__(self, settings: IngestSettings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.topic = settings.topic_path()
        self._publisher = publisher or Publisher(timeout=settings.relay_http_timeout)

    def authenticated(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The credential kind that matched, or None. Every configured kind is checked."""
        s = self.settings
        matched: str | None = None
        token = query.get("auth_token")
        if token is not None and _same(token, s.ingest_monitoring_token):
            matched = "token"
        authorization = headers.get("Authorization") or headers.get("authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), s.ingest_token):
            matched = "bearer"
        if scheme.lower() == "basic" and s.ingest_basic_user and s.ingest_basic_password:
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return matched
            # Both halves are compared, always, so timing does not tell which one was wrong.
            user_ok = _same(user, s.ingest_basic_user)
            password_ok = _same(password, s.ingest_basic_password)
            if user_ok and password_ok:
                matched = "basic"
        return matched

    def handle(
        self,
        *,
        method: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
        content_length: int | None = None,
    ) -> Answer:
        if method != "POST":
            return Answer(
                405, {"error": "method_not_allowed", "detail": "POST a JSON payload"}, {"Allow": "POST"}
            )
        credential = self.authenticated(headers, query)
        if credential is None:
            logs.outcome(
                "ingest refused: bad or missing credentials", level=logging.WARNING, outcome="unauthorized"
            )
            return Answer(
                401,
                {"error": "unauthorized"},
                {"WWW-Authenticate": 'Bearer realm="alert-relay", Basic realm="alert-relay"'},
            )
        limit = self.settings.ingest_max_body_bytes
        if (content_length or 0) > limit or len(body) > limit:
            return Answer(413, {"error": "payload_too_large", "detail": f"the limit is {limit} bytes"})
        try:
            messages = self._messages(body)
        except UnsupportedPayload as exc:
            logs.outcome(
                "ingest refused: invalid payload", level=logging.WARNING, outcome="invalid", reason=exc.reason
            )
            return Answer(400, {"error": exc.reason.value, "detail": str(exc)})
        published: list[str] = []
        event_ids: list[str] = []
        for payload, source, event_id in messages:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            attributes = {"source": source.value, "event_id": event_id, "via": f"ingest-{credential}"}
            try:
                published.append(self._publisher.publish(self.topic, data, attributes))
            except DeliveryError as exc:
                logs.outcome(
                    "ingest could not publish; the sender should retry",
                    level=logging.ERROR,
                    event_id=event_id,
                    source=source.value,
                    outcome="retry",
                    reason=exc.reason,
                    detail=str(exc),
                )
                status = 503 if exc.retryable else 500
                return Answer(
                    status,
                    {
                        "error": exc.reason.value,
                        "detail": "could not publish to the alerts topic; retry later",
                    },
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            event_ids.append(event_id)
        logs.outcome(
            f"ingest accepted {len(published)} message(s)", outcome="accepted", source=messages[0][1].value
        )
        return Answer(200, {"accepted": len(published), "message_ids": published, "event_ids": event_ids})

    @staticmethod
    def _messages(body: bytes) -> list[tuple[dict[str, Any], Source, str]]:
        """Validated (payload, source, event id) to publish; an Alertmanager group becomes one per alert."""
        try:
            payload = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnsupportedPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise UnsupportedPayload(f"body must be a JSON object, got {type(payload).__name__}")
        source = sources.detect(payload, {})
        candidates = (
            alertmanager.split(payload)
            if source is Source.ALERTMANAGER and "alerts" in payload
            else [payload]
        )
        if not candidates:
            raise UnsupportedPayload("the notification holds no alerts")
        out = []
        for candidate in candidates:
            event = sources.parse_payload(candidate)
            out.append((candidate, event.source, event.event_id))
        return out


def ingest_from_environment() -> Ingest:
    settings = load_ingest_settings()
    logs.configure(settings.relay_log_level)
    return Ingest(settings)
