"""Where sweep trials run: in this process, in a process pool (with a watchdog that kills a
trial past its timeout), or as Ray tasks. Each runs `run_one` on (config dict, d, seed).

Every executor takes its trials from a `Feed` (the sweep's claims on the store,
rlsub.experiment.claims): `take()` gives a trial now claimed by this sweep, `WAIT`
when the only ones left are held by other sweeps (ask again later), or None when
none is left. A trial the pool's watchdog took down with another is run again
under the same claim (`again`, a new attempt).

Imports: experiment, core.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from rlsub.core.config import ExperimentConfig, experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.experiment import trial as trial_module
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.trial import failed_record, run_trial

HARD_KILL_GRACE_S = 10.0  # pool/Ray: kill a trial this long after its timeout
POLL_S = 0.5

Job = tuple[Any, int]  # (d or "direct", seed)
WAIT = "wait"  # Feed.take: nothing free now, other sweeps hold the rest
WAIT_S = 0.5  # how long an idle executor waits before asking the feed again


class Feed(Protocol):
    """The one claim path: where every executor gets its trials."""

    def take(self) -> Job | str | None:
        """A trial now claimed for this sweep, WAIT, or None when no trial is left."""
        ...

    def again(self, job: Job) -> None:
        """Count a new attempt of a claimed trial that runs again (its worker was lost)."""
        ...


@dataclasses.dataclass
class Lost:
    """A trial that ended without a record (dead worker, task error): recorded as failed."""

    reason: str


Outcome = TrialRecord | BaseException | Lost


# ------------------------------------------------------------------ one trial
class TrialTimeout(Exception):
    """Raised inside a trial by SIGALRM when it exceeds its wall-clock limit."""


def _timeout_reason(timeout_s: float) -> str:
    return f"timeout: exceeded trial_timeout_s={timeout_s:g}"


def run_one(
    cfg: ExperimentConfig, d: Any, seed: int, timeout_s: float | None, policy_dir: str | None
) -> TrialRecord:
    """`run_trial` under a wall-clock limit (SIGALRM when in the main thread, else checked after)."""
    alarm = (
        timeout_s is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not alarm:
        rec = run_trial(cfg, d, seed, policy_dir=policy_dir, progress=False)
        if timeout_s is not None and rec.wall_s > timeout_s and rec.status == "done":
            rec.status, rec.reason = "failed", _timeout_reason(timeout_s)
        return rec

    def on_alarm(signum: int, frame: Any) -> None:
        raise TrialTimeout(_timeout_reason(float(timeout_s or 0)))

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(timeout_s or 0))
    t0 = time.perf_counter()
    try:
        rec = run_trial(cfg, d, seed, policy_dir=policy_dir, progress=False)
        if rec.reason.startswith("TrialTimeout: "):
            rec.reason = rec.reason.removeprefix("TrialTimeout: ")
    except TrialTimeout as exc:  # fired outside the trainer (e.g. while saving)
        rec = failed_record(cfg, d, seed, str(exc), time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return rec


def work(
    cfg_data: dict[str, Any],
    source: str,
    d: Any,
    seed: int,
    timeout_s: float | None,
    policy_dir: str | None,
) -> dict[str, Any]:
    """Worker entry point: plain data in (config dict, d, seed), plain record dict out."""
    cfg = dataclasses.replace(experiment_from_dict(cfg_data, source), source=source)
    return run_one(cfg, d, seed, timeout_s, policy_dir).to_dict()


# ------------------------------------------------------------------ backends
class InProcess:
    """Trials one after another in this process, or `sweep.batch` at a time as one batched
    job where the config allows (`rlsub.experiment.trial.batch_reason`)."""

    def __init__(self, cfg: ExperimentConfig, policy_dir: str | None) -> None:
        self.cfg, self.policy_dir = cfg, policy_dir
        self.batch = cfg.sweep.batch if cfg.sweep.trial_timeout_s is None else 1
        if self.batch > 1 and trial_module.batch_reason(cfg) is not None:
            self.batch = 1

    def run(self, feed: Feed) -> Iterator[tuple[Job, Outcome]]:
        if self.batch > 1:
            yield from self._batches(feed)
            return
        while (job := feed.take()) is not None:
            if isinstance(job, str):  # WAIT
                time.sleep(WAIT_S)
                continue
            try:
                rec = run_one(self.cfg, *job, self.cfg.sweep.trial_timeout_s, self.policy_dir)
            except RlsubError as exc:
                yield job, exc
                return
            yield job, rec

    def _batches(self, feed: Feed) -> Iterator[tuple[Job, Outcome]]:
        """Up to `batch` claimed trials at a time (those free now) as one batched job."""
        while True:
            jobs: list[Job] = []
            left: Job | str | None = None
            while len(jobs) < self.batch:
                left = feed.take()
                if left is None or isinstance(left, str):
                    break
                jobs.append(left)
            if not jobs:
                if left is None:
                    return
                time.sleep(WAIT_S)  # other sweeps hold what is left
                continue
            try:
                records = trial_module.run_batch(self.cfg, jobs, self.policy_dir)
            except RlsubError as exc:
                yield jobs[0], exc
                return
            yield from zip(jobs, records, strict=True)

    def close(self) -> None:
        pass


class _Bounded:
    """Shared loop of the pool and Ray backends: at most `workers` trials in flight."""

    workers: int

    def __init__(self, cfg: ExperimentConfig, policy_dir: str | None) -> None:
        self.cfg, self.policy_dir = cfg, policy_dir
        self.timeout_s = cfg.sweep.trial_timeout_s
        self.args = (cfg.to_dict(), cfg.source)

    def submit(self, job: Job) -> Any:
        raise NotImplementedError

    def poll(self, handles: list[Any]) -> list[tuple[Any, Outcome]]:
        raise NotImplementedError

    def kill(self, handles: list[Any]) -> None:
        raise NotImplementedError

    def run(self, feed: Feed) -> Iterator[tuple[Job, Outcome]]:
        again: deque[Job] = deque()  # claimed trials to run once more
        inflight: dict[Any, tuple[Job, float]] = {}
        while True:
            left: Job | str | None = WAIT if again else None
            while len(inflight) < self.workers:
                if again:
                    job = again.popleft()
                    feed.again(job)
                else:
                    left = feed.take()
                    if left is None or isinstance(left, str):
                        break
                    job = left
                inflight[self.submit(job)] = (job, time.monotonic())
            if not inflight:
                if left is None:
                    return
                time.sleep(WAIT_S)  # other sweeps hold what is left
                continue
            for handle, out in self.poll(list(inflight)):
                job, t0 = inflight.pop(handle)
                if isinstance(out, Lost):
                    out = failed_record(self.cfg, *job, out.reason, time.monotonic() - t0)
                yield job, out
                if isinstance(out, RlsubError):
                    return
            if self.timeout_s is None:
                continue
            limit = self.timeout_s + HARD_KILL_GRACE_S
            now = time.monotonic()
            overdue = [h for h, (_, t0) in inflight.items() if now - t0 > limit]
            if overdue:
                self.kill(overdue)  # may take innocent trials down: they run again
                for h in list(inflight):
                    job, t0 = inflight.pop(h)
                    if h in overdue:
                        yield (
                            job,
                            failed_record(
                                self.cfg,
                                *job,
                                _timeout_reason(self.timeout_s) + " (killed)",
                                now - t0,
                            ),
                        )
                    else:
                        again.append(job)


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Pool-worker initializer: end this worker once the sweep process that made it is gone.

    A sweep killed with SIGKILL or SIGTERM cannot shut its pool down, and its
    workers would go on running their trials for nothing (the rerun claims the
    same trials again). Checked by a daemon thread every `every_s` seconds.
    """

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="rlsub-parent-watch", daemon=True).start()


