"""Google's own Pub/Sub and Firestore emulators (preinstalled with google-cloud-cli on the image),
used by the tests and by the local run.

Usage::

    with PubSubEmulator() as emu:          # starts on a free loopback port, waits until usable
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emu.host)

These classes never touch ``os.environ``: the fixtures in ``tests/conftest.py`` decide which tests
see ``PUBSUB_EMULATOR_HOST`` / ``FIRESTORE_EMULATOR_HOST``. Use ``missing_reason(kind)`` to skip
cleanly where the emulators are not installed (e.g. the Debian 13 image).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Literal, Self

__all__ = [
    "DEFAULT_SDK_ROOT",
    "PROJECT",
    "FirestoreEmulator",
    "PubSubEmulator",
    "firestore_emulator_binary",
    "java_binary",
    "missing_reason",
    "pubsub_emulator_binary",
    "sdk_root",
    "unique_name",
]

PROJECT = "local-project"
DEFAULT_SDK_ROOT = Path("/usr/lib/google-cloud-sdk")
PUBSUB_RELPATH = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
FIRESTORE_RELPATH = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")
STARTUP_TIMEOUT = 60.0

Kind = Literal["pubsub", "firestore"]


def unique_name(prefix: str = "test") -> str:
    """A valid, collision-free Pub/Sub/Firestore id: the emulators live for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@functools.cache
def _gcloud_sdk_root() -> Path | None:
    # `gcloud info` costs ~1 s, so ask at most once per process.
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    env = {
        **os.environ,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    }
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    root = out.stdout.strip()
    return Path(root) if out.returncode == 0 and root else None


def sdk_root() -> Path:
    """Google Cloud SDK root: $SDK_ROOT, else what gcloud reports, else /usr/lib/google-cloud-sdk."""
    if os.environ.get("SDK_ROOT"):
        return Path(os.environ["SDK_ROOT"])
    return _gcloud_sdk_root() or DEFAULT_SDK_ROOT


def _binary(relpath: Path, root: Path | None) -> Path | None:
    path = (root or sdk_root()) / relpath
    return path if path.is_file() and os.access(path, os.X_OK) else None


def pubsub_emulator_binary(root: Path | None = None) -> Path | None:
    return _binary(PUBSUB_RELPATH, root)


def firestore_emulator_binary(root: Path | None = None) -> Path | None:
    return _binary(FIRESTORE_RELPATH, root)


