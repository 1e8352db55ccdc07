"""The one definition of a function's deployable source (what Cloud Functions builds from).

A function's archive holds, with these names:

- ``main.py``           <- ``functions/<function>/main.py`` (the entry point, at the archive root)
- ``shared/**``         <- every file under ``shared/``, except ``__pycache__/`` folders and ``*.pyc``
- ``requirements.txt``  <- the repository's ``requirements.txt`` (the runtime pins)

Nothing else: no tests, no ``localdev``, no other function. Terraform's ``archive_file`` must mirror
exactly this rule (see ``tests/test_packaging.py``). The zip is deterministic (sorted names, fixed
timestamps and permissions), so ``content_hash`` can name the archive object by its content and an
unchanged source never causes a redeploy.

CLI::

    python -m localdev.package relay OUTDIR          # the staged folder, as deployed
    python -m localdev.package relay OUTDIR --zip    # OUTDIR/relay-<hash>.zip instead
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENTRY_POINT = "main.py"
REQUIREMENTS = "requirements.txt"
SHARED = "shared"
EXCLUDED_DIRS = frozenset({"__pycache__"})
EXCLUDED_SUFFIXES = frozenset({".pyc"})

# 1980-01-01 00:00:00 is the earliest time a zip entry can carry.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644  # regular file, rw-r--r--
_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def _excluded(relative: Path) -> bool:
    return any(part in EXCLUDED_DIRS for part in relative.parts) or relative.suffix in EXCLUDED_SUFFIXES


def deployable_files(function: str, root: Path = ROOT) -> dict[str, Path]:
    """Archive name (POSIX, relative) -> source file, sorted by name, for one function."""
    if not _FUNCTION_NAME.match(function):
        raise ValueError(f"not a function name: {function!r}")
    root = Path(root)
    entry = root / "functions" / function / ENTRY_POINT
    if not entry.is_file():
        raise FileNotFoundError(f"no function {function!r}: {entry} does not exist")
    requirements = root / REQUIREMENTS
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} does not exist")
    shared = root / SHARED
    if not shared.is_dir():
        raise FileNotFoundError(f"{shared} does not exist")

    files: dict[str, Path] = {ENTRY_POINT: entry, REQUIREMENTS: requirements}
    for path in shared.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _excluded(relative):
            files[relative.as_posix()] = path
    return dict(sorted(files.items()))


def build(function: str, dest: Path, root: Path = ROOT) -> Path:
    """Copy the function's deployable files into ``dest`` (created; must be empty if it exists)."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; stale files would end up in the deployment")
    files = deployable_files(function, root)
    for name, source in files.items():
        target = dest.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return dest


def zip_bytes(function: str, root: Path = ROOT) -> bytes:
    """The function's deployable source as a deterministic zip (same content -> same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, source in deployable_files(function, root).items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # Unix, so external_attr means the same everywhere
            info.external_attr = ZIP_FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def content_hash(function: str, root: Path = ROOT) -> str:
    """sha256 (hex) of ``zip_bytes``: names the archive object by its content."""
    return hashlib.sha256(zip_bytes(function, root)).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.package", description="Stage a function's deployable source."
    )
    parser.add_argument("function", help="folder name under functions/, e.g. relay")
    parser.add_argument("outdir", type=Path, help="empty (or new) folder to stage into")
    parser.add_argument("--zip", action="store_true", help="write OUTDIR/<function>-<hash>.zip instead")
    args = parser.parse_args(argv)
    try:
        if args.zip:
            data = zip_bytes(args.function)
            digest = hashlib.sha256(data).hexdigest()
            args.outdir.mkdir(parents=True, exist_ok=True)
            target = args.outdir / f"{args.function}-{digest[:16]}.zip"
            target.write_bytes(data)
            print(f"{target} sha256={digest} ({len(data)} bytes)")
        else:
            build(args.function, args.outdir)
            count = len(deployable_files(args.function))
            print(f"{args.outdir}: {count} files, sha256={content_hash(args.function)}")
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
