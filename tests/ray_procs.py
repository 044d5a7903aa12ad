"""Ray processes started by a test, found and ended by their session id, never by name.

Every process Ray starts stays in the session of the process that started it (workers
take a process group of their own, not a session), so a node started in a session of
its own (`start_new_session=True`) is exactly the processes of that session. `ray stop`
is not used: it ends every Ray process of the machine (it matches names), other
people's runs included. Linux only (/proc).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

RAY_CLI = [
    sys.executable,
    "-c",
    "import sys; from ray.scripts.scripts import main; sys.exit(main())",
]


def short_dir() -> Path:
    """A fresh folder for Ray's files (RAY_TMPDIR, --temp-dir) with a short path: Ray's
    socket paths under it must stay within the 107 bytes of a Unix socket's name."""
    return Path(tempfile.mkdtemp(prefix="rlsub-t-", dir="/tmp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[3])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def sessions_of_files_under(root: Path) -> set[int]:
    """Session ids of the live processes whose command line names a path under `root`
    (Ray's GCS server and raylets name their session folder)."""
    out = set()
    for pid in _pids():
        if str(root) in cmdline(pid) and (st := _stat(pid)) is not None and st[0] != "Z":
            out.add(st[1])
    return out - {os.getsid(0)}  # never this test's own session


def in_sessions(sids: Iterable[int]) -> list[int]:
    """Live processes (zombies left out) of the sessions `sids`, this process left out."""
    wanted = set(sids) - {os.getsid(0)}
    found = []
    for pid in _pids():
        st = _stat(pid)
        if pid != os.getpid() and st is not None and st[0] != "Z" and st[1] in wanted:
            found.append(pid)
    return found


def describe(pids: Iterable[int]) -> str:
    return "; ".join(f"{pid} {cmdline(pid)[:100]}" for pid in pids)


def kill_sessions(sids: Iterable[int]) -> None:
    """SIGKILL every live process of the sessions `sids` (a test's own clusters)."""
    for pid in in_sessions(sids):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_gone(sids: Iterable[int], timeout_s: float) -> tuple[list[int], float]:
    """Wait until no process of the sessions `sids` is left: (those left, seconds waited)."""
    t0 = time.monotonic()
    while (left := in_sessions(sids)) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.2)
    return left, time.monotonic() - t0


def start_node(args: list[str], env: dict[str, str], log: Path) -> int:
    """`ray start ARGS` in a session of its own; returns that session's id. Raises with
    the log's tail when it fails."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*RAY_CLI, "start", *args], env=env, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            kill_sessions([proc.pid])
            raise
    if rc != 0:
        kill_sessions([proc.pid])
        raise RuntimeError(f"ray start {' '.join(args)} failed ({rc}):\n{log.read_text()[-2000:]}")
    return proc.pid


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
