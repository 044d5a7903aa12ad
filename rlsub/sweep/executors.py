"""Where sweep trials run: in this process, or (rlsub.sweep.backends) in a pool of worker
processes or as Ray tasks, with a watchdog that kills a trial past its timeout. Each runs
`run_one` on (config dict, d, seed).

Every executor takes its trials from a `Feed` (the sweep's claims on the store,
rlsub.experiment.queue): `take()` gives a trial now claimed by this sweep, `WAIT`
when the only ones left are held by other sweeps (ask again later), or None when
none is left. A trial whose worker died (SIGKILL, out of memory: `Lost(crashed=True)`)
runs again under the same claim (`again`, a new attempt counted in the store), up to
MAX_ATTEMPTS; a trial's own error is recorded as it is and not retried.

Imports: experiment, core.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from rlsub.core.config import ExperimentConfig, experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.experiment import trial as trial_module
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.trial import failed_record, run_trial

HARD_KILL_GRACE_S = 10.0  # pool/Ray: kill a trial this long after its timeout
MAX_ATTEMPTS = 3  # runs of a trial whose worker keeps dying, before it is recorded failed
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
    """A trial that ended without a record. `crashed`: its worker process died (killed,
    out of memory), which is not the trial's doing: it runs again, up to MAX_ATTEMPTS in
    all. Otherwise (the worker raised outside the trial) it is recorded as failed."""

    reason: str
    crashed: bool = False


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


class Bounded:
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
        again: deque[Job] = deque()  # claimed trials whose worker died: run once more
        crashes: dict[Job, int] = {}
        inflight: dict[Any, tuple[Job, float]] = {}
        while True:
            left: Job | str | None = WAIT if again else None
            while len(inflight) < self.workers:
                if again:
                    job = again.popleft()
                    feed.again(job)  # counts the attempt in the store
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
                    if out.crashed:
                        crashes[job] = crashes.get(job, 0) + 1
                        if crashes[job] < MAX_ATTEMPTS:
                            again.append(job)
                            continue
                        out.reason += f"; gave up after {crashes[job]} attempts"
                    out = failed_record(self.cfg, *job, out.reason, time.monotonic() - t0)
                if isinstance(out, TrialRecord) and job in crashes:
                    out.info["worker_crashes"] = crashes[job]
                yield job, out
                if isinstance(out, RlsubError):
                    return
            if self.timeout_s is None:
                continue
            limit = self.timeout_s + HARD_KILL_GRACE_S
            now = time.monotonic()
            overdue = [h for h, (_, t0) in inflight.items() if now - t0 > limit]
            if overdue:
                self.kill(overdue)  # only those: the trials beside them go on
                for h in overdue:
                    job, t0 = inflight.pop(h)
                    reason = _timeout_reason(self.timeout_s) + " (killed)"
                    yield job, failed_record(self.cfg, *job, reason, now - t0)


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
