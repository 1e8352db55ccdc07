"""The publisher image: no Docker engine runs here, so its contract is checked through Python."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "publisher" / "Dockerfile").read_text()

# Top-level modules the image's requirements provide (and their own dependencies).
_BLOCKER = """
import importlib.abc, sys
FORBIDDEN = {"slack_sdk", "yaml", "functions_framework", "flask", "werkzeug"}
FORBIDDEN_PREFIXES = ("google.cloud.firestore", "google.cloud.logging")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN_PREFIXES):
            raise ImportError(f"{name} is not in the publisher image")
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["alert-relay", *sys.argv[1:]]
from shared.cli import main
sys.exit(main())
"""


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_image_runs_as_a_numeric_non_root_user_from_a_slim_base() -> None:
    """Slim base, numeric non-root USER, the CLI as entry point."""
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.MULTILINE)
    assert 'ENTRYPOINT ["python", "-m", "shared.cli"]' in DOCKERFILE


def test_image_requirements_are_a_subset_of_the_pinned_runtime() -> None:
    """The image installs the same versions the relay is tested with."""
    image, runtime = pins(ROOT / "publisher" / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert image and all(runtime.get(name) == version for name, version in image.items())


def test_publish_needs_nothing_outside_the_image() -> None:
    """`publish` runs with slack_sdk, YAML, functions-framework and Firestore made unimportable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_RELAY_", "PUBSUB_EMULATOR_HOST"))}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCKER,
            "publish",
            "--name",
            "wf-abcde",
            "--namespace",
            "ml",
            "--status",
            "Failed",
            "--failures",
            '"[{\\"displayName\\":\\"x\\"}]"',
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "is not in the publisher image" not in done.stderr, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])  # unconfigured: the event is in the log line
    assert last["alert_relay"] == "UNDELIVERED_EVENT"
    assert last["event"]["workflow"]["name"] == "wf-abcde"
