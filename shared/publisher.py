"""``alert-relay publish``: the Argo exit handler's way out, built so that it cannot lose the alert.

The fallback chain, in order:
1. Pub/Sub, the alerts topic, with bounded retries and backoff (google-api-core's Retry; about a
   minute in total by default, ``ALERT_RELAY_PUBSUB_DEADLINE``);
2. the ingest function's URL (``ALERT_RELAY_INGEST_URL``), with a bearer token;
3. one structured ERROR line on stdout carrying the whole event under the fixed marker
   ``"alert_relay": "UNDELIVERED_EVENT"``, which a log-based metric and alert policy turn into an alert.

Exit status 0 when the event got out by path 1 or 2; 1 when only the log line was left, so the
Argo UI shows the exit handler failed. Workflow variables are forwarded as Argo substituted them;
the relay parses them, so bad JSON in ``failures`` or an unknown status never crash the step: the
event is still published, and the relay notes what it could not read.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TextIO

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError, UnsupportedPayload

MARKER_FIELD = "alert_relay"
MARKER_VALUE = "UNDELIVERED_EVENT"
EXIT_DELIVERED = 0
EXIT_UNDELIVERED = 1


class PublisherSettings(BaseSettings):
    """The publisher's environment (a Kubernetes Secret provides the ingest token)."""

    model_config = SettingsConfigDict(
        env_prefix="ALERT_RELAY_", case_sensitive=False, extra="ignore", frozen=True
    )

    topic: str = ""  # projects/PROJECT/topics/alerts
    ingest_url: str = ""
    ingest_token: SecretStr | None = None
    ui_url: str = ""
    env: str = ""
    pubsub_deadline: Annotated[float, Field(gt=0, le=600)] = 60.0
    ingest_timeout: Annotated[float, Field(gt=0, le=120)] = 15.0


def load_publisher_settings(**overrides: Any) -> PublisherSettings:
    try:
        settings = PublisherSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"ALERT_RELAY_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid publisher configuration: {problems}") from None
    if not settings.topic and not settings.ingest_url:
        raise ConfigError(
            "ALERT_RELAY_TOPIC or ALERT_RELAY_INGEST_URL must be set: there is nowhere to publish"
        )
    if settings.topic and not settings.topic.startswith("projects/"):
        raise ConfigError("ALERT_RELAY_TOPIC: must be projects/PROJECT/topics/TOPIC")
    if settings.ingest_url and not settings.ingest_url.startswith(("https://", "http://")):
        raise ConfigError("ALERT_RELAY_INGEST_URL: must be an http(s) URL")
    return settings


@dataclass(frozen=True)
class WorkflowVars:
    """The exit handler's ``{{workflow.*}}`` values, exactly as Argo substituted them."""

    name: str
    namespace: str
    uid: str = ""
    status: str = ""
    created_at: str = ""
    duration: str = ""
    failures: str = ""
    labels: str = ""
    parameters: str = ""


