"""Process settings from the environment, validated once at load; errors name the variable.

Names are part of the operator interface (Terraform sets them) and stay stable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError

DEFAULT_LEDGER = "sqlite:////tmp/alert-relay/ledger.sqlite3"
_TOPIC = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")
_SHORT_TOPIC = re.compile(r"^[A-Za-z][\w.~+%-]{2,254}$")


class Settings(BaseSettings):
    """Everything the relay reads from its environment."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    relay_routes: Path | None = Field(None, description="Routes file; the bundled example when unset.")
    relay_ledger: str = Field(DEFAULT_LEDGER, description="memory | sqlite:///PATH | firestore")
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    relay_dead_letter_topic: str | None = None
    google_cloud_project: str | None = None
    # Must match the push subscription's max_delivery_attempts: on the last attempt the relay
    # dead-letters with the reason itself, instead of letting Pub/Sub do it without one.
    relay_max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
    # Time for one HTTP call to a sink, and the longest Retry-After honoured inside one request;
    # anything longer is left to Pub/Sub's backoff (a function must answer within its timeout).
    relay_http_timeout: Annotated[float, Field(gt=0, le=60)] = 10.0
    relay_max_retry_wait: Annotated[float, Field(ge=0, le=60)] = 5.0
    relay_ledger_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    relay_firestore_database: str = "(default)"
    relay_firestore_prefix: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,40}$")] = "alert_relay"
    relay_log_level: str = "INFO"

    @field_validator("relay_ledger")
    @classmethod
    def _ledger_url(cls, value: str) -> str:
        if value in ("memory", "firestore") or (
            value.startswith("sqlite:///") and len(value) > len("sqlite:///")
        ):
            return value
        raise ValueError("must be 'memory', 'sqlite:///PATH' or 'firestore'")

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")  # never echo the value: it is a secret
        return value

    @field_validator("relay_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="after")
    def _dead_letter_topic(self) -> Settings:
        topic = self.relay_dead_letter_topic
        if topic and not _TOPIC.match(topic):
            if not _SHORT_TOPIC.match(topic):
                raise ValueError(
                    "RELAY_DEAD_LETTER_TOPIC: must be projects/PROJECT/topics/TOPIC or a topic name"
                )
            if not self.google_cloud_project:
                raise ValueError("RELAY_DEAD_LETTER_TOPIC: a short topic name needs GOOGLE_CLOUD_PROJECT")
        return self

    def topic_path(self, topic: str) -> str:
        """Full topic path; short names are taken in GOOGLE_CLOUD_PROJECT."""
        if topic.startswith("projects/"):
            return topic
        if not self.google_cloud_project:
            raise ConfigError(f"topic {topic!r} is a short name and GOOGLE_CLOUD_PROJECT is not set")
        return f"projects/{self.google_cloud_project}/topics/{topic}"


def load_settings(**overrides: object) -> Settings:
    """Read and validate the environment; ``ConfigError`` names each offending variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {msg}" if name else msg)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
