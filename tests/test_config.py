"""Settings from the environment: validated once, errors name the variable, secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import DEFAULT_LEDGER, load_settings
from shared.errors import ConfigError


def test_defaults_run_locally_without_any_variable() -> None:
    """No environment at all gives a working local configuration."""
    settings = load_settings()
    assert settings.relay_ledger == DEFAULT_LEDGER
    assert settings.relay_routes is None
    assert settings.slack_bot_token is None
    assert settings.slack_api_url == "https://slack.com/api/"


def test_operator_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The documented names (stable for Terraform) configure the relay."""
    monkeypatch.setenv("RELAY_ROUTES", str(tmp_path / "r.yaml"))
    monkeypatch.setenv("RELAY_LEDGER", "memory")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("RELAY_DEAD_LETTER_TOPIC", "alerts-dead")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    settings = load_settings()
    assert settings.relay_routes == tmp_path / "r.yaml"
    assert settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert (
        settings.topic_path(settings.relay_dead_letter_topic or "")
        == "projects/my-project/topics/alerts-dead"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RELAY_LEDGER", "postgres://x", "RELAY_LEDGER: must be 'memory', 'sqlite:///PATH' or 'firestore'"),
        ("SLACK_API_URL", "slack.com", "SLACK_API_URL: must be an http(s) URL"),
        (
            "SLACK_WEBHOOK_URL",
            "hooks.slack.com/services/T/B/SECRETPATH",
            "SLACK_WEBHOOK_URL: must be an http(s) URL",
        ),
        ("RELAY_MAX_ATTEMPTS", "0", "RELAY_MAX_ATTEMPTS: Input should be greater than or equal to 1"),
        ("RELAY_HTTP_TIMEOUT", "soon", "RELAY_HTTP_TIMEOUT: Input should be a valid number"),
        ("RELAY_LOG_LEVEL", "LOUD", "RELAY_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR"),
        (
            "RELAY_DEAD_LETTER_TOPIC",
            "dead",
            "RELAY_DEAD_LETTER_TOPIC: a short topic name needs GOOGLE_CLOUD_PROJECT",
        ),
    ],
)
def test_invalid_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Each bad value fails at load with the variable's name and what is expected."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)
    if name == "SLACK_WEBHOOK_URL":
        assert "SECRETPATH" not in str(info.value)


def test_secrets_are_masked_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Printing the settings never shows the token or the webhook URL."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/very-secret-path")
    text = repr(load_settings()) + str(load_settings())
    assert "very-secret" not in text