class Pool(_Bounded):
    """A process pool (spawn context): workers import rlsub afresh, nothing inherited.

    Workers end themselves when the sweep process dies (`_exit_with_parent`).
    """

    def __init__(self, cfg: ExperimentConfig, policy_dir: str | None, workers: int) -> None:
        super().__init__(cfg, policy_dir)
        self.workers = workers
        self.ctx = multiprocessing.get_context("spawn")
        self.pool = self._new_pool()
        self.owner: dict[Future, ProcessPoolExecutor] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.ctx,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    def submit(self, job: Job) -> Future:
        fut = self.pool.submit(work, *self.args, *job, self.timeout_s, self.policy_dir)
        self.owner[fut] = self.pool
        return fut

    def poll(self, handles: list[Any]) -> list[tuple[Any, Outcome]]:
        done, _ = wait(handles, timeout=POLL_S, return_when=FIRST_COMPLETED)
        out: list[tuple[Any, Outcome]] = []
        for fut in done:
            owner = self.owner.pop(fut, None)
            try:
                out.append((fut, TrialRecord(**fut.result())))
            except BrokenProcessPool:
                out.append((fut, Lost("worker process died (killed, out of memory?)")))
                if owner is self.pool:
                    self._restart()
            except RlsubError as exc:
                out.append((fut, exc))
            except Exception as exc:  # the worker raised outside the trial
                out.append((fut, Lost(f"worker error: {type(exc).__name__}: {exc}"[:500])))
        return out

    def kill(self, handles: list[Any]) -> None:
        old = self.pool
        self._restart(kill=True)  # every trial of the old pool is gone
        self.owner = {f: p for f, p in self.owner.items() if p is not old}

    def _restart(self, kill: bool = False) -> None:
        if kill:
            self._kill_processes()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def _kill_processes(self) -> None:
        # concurrent.futures has no public kill before Python 3.14 (terminate_workers)
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
            proc.kill()

    def close(self) -> None:
        """Shut the pool down. When no trial is running, its workers exit on their own and
        free what they hold (killed workers leave their semaphores to the resource tracker,
        which then warns of leaks); trials still running (an error, an interrupt) are killed."""
        if self.owner:
            self._kill_processes()
        self.pool.shutdown(wait=True, cancel_futures=True)


class Ray(_Bounded):
    """Trials as Ray tasks (`ray` is an optional extra: pip install 'rlsub[ray]')."""

    def __init__(
        self, cfg: ExperimentConfig, policy_dir: str | None, workers: int, address: str | None
    ) -> None:
        super().__init__(cfg, policy_dir)
        self.ray = import_ray()
        if not self.ray.is_initialized():
            self.ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.workers = workers if workers > 1 else max(1, cpus)
        self.remote = self.ray.remote(num_cpus=1, max_retries=0)(work)

    def submit(self, job: Job) -> Any:
        return self.remote.remote(*self.args, *job, self.timeout_s, self.policy_dir)

    def poll(self, handles: list[Any]) -> list[tuple[Any, Outcome]]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=POLL_S)
        out: list[tuple[Any, Outcome]] = []
        for ref in ready:
            try:
                out.append((ref, TrialRecord(**self.ray.get(ref))))
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
        pass


def import_ray() -> Any:
    """`import ray`, or one clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RlsubError(
            "--backend ray needs the 'ray' package, which is not installed: "
            "pip install 'rlsub[ray]' (or use --backend local)"
        ) from None
    return ray


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
