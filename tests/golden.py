"""Golden files: reviewed JSON that a test's output must match, regenerated on request.

A case is a ``<name>.input.json`` file with its reviewed ``<name>.expected.json`` beside it. After an
intended change, run the tests with ``UPDATE_GOLDEN=1`` to rewrite the golden files, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shared.model import AlertEvent

UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
SOURCES_DIR = Path(__file__).parent / "data" / "sources"
INPUT_SUFFIX = ".input.json"
EXPECTED_SUFFIX = ".expected.json"


def golden_inputs(prefix: str, directory: Path = SOURCES_DIR) -> list[Path]:
    """The ``<prefix>*.input.json`` cases in ``directory``, sorted by name."""
    return sorted(directory.glob(f"{prefix}*{INPUT_SUFFIX}"))


def case_id(input_path: Path) -> str:
    """A case's name for test ids: its input file name without ``.input.json``."""
    return input_path.name.removesuffix(INPUT_SUFFIX)


def expected_path(input_path: Path) -> Path:
    """The reviewed ``.expected.json`` file beside a case's input."""
    return input_path.with_name(case_id(input_path) + EXPECTED_SUFFIX)


def load_input(name: str, directory: Path = SOURCES_DIR) -> Any:
    """The decoded ``<name>.input.json`` of ``directory``."""
    return read_json(directory / f"{name}{INPUT_SUFFIX}")


def read_json(path: Path) -> Any:
    """A JSON file, decoded."""
    return json.loads(path.read_text(encoding="utf-8"))


def assert_golden(actual: Any, path: Path, *, sort_keys: bool = False) -> None:
    """``actual`` as indented JSON equals the golden file ``path``; UPDATE_GOLDEN=1 rewrites it first."""
    text = json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert json.loads(text) == json.loads(expected)  # a difference in content, shown as a structural diff
    assert text == expected, f"{path.name} holds the same content, written differently"


def assert_golden_event(event: AlertEvent, input_path: Path) -> None:
    """The event parsed from a case's input matches its ``.expected.json`` and reads back from its JSON."""
    actual = event.model_dump(mode="json")
    assert_golden(actual, expected_path(input_path))
    assert AlertEvent.model_validate(actual) == event  # the JSON form reads back as the same event
