"""Documentation that is checked: the published schema and the README's promises."""

from __future__ import annotations

import json
from pathlib import Path

from shared.model import json_schema

ROOT = Path(__file__).resolve().parents[1]


def test_published_schema_is_up_to_date() -> None:
    """docs/alert-event.schema.json equals what `alert-relay schema` prints (regenerate it if not)."""
    published = json.loads((ROOT / "docs" / "alert-event.schema.json").read_text())
    assert published == json_schema(), "run: .venv/bin/alert-relay schema > docs/alert-event.schema.json"


def test_readme_names_every_setting_the_relay_reads() -> None:
    """Every environment variable of Settings, IngestSettings and PublisherSettings is documented."""
    from shared.config import Settings
    from shared.ingest import IngestSettings
    from shared.publisher import PublisherSettings

    readme = (ROOT / "README.md").read_text()
    names = [name.upper() for name in Settings.model_fields]
    names += [name.upper() for name in IngestSettings.model_fields]
    names += [f"ALERT_RELAY_{name.upper()}" for name in PublisherSettings.model_fields]
    missing = sorted({n for n in names if f"`{n}`" not in readme})
    assert missing == []
