"""The parallel executors of a sweep: a pool of worker processes, and Ray tasks.

`Pool` keeps its own worker processes (spawn: they import rlsub afresh, nothing is
inherited), each with its own pipe, so a worker that dies (SIGKILL, out of memory)
takes only its own trial down: the trial runs again in a fresh worker (up to
`executors.MAX_ATTEMPTS`, each attempt counted in the store), and the trials
beside it go on untouched. A trial past its timeout is killed alone, the same way.
(concurrent.futures' pool breaks as a whole when one worker dies, failing every
trial in flight.) Workers end themselves when the sweep process dies.

`Ray` runs trials as Ray tasks; a task whose worker or node died
(`WorkerCrashedError`, `NodeDiedError`, ...) runs again the same way, on another node
when its node died. Without `--address` (or with `local`) the sweep starts a Ray of its
own through `rlsub.core.ray_local`, which ends it with the sweep, even a sweep killed
with SIGKILL, so no Ray process outlives the sweep.

Imports: experiment, core, sweep.executors.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from typing import Any

from rlsub.core.config import ExperimentConfig
from rlsub.core.errors import RlsubError
from rlsub.core.ray_local import LocalRay
from rlsub.experiment.record import TrialRecord
from rlsub.sweep.executors import POLL_S, Bounded, InProcess, Job, Lost, Outcome, import_ray, work

_RAY_CRASHES = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",
    "OwnerDiedError",
    "ActorDiedError",
)


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Worker start: end this worker once the sweep process that made it is gone.

    A sweep killed with SIGKILL or SIGTERM cannot shut its workers down, and they
    would go on running their trials for nothing (the rerun claims the same trials
    again). Checked by a daemon thread every `every_s` seconds.
    """

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="rlsub-parent-watch", daemon=True).start()


