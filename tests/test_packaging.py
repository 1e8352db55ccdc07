"""The deployable source of the relay works on its own: staged like Cloud Functions gets it, imported
and served in a fresh interpreter that cannot see the repository, credentials or gcloud config.

``localdev.package.deployable_files`` is the one definition of that source; Terraform mirrors it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from localdev.package import ROOT, build, content_hash, deployable_files, zip_bytes
from shared.envelope import push_envelope

EXAMPLE_EVENT = ROOT / "examples" / "events" / "argo_failed.json"
# Clients that cost 75-300 ms each to import: importing the entry point must not load them.
HEAVY_AT_IMPORT = (
    "google.cloud.pubsub_v1",
    "google.cloud.logging",
    "google.cloud.firestore",
    "slack_sdk",
    "pydantic_settings",
)
# With the memory ledger and the console Slack stand-in, even a first request needs none of these.
HEAVY_AT_FIRST_REQUEST = ("google.cloud.pubsub_v1", "google.cloud.logging", "google.cloud.firestore")

# Runs first in every child: drop setuptools' editable-install finders, so that a module missing
# from the staged folder fails to import instead of being found quietly in the repository.
_NO_EDITABLE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path_importer_cache.clear()
"""

# Shared by the children: where every loaded module came from, as a report the test inspects.
_REPORT = """
def _origins():
    # shared is a namespace package (no __init__.py): it has a __path__ but no __file__.
    out = {"shared.__path__": list(getattr(sys.modules.get("shared"), "__path__", []))}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin:
            out[name] = [origin]
    return out
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("relay", tmp_path_factory.mktemp("relay-source") / "src")


@pytest.fixture
def isolated_env(tmp_path: Path, staged: Path) -> dict[str, str]:
    """A from-scratch environment: no Google credentials or project, an empty HOME and gcloud config."""
    home = tmp_path / "home"
    gcloud = tmp_path / "gcloud-config"
    home.mkdir()
    gcloud.mkdir()
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(gcloud),
        "PYTHONPATH": str(staged),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
    }


def run_child(code: str, *, cwd: Path, env: dict[str, str], timeout: float = 90) -> dict:
    """Run ``code`` in a fresh interpreter; it writes one JSON object to the file named by argv[1]."""
    result_file = Path(env["TMPDIR"]) / "child-result.json"
    program = _NO_EDITABLE + _REPORT + textwrap.dedent(code)
    proc = subprocess.run(
        [sys.executable, "-s", "-c", program, str(result_file)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return json.loads(result_file.read_text())


def assert_from_staged(origins: dict[str, list[str]], staged: Path) -> None:
    """``main`` and every ``shared`` module come from the staged folder, none from the repository."""
    staged_real = staged.resolve()
    assert [Path(p).resolve() for p in origins["main"]] == [staged_real / "main.py"]
    # (cwd and PYTHONPATH both name the staged folder, so it may be listed twice)
    assert {Path(p).resolve() for p in origins["shared.__path__"]} == {staged_real / "shared"}
    shared = {name: paths for name, paths in origins.items() if name.startswith("shared.")}
    assert len(shared) > 1, "no shared module was imported"
    for name, paths in shared.items():
        for path in paths:
            assert Path(path).resolve().is_relative_to(staged_real), f"{name} loaded from {path}"
    # Nothing else may come from the repository checkout (the venv may live inside it).
    prefix = Path(sys.prefix).resolve()
    leaked = {
        name: path
        for name, paths in origins.items()
        for path in paths
        if Path(path).resolve().is_relative_to(ROOT)
        and not Path(path).resolve().is_relative_to(prefix)
        and not Path(path).resolve().is_relative_to(staged_real)
    }
    assert not leaked, f"modules loaded from the repository instead of the staged source: {leaked}"


# -- the staged source in a fresh interpreter ----------------------------------------------------


def test_staged_entry_point_imports_without_heavy_clients(staged: Path, isolated_env: dict[str, str]) -> None:
    report = run_child(
        """
        import json, os
        import main
        json.dump(
            {
                "has_relay": callable(getattr(main, "relay", None)),
                "origins": _origins(),
                "sys_path": sys.path,
                "env": sorted(os.environ),
            },
            open(sys.argv[1], "w"),
        )
        """,
        cwd=staged,
        env=isolated_env,
    )
    assert report["has_relay"], "main.relay is missing"
    assert_from_staged(report["origins"], staged)
    loaded = [name for name in HEAVY_AT_IMPORT if name in report["origins"]]
    assert not loaded, f"importing main loaded {loaded}; create clients on first use instead"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in report["env"]
    assert "GOOGLE_CLOUD_PROJECT" not in report["env"]
    # The staged folder is searched before site-packages (where the editable install lives).
    assert report["sys_path"].index(str(staged)) < min(
        i for i, entry in enumerate(report["sys_path"]) if entry.endswith("site-packages")
    )


def test_staged_relay_serves_a_push_envelope(staged: Path, isolated_env: dict[str, str]) -> None:
    envelope = push_envelope(EXAMPLE_EVENT.read_bytes(), message_id="packaging-1")
    env = {**isolated_env, "RELAY_LEDGER": "memory", "ENVELOPE": json.dumps(envelope)}
    report = run_child(
        """
        import json, os
        from functions_framework import create_app

        app = create_app(target="relay", source=os.path.join(os.getcwd(), "main.py"))
        response = app.test_client().post("/", json=json.loads(os.environ["ENVELOPE"]))
        json.dump(
            {"status": response.status_code, "body": response.get_json(), "origins": _origins()},
            open(sys.argv[1], "w"),
        )
        """,
        cwd=staged,
        env=env,
    )
    assert report["status"] == 200, report["body"]
    assert report["body"]["outcome"] == "delivered", report["body"]
    assert report["body"]["deliveries"], report["body"]
    assert all(d["fate"] == "delivered" for d in report["body"]["deliveries"]), report["body"]
    assert_from_staged(report["origins"], staged)
    loaded = [name for name in HEAVY_AT_FIRST_REQUEST if name in report["origins"]]
    assert not loaded, f"a console/memory first request loaded {loaded}"


# -- what the archive holds ----------------------------------------------------------------------


def test_relay_archive_holds_entry_point_shared_and_requirements() -> None:
    files = deployable_files("relay")
    assert files["main.py"] == ROOT / "functions" / "relay" / "main.py"
    assert files["requirements.txt"] == ROOT / "requirements.txt"
    expected_py = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert expected_py, "no shared/**/*.py found"
    assert expected_py <= set(files)
    assert "shared/defaults/routes.yaml" in files
    for name, source in files.items():
        assert source.is_file()
        assert not Path(name).is_absolute() and "\\" not in name
        assert "__pycache__" not in name.split("/") and not name.endswith(".pyc")
        assert name in ("main.py", "requirements.txt") or name.startswith("shared/"), name
        assert not source.resolve().is_relative_to(ROOT / "tests")
        assert not source.resolve().is_relative_to(ROOT / "localdev")
        if source.resolve().is_relative_to(ROOT / "functions"):
            assert source == ROOT / "functions" / "relay" / "main.py"
    assert list(files) == sorted(files)


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    """Two functions, compiled leftovers and neighbouring folders that must stay out of an archive."""
    root = tmp_path / "repo"
    for rel, text in {
        "functions/relay/main.py": "RELAY = 1\n",
        "functions/relay/notes.txt": "not deployed\n",
        "functions/other/main.py": "OTHER = 1\n",
        "shared/__init__.py": "",
        "shared/a.py": "A = 1\n",
        "shared/sub/b.py": "B = 1\n",
        "shared/defaults/routes.yaml": "version: 1\n",
        "shared/__pycache__/a.cpython-311.pyc": "x",
        "shared/sub/__pycache__/b.cpython-311.pyc": "x",
        "shared/stray.pyc": "x",
        "tests/test_x.py": "",
        "localdev/local.py": "",
        "requirements.txt": "pydantic==2\n",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_deployable_files_rule(fake_repo: Path) -> None:
    assert list(deployable_files("relay", fake_repo)) == [
        "main.py",
        "requirements.txt",
        "shared/__init__.py",
        "shared/a.py",
        "shared/defaults/routes.yaml",
        "shared/sub/b.py",
    ]
    assert deployable_files("other", fake_repo)["main.py"] == fake_repo / "functions/other/main.py"
    with pytest.raises(FileNotFoundError):
        deployable_files("missing", fake_repo)
    with pytest.raises(ValueError):
        deployable_files("../relay", fake_repo)


def test_build_copies_exactly_the_deployable_files(fake_repo: Path, tmp_path: Path) -> None:
    dest = build("relay", tmp_path / "out", fake_repo)
    staged = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert staged == list(deployable_files("relay", fake_repo))
    assert (dest / "main.py").read_text() == "RELAY = 1\n"
    with pytest.raises(FileExistsError):
        build("relay", dest, fake_repo)


def test_zip_is_deterministic_and_named_by_content(fake_repo: Path) -> None:
    first = zip_bytes("relay", fake_repo)
    # Touching files (new mtimes) changes nothing; changing content changes the hash.
    for path in fake_repo.rglob("*"):
        if path.is_file():
            os.utime(path, (1_900_000_000, 1_900_000_000))
    assert zip_bytes("relay", fake_repo) == first
    assert content_hash("relay", fake_repo) == hashlib.sha256(first).hexdigest()
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == list(deployable_files("relay", fake_repo))
        assert archive.read("main.py") == b"RELAY = 1\n"
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    (fake_repo / "shared" / "a.py").write_text("A = 2\n")
    assert content_hash("relay", fake_repo) != hashlib.sha256(first).hexdigest()


def test_real_relay_zip_matches_the_staged_files() -> None:
    data = zip_bytes("relay")
    files = deployable_files("relay")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == list(files)
        for name, source in files.items():
            assert archive.read(name) == source.read_bytes(), name
    assert content_hash("relay") == hashlib.sha256(data).hexdigest()
