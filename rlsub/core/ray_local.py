"""A local Ray that ends with the process that started it (a sweep, or an ES trial on Ray
actors), even one killed with SIGKILL.

`ray.init()` in the sweep process made Ray's processes its children: the GCS server, the
raylet, the dashboard and the log monitor die with it (Ray binds them to their parent
with PR_SET_PDEATHSIG), but the raylet's own children, the dashboard and runtime-env
agents, are bound to nothing: after a SIGKILL of the sweep they went on for about a
minute, until their check of the raylet gave up.

So a sweep with `--backend ray` and no `--address` (and an ES trial with `train.backend:
ray` and no `train.ray_address`, rlsub.algos.es_ray) starts its Ray through a guard
(`LocalRay`): a small process in a session of its own (`python -m rlsub.core.ray_local`)
that calls `ray.init()` with Ray's defaults (all CPUs, the dashboard, token
authentication) and writes the cluster's address to the sweep; from its start, a thread
of it waits on its stdin, a pipe from the sweep. The pipe closes when the sweep closes
it or dies, however it dies (the kernel closes a dead process's files), Ray started or
not; the guard then ends every process of its session (SIGTERM, then SIGKILL after
`GRACE_S`) and exits. Every process Ray starts
stays in that session (workers take a process group of their own, not a session), and
nothing outside it is touched: not another Ray on the machine, not the sweep's own
process group (a shell pipeline's `tee`). The sweep connects to it as a client.

Finding a session's processes reads /proc (Linux); elsewhere the guard ends its
process group, which holds all but Ray's workers.

Imports: core.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from rlsub.core.errors import RlsubError

GRACE_S = 1.0  # SIGTERM to SIGKILL
READY_S = 300.0  # longest wait for the guard's Ray to start


def session_members(sid: int) -> list[int]:
    """Live processes (zombies left out) of session `sid`, this process left out."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end_session(grace_s: float = GRACE_S) -> None:
    """End every other process of this process's session: SIGTERM, SIGKILL after `grace_s`
    (from any thread). Without /proc: SIGKILL to its process group, this process included."""
    if not os.path.isdir("/proc"):
        os.killpg(0, signal.SIGKILL)
        return
    sid = os.getsid(0)
    _signal_all(session_members(sid), signal.SIGTERM)
    end = time.monotonic() + grace_s
    while session_members(sid) and time.monotonic() < end:
        time.sleep(0.05)
    for _ in range(3):  # a worker may be forked while the raylet goes down
        left = session_members(sid)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.05)


_ENDING = threading.RLock()


def _end_and_exit(code: int) -> None:
    """End the session, once (a second caller waits here for the exit), and exit without
    atexit hooks: ray.shutdown() would wait on the processes just ended."""
    with _ENDING:
        end_session()
        os._exit(code)


def guard(address: str | None) -> None:
    """The guard process: start (or reach) Ray and tell the sweep where it is; from the
    start, a thread waits for the sweep to go and then ends the session."""
    if os.getsid(0) != os.getpid():
        os.setsid()  # it ends its whole session: never one it did not start
    ready = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Ray's processes must not hold the pipe to the sweep
    signal.signal(signal.SIGTERM, lambda signum, frame: _end_and_exit(1))  # LocalRay.close

    def watch() -> None:  # a sweep killed while Ray starts is seen at once, not after
        sys.stdin.buffer.read()  # until the sweep closes the pipe or dies
        _end_and_exit(0)

    watcher = threading.Thread(target=watch, name="rlsub-sweep-watch", daemon=True)
    watcher.start()
    try:
        import ray

        ctx: Any = ray.init(address=address, log_to_driver=False)
        reply = {"address": ctx.address_info["gcs_address"],
                 "auth_mode": os.environ.get("RAY_AUTH_MODE")}  # fmt: skip
    except BaseException as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        reply = {"error": f"{type(exc).__name__}: {first}"}
    try:
        ready.write(json.dumps(reply) + "\n")
        ready.close()
    except OSError:  # the sweep is gone
        _end_and_exit(0)
    if "address" not in reply:
        _end_and_exit(1)
    watcher.join()


def _client_auth(mode: str) -> None:
    """Connect to the guard's Ray with its authentication mode: `ray.init()` turns token
    authentication on for a Ray it starts (RAY_AUTH_MODE=token, a token in ~/.ray), but a
    client given an address uses RAY_AUTH_MODE as Ray read it at import. Ray reads it
    again as its own local start does (`Config.initialize`); without that hook the
    connection fails with Ray's message naming RAY_AUTH_MODE."""
    os.environ["RAY_AUTH_MODE"] = mode
    try:
        importlib.import_module("ray._raylet").Config.initialize("")
    except (ImportError, AttributeError):
        pass


class LocalRay:
    """The sweep's handle on its guard: `address` to connect to; `close()` ends that Ray."""

    def __init__(self, address: str | None = None) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rlsub.core.ray_local", *([address] if address else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True,
        )  # fmt: skip
        try:
            reply = self._ready()
        except BaseException:  # an interrupt while Ray starts
            self.close()
            raise
        if "address" not in reply:
            self.close()
            raise RlsubError(f"a local Ray: cannot start or reach Ray ({reply.get('error')})")
        self.address: str = reply["address"]
        mode = reply.get("auth_mode")
        if mode and os.environ.get("RAY_AUTH_MODE") != mode:
            _client_auth(mode)

    def _ready(self) -> dict[str, Any]:
        out: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        if select.select([out], [], [], READY_S)[0]:
            line = out.readline()
            if line:
                reply: dict[str, Any] = json.loads(line)
                return reply
            self.proc.wait()
            return {"error": f"its guard ended ({self.proc.returncode}): {self._log_tail()}"}
        return {"error": f"not started after {READY_S:g} s: {self._log_tail()}"}

    def _log_tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return (lines or ["no output"])[-1][:300]

    def close(self) -> None:
        """Close the pipe (the guard ends its Ray) and wait for the guard; if it hangs,
        end what it would have."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=GRACE_S + 15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # the guard's SIGTERM handler ends its session
            try:
                self.proc.wait(timeout=GRACE_S + 5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


if __name__ == "__main__":
    guard(sys.argv[1] if len(sys.argv) > 1 else None)