def _serve(conn: Connection, parent: int) -> None:
    """A worker's loop: (handle, work arguments) in, (handle, (kind, value)) out."""
    _exit_with_parent(parent)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        handle, args = msg
        try:
            reply: tuple[str, Any] = ("record", work(*args))
        except RlsubError as exc:
            reply = ("user", str(exc))
        except BaseException as exc:  # outside the trial: run_trial records the trial's own
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        conn.send((handle, reply))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class _Worker:
    """One worker process and its pipe."""

    def __init__(self, ctx: Any, parent: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, parent), name="rlsub-worker")
        self.proc.start()
        child.close()

    def stop(self, kill: bool) -> None:
        if kill and self.proc.is_alive():
            self.proc.kill()
        elif not kill:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class Pool(Bounded):
    """`workers` worker processes, each running one trial at a time (module docstring)."""

    def __init__(self, cfg: ExperimentConfig, policy_dir: str | None, workers: int) -> None:
        super().__init__(cfg, policy_dir)
        self.workers = workers
        self.ctx = multiprocessing.get_context("spawn")
        self.idle: list[_Worker] = []
        self.busy: dict[int, _Worker] = {}
        self.count = 0

    def submit(self, job: Job) -> int:
        self.count += 1
        msg = (self.count, (*self.args, *job, self.timeout_s, self.policy_dir))
        while self.idle:
            worker = self.idle.pop()
            try:
                worker.conn.send(msg)
                break
            except OSError:  # it died while idle
                worker.stop(kill=True)
        else:
            worker = _Worker(self.ctx, os.getpid())
            worker.conn.send(msg)
        self.busy[self.count] = worker
        return self.count

    def poll(self, handles: list[Any]) -> list[tuple[Any, Outcome]]:
        workers = {h: self.busy[h] for h in handles}
        waits: list[Any] = [w.conn for w in workers.values()]
        mp_wait(waits + [w.proc.sentinel for w in workers.values()], timeout=POLL_S)
        out: list[tuple[Any, Outcome]] = []
        for h, w in workers.items():
            try:
                if w.conn.poll():
                    _, (kind, value) = w.conn.recv()
                    self.idle.append(self.busy.pop(h))
                    if kind == "record":
                        out.append((h, TrialRecord(**value)))
                    elif kind == "user":
                        out.append((h, RlsubError(value)))
                    else:
                        out.append((h, Lost(f"worker error: {value}")))
                    continue
            except (EOFError, OSError):
                pass  # the worker died: its sentinel says so
            if not w.proc.is_alive():
                self.busy.pop(h)
                w.stop(kill=True)
                reason = f"worker process died ({_death(w.proc.exitcode)})"
                out.append((h, Lost(reason, crashed=True)))
        return out

    def kill(self, handles: list[Any]) -> None:
        for h in handles:
            self.busy.pop(h).stop(kill=True)

    def close(self) -> None:
        """Idle workers exit on their own; trials still running (an error, an interrupt)
        are killed."""
        for w in self.busy.values():
            w.stop(kill=True)
        for w in self.idle:
            w.stop(kill=False)
        self.busy, self.idle = {}, []


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """One line, at once, when a cluster address "host:port" (or "ray://host:port") does not
    answer: Ray itself waits and retries for minutes."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RlsubError(f"--address {address!r}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RlsubError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one (ray start --head) or check the address"
        ) from None


class Ray(Bounded):
    """Trials as Ray tasks (`ray` is an optional extra: pip install 'rlsub[ray]')."""

    def __init__(
        self, cfg: ExperimentConfig, policy_dir: str | None, workers: int, address: str | None
    ) -> None:
        super().__init__(cfg, policy_dir)
        self.ray = import_ray()
        self.started = not self.ray.is_initialized()
        self.local: LocalRay | None = None
        self.stdout: Any = None  # the sweep's stdout, while Ray's messages go to stderr
        if self.started:
            _check_reachable(address)
            if address in (None, "local"):  # a Ray of its own, ended with the sweep
                self.local = LocalRay(address)
            # Ray's driver prints the cluster's error messages ("The node ... has been
            # marked dead", a worker died) on sys.stdout, log_to_driver or not; stdout is
            # for the sweep's result (--json: one JSON object), so stderr takes them.
            self.stdout, sys.stdout = sys.stdout, sys.stderr
            try:
                self.ray.init(
                    address=self.local.address if self.local else address,
                    ignore_reinit_error=True,
                    log_to_driver=False,
                )
            except Exception as exc:  # unreachable address, no cluster there
                sys.stdout, self.stdout = self.stdout, None
                if self.local:
                    self.local.close()
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                where = f"--address {address}" if address else "a local Ray"
                raise RlsubError(
                    f"{where}: cannot start or reach Ray ({type(exc).__name__}: {first})"
                ) from None
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.workers = workers if workers > 1 else max(1, cpus)
        self.remote = self.ray.remote(num_cpus=1, max_retries=0)(work)
        self.crash_types = tuple(
            getattr(self.ray.exceptions, n) for n in _RAY_CRASHES if hasattr(self.ray.exceptions, n)
        )

    def submit(self, job: Job) -> Any:
        return self.remote.remote(*self.args, *job, self.timeout_s, self.policy_dir)

    def poll(self, handles: list[Any]) -> list[tuple[Any, Outcome]]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=POLL_S)
        out: list[tuple[Any, Outcome]] = []
        for ref in ready:
            try:
                out.append((ref, TrialRecord(**self.ray.get(ref))))
            except self.crash_types as exc:
                reason = f"ray worker died ({type(exc).__name__})"
                out.append((ref, Lost(reason, crashed=True)))
            except Exception as exc:
                cause = getattr(exc, "cause", exc)
                if isinstance(cause, RlsubError):
                    out.append((ref, RlsubError(str(cause))))
                else:
                    reason = f"ray task error: {type(cause).__name__}: {cause}"[:500]
                    out.append((ref, Lost(reason)))
        return out

    def kill(self, handles: list[Any]) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        if self.stdout is not None:
            sys.stdout, self.stdout = self.stdout, None
        if self.local is not None:
            self.local.close()  # the Ray this sweep started ends with it
            self.local = None


def make_backend(
    cfg: ExperimentConfig, backend: str, workers: int, address: str | None, policy_dir: str | None
) -> Any:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RlsubError(f"--workers must be >= 1, got {workers}")
    if backend == "ray":
        return Ray(cfg, policy_dir, workers, address)
    if backend != "local":
        raise RlsubError(f"unknown backend {backend!r}; allowed: local, ray")
    return InProcess(cfg, policy_dir) if workers == 1 else Pool(cfg, policy_dir, workers)