def build_payload(
    variables: WorkflowVars, *, ui_url: str = "", env: str = "", labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The compact Argo exit-handler event (see README), with a deterministic event id."""
    workflow = {
        "name": variables.name,
        "namespace": variables.namespace,
        "uid": variables.uid,
        "status": variables.status,
        "created_at": variables.created_at,
        "duration": variables.duration,
        "failures": variables.failures,
        "labels": variables.labels,
        "parameters": variables.parameters,
    }
    payload: dict[str, Any] = {"source": "argo", "version": 1, "workflow": workflow}
    if ui_url:
        payload["ui_url"] = ui_url
    if env:
        payload["env"] = env
    if labels:
        payload["labels"] = dict(labels)
    # The same id on every path (Pub/Sub, ingest, a retried step) so the relay counts it once.
    payload["event_id"] = _event_id(payload)
    return payload


def _event_id(payload: Mapping[str, Any]) -> str:
    from shared.sources import argo

    try:
        return argo.parse(payload).event_id
    except (UnsupportedPayload, ValidationError):
        # Unreadable enough that the relay will dead-letter it with the reason; still publish it.
        w = payload["workflow"]
        return argo.occurrence_id(w["namespace"], w["name"], w["uid"], w["status"], w["failures"])


class PathFailed(Exception):
    """One way out did not work; the message says why (never a secret)."""


class Path(Protocol):
    name: str

    def send(self, data: bytes, attributes: Mapping[str, str]) -> str: ...


class PubSubPath:
    """Publish with google-api-core's retry: exponential backoff, bounded by ``deadline`` seconds."""

    name = "pubsub"

    def __init__(self, topic: str, *, deadline: float = 60.0, client: Any = None) -> None:
        self.topic = topic
        self._deadline = deadline
        self._client = client

    def send(self, data: bytes, attributes: Mapping[str, str]) -> str:
        from google.api_core import exceptions, retry

        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.PublisherClient()
        policy = retry.Retry(
            initial=1.0,
            maximum=10.0,
            multiplier=2.0,
            timeout=self._deadline,
            predicate=retry.if_exception_type(
                exceptions.ServiceUnavailable,
                exceptions.DeadlineExceeded,
                exceptions.InternalServerError,
                exceptions.Aborted,
                exceptions.Unknown,
                exceptions.ResourceExhausted,
            ),
        )
        try:
            future = self._client.publish(
                self.topic, data, retry=policy, timeout=min(10.0, self._deadline), **dict(attributes)
            )
            return str(future.result(timeout=self._deadline + 15))
        except Exception as exc:
            raise PathFailed(
                f"pubsub publish to {self.topic}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None


class IngestPath:
    """POST to the ingest function: a second way in, sharing nothing with the Pub/Sub path."""

    name = "ingest"

    def __init__(self, url: str, *, token: SecretStr | None, timeout: float = 15.0) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout

    def send(self, data: bytes, attributes: Mapping[str, str]) -> str:
        headers = {"Content-Type": "application/json", "User-Agent": "alert-relay-publisher/0.1"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")  # noqa: S310 (http(s) checked at load)
        host = urllib.parse.urlsplit(self.url).netloc
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = response.read(2000).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            raise PathFailed(f"ingest POST to {host}: HTTP {exc.code} {_first_line(detail)}") from None
        except (OSError, ValueError) as exc:
            raise PathFailed(f"ingest POST to {host}: {type(exc).__name__}: {_first_line(exc)}") from None
        try:
            return ",".join(json.loads(body).get("message_ids", [])) or "accepted"
        except (ValueError, AttributeError):
            return "accepted"


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else ""


@dataclass
class PublishResult:
    path: str = ""  # the path that got the event out, "" when none did
    message_id: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_DELIVERED if self.path else EXIT_UNDELIVERED


def publish(
    payload: Mapping[str, Any],
    paths: Sequence[Path],
    *,
    out: TextIO | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PublishResult:
    """Try each path in order; if none works, write the undelivered event as one ERROR log line."""
    out = out or sys.stdout
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    workflow = payload.get("workflow", {})
    attributes = {
        "source": "argo",
        "event_id": str(payload.get("event_id", "")),
        "namespace": str(workflow.get("namespace", ""))[:1024],
        "workflow": str(workflow.get("name", ""))[:1024],
        "status": str(workflow.get("status", ""))[:1024],
    }
    result = PublishResult()
    for path in paths:
        try:
            result.message_id = path.send(data, attributes)
        except PathFailed as exc:
            result.errors.append(str(exc))
            _log(
                out,
                "WARNING",
                f"alert-relay publish: {path.name} failed, trying the next path",
                error=str(exc),
            )
            continue
        result.path = path.name
        _log(out, "INFO", f"alert-relay publish: event sent via {path.name}", event_id=attributes["event_id"])
        return result
    _log(
        out,
        "ERROR",
        "alert-relay publish: every path failed; the event is in this log line",
        **{
            MARKER_FIELD: MARKER_VALUE,
            "event": dict(payload),
            "errors": result.errors,
            "at": now().isoformat(),
        },
    )
    return result


def _log(out: TextIO, severity: str, message: str, **fields: Any) -> None:
    # Cloud Logging's structured format: GKE turns this stdout line into a jsonPayload.
    out.write(json.dumps({"severity": severity, "message": message, **fields}, ensure_ascii=False) + "\n")
    out.flush()


def paths_from(settings: PublisherSettings) -> list[Path]:
    paths: list[Path] = []
    if settings.topic:
        paths.append(PubSubPath(settings.topic, deadline=settings.pubsub_deadline))
    if settings.ingest_url:
        paths.append(
            IngestPath(settings.ingest_url, token=settings.ingest_token, timeout=settings.ingest_timeout)
        )
    return paths