def java_binary() -> str | None:
    """The java the wrapper scripts will use ($JAVA_HOME/bin/java first, as they do, then PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def missing_reason(kind: Kind, root: Path | None = None) -> str | None:
    """Why emulator ``kind`` can't run here (a clear skip reason), or None if it can."""
    base = root or sdk_root()
    if kind == "pubsub":
        label, relpath, package = "Pub/Sub", PUBSUB_RELPATH, "google-cloud-cli-pubsub-emulator"
    elif kind == "firestore":
        label, relpath, package = "Firestore", FIRESTORE_RELPATH, "google-cloud-cli-firestore-emulator"
    else:
        raise ValueError(f"unknown emulator kind {kind!r}")
    if _binary(relpath, base) is None:
        return f"{label} emulator not installed: {base / relpath} missing (package {package})"
    if java_binary() is None:
        return f"{label} emulator needs java: java not found (set JAVA_HOME or put java on PATH)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids in process group ``pgid``; None where /proc is unavailable."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state ppid pgrp ...
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _group_alive(pgid: int) -> bool:
    members = _group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class _Emulator:
    kind: Kind
    label: str

    def __init__(self, *, project: str = PROJECT, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.project = project
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, the value for PUBSUB_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST."""
        if self.port is None:
            raise RuntimeError(f"{self.label} emulator is not started")
        return f"127.0.0.1:{self.port}"

    def _command(self, binary: Path, port: int) -> list[str]:
        raise NotImplementedError

    def _probe(self) -> None:
        """One real API call; raises if the emulator can't serve it yet."""
        raise NotImplementedError

    def _binary(self) -> Path | None:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        if self.process is not None:
            return self
        reason = missing_reason(self.kind)
        if reason:
            raise RuntimeError(reason)
        binary = self._binary()
        assert binary is not None
        self.port = _free_port()
        self._log = tempfile.TemporaryFile(prefix=f"{self.kind}-emulator-")  # noqa: SIM115 - kept open
        env = dict(os.environ)
        # The emulators must not pick up a host meant for something else from the caller's env.
        for var in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
            env.pop(var, None)
        self.process = subprocess.Popen(
            self._command(binary, self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: stop() kills the wrapper and java together
        )
        atexit.register(self.stop)  # never leak a JVM if the test run is interrupted
        try:
            self._wait_until_usable()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_usable(self) -> None:
        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        port_open = False
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.label} emulator exited with code {self.process.returncode} during startup:\n"
                    f"{self._log_tail()}"
                )
            try:
                if not port_open:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    port_open = True
                self._probe()  # an open port is not proof: the first RPC can still fail briefly
                return
            except Exception as exc:  # any failure just means "not ready yet"
                last_error = exc
                time.sleep(0.1)
        raise RuntimeError(
            f"{self.label} emulator not usable after {self.startup_timeout:.0f}s "
            f"(port open: {port_open}, last error: {last_error!r}):\n{self._log_tail()}"
        )

    def _log_tail(self, limit: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")[-limit:]
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        atexit.unregister(self.stop)
        pgid = process.pid  # == pgid thanks to start_new_session
        # Terminate the wrapper's children (java) first so the wrapper reaps them and exits by
        # itself: killing the wrapper first would orphan java to PID 1, which may never reap it.
        children = [pid for pid in _group_members(pgid) or [] if pid != pgid]
        with contextlib.suppress(ProcessLookupError):
            if children:
                for pid in children:
                    os.kill(pid, signal.SIGTERM)
            else:
                os.killpg(pgid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(5)
        # The Firestore wrapper is bash + a java child: wait for the whole group, not just the leader.
        deadline = time.monotonic() + 10
        killed = False
        while _group_alive(pgid):
            if not killed and time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                killed, deadline = True, time.monotonic() + 5
            elif killed and time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} emulator process group {pgid} survived SIGKILL")
            time.sleep(0.05)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PubSubEmulator(_Emulator):
    """Google's Pub/Sub emulator. ``.host`` is the PUBSUB_EMULATOR_HOST value."""

    kind = "pubsub"
    label = "Pub/Sub"

    def _binary(self) -> Path | None:
        return pubsub_emulator_binary()

    def _command(self, binary: Path, port: int) -> list[str]:
        return [str(binary), "--host=127.0.0.1", f"--port={port}"]

    def _probe(self) -> None:
        # Same path the app takes under PUBSUB_EMULATOR_HOST (an insecure gRPC channel), built
        # explicitly so no process-wide env var is needed.
        import grpc
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        channel = grpc.insecure_channel(self.host)
        try:
            client = pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel))
            list(client.list_topics(request={"project": f"projects/{self.project}"}, timeout=5))
        finally:
            channel.close()


class FirestoreEmulator(_Emulator):
    """Google's Firestore emulator (native mode). ``.host`` is the FIRESTORE_EMULATOR_HOST value."""

    kind = "firestore"
    label = "Firestore"

    def _binary(self) -> Path | None:
        return firestore_emulator_binary()

    def _command(self, binary: Path, port: int) -> list[str]:
        return [str(binary), "start", "--host=127.0.0.1", f"--port={port}"]

    def _probe(self) -> None:
        # A real REST read (google-cloud-firestore may not be installed): a missing document must
        # come back as a JSON 404 from the Firestore API, not a connection error.
        url = (
            f"http://{self.host}/v1/projects/{self.project}/databases/(default)"
            "/documents/emulator-probe/probe"
        )
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # loopback http only
                resp.read()
        except urllib.error.HTTPError as err:
            with contextlib.closing(err):
                if err.code != 404 or b"NOT_FOUND" not in err.read():
                    raise
