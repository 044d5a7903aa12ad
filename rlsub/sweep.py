"""Sweep controller: d x seeds trials of one config into a results store.

`rlsub sweep CONFIG [--store PATH] [--mode grid|adaptive] [--workers N]
[--backend local|ray] [--address ADDR] [--json]`

- The direct baseline (all D parameters, every seed) runs first when the
  config's ``sweep.baseline`` is true.
- **grid**: every (d, seed) of ``sweep.d_grid x sweep.seeds``.
- **adaptive**: bisection over the grid (log-spaced grids make it bisection
  on log d) for each target the records make available: ``threshold x
  baseline mean`` (d_int90) and the env's solved score (d_int100). A d is
  first tried with `coarse_seeds` seeds; when its mean is near the target
  (within `NEAR_FRACTION` = 5 % of it, or two standard errors) every seed runs.
  Bisection stops when the bracket is one grid step; the top of the final
  bracket (the d_int) then runs every seed, and if that changes its decision
  the bisection goes on (the d below it gets every seed only when near the
  target). It assumes a monotone curve; without any target (no baseline and
  no solved score) it falls back to the grid.

Reliability: the driver alone writes the store; a trial is marked 'running'
just before it starts and gets its finished record when it ends. Rerunning
the same command skips finished trials (done or failed) and reruns the
'running' ones (interrupted by a kill). A trial that raises, diverges (NaN)
or exceeds ``sweep.trial_timeout_s`` is recorded as failed and the sweep goes
on. The timeout is a SIGALRM inside the process running the trial, plus a
hard kill of the worker process after `HARD_KILL_GRACE_S` more in a pool.

Backends: in-process (``--workers 1``); a process pool (spawn context) for
``--workers N``; Ray tasks for ``--backend ray``. Workers receive the config
as plain data plus (d, seed) and the algorithm registries as strings, never
pickled modules, and send back the record as plain data.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rlsub import config as config_module
from rlsub import trial as trial_module
from rlsub.config import ExperimentConfig, experiment_from_dict, load_experiment
from rlsub.errors import RlsubError
from rlsub.store import Store, TrialKey, default_path, trial_key
from rlsub.trial import TrialRecord, git_revision, run_trial

NEAR_FRACTION = 0.05  # adaptive: a mean within 5 % of the target gets every seed
HARD_KILL_GRACE_S = 10.0  # pool/Ray: kill a trial this long after its timeout
POLL_S = 0.5

Job = tuple[Any, int]  # (d or "direct", seed)


@dataclasses.dataclass
class Lost:
    """A trial that ended without a record (dead worker, task error): recorded as failed."""

    reason: str


Outcome = TrialRecord | BaseException | Lost


def coarse_seeds(n_seeds: int) -> int:
    """Adaptive: seeds tried first at a d (a third of them, at least one)."""
    return max(1, math.ceil(n_seeds / 3))


# ------------------------------------------------------------------ one trial
class TrialTimeout(Exception):
    """Raised inside a trial by SIGALRM when it exceeds its wall-clock limit."""


def failed_record(
    cfg: ExperimentConfig, d: Any, seed: int, reason: str, wall_s: float = 0.0
) -> TrialRecord:
    """A 'failed' record for a trial that ended outside `run_trial` (timeout, dead worker)."""
    direct = d == "direct"
    return TrialRecord(
        config_hash=cfg.hash,
        name=cfg.name,
        task=cfg.task,
        algorithm=cfg.algorithm,
        network=cfg.network.name,
        projection="identity" if direct else cfg.subspace.projection,
        d=0 if direct else int(d),
        direct=direct,
        seed=int(seed),
        status="failed",
        reason=reason,
        wall_s=wall_s,
        config=cfg.to_dict(),
        versions=trial_module.versions(),
        git_rev=git_revision(),
    )


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


def _registries() -> tuple[dict[str, str], dict[str, str]]:
    return dict(config_module.ALGORITHMS), dict(trial_module.TRAINERS)


def work(
    cfg_data: dict[str, Any],
    source: str,
    d: Any,
    seed: int,
    timeout_s: float | None,
    policy_dir: str | None,
    registries: tuple[dict[str, str], dict[str, str]],
) -> dict[str, Any]:
    """Worker entry point: plain data in (config dict, d, seed), plain record dict out."""
    config_module.ALGORITHMS.update(registries[0])
    trial_module.TRAINERS.update(registries[1])
    cfg = dataclasses.replace(experiment_from_dict(cfg_data, source), source=source)
    return run_one(cfg, d, seed, timeout_s, policy_dir).to_dict()


# ------------------------------------------------------------------ backends
StartHook = Callable[[Job], None]


class InProcess:
    """Trials one after another in this process."""

    def __init__(self, cfg: ExperimentConfig, policy_dir: str | None) -> None:
        self.cfg, self.policy_dir = cfg, policy_dir

    def run(self, jobs: list[Job], on_start: StartHook) -> Iterator[tuple[Job, Outcome]]:
        for job in jobs:
            on_start(job)
            try:
                rec = run_one(self.cfg, *job, self.cfg.sweep.trial_timeout_s, self.policy_dir)
            except RlsubError as exc:
                yield job, exc
                return
            yield job, rec

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

    def run(self, jobs: list[Job], on_start: StartHook) -> Iterator[tuple[Job, Outcome]]:
        pending: deque[Job] = deque(jobs)
        inflight: dict[Any, tuple[Job, float]] = {}
        while pending or inflight:
            while pending and len(inflight) < self.workers:
                job = pending.popleft()
                on_start(job)
                inflight[self.submit(job)] = (job, time.monotonic())
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
                        pending.appendleft(job)


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
        fut = self.pool.submit(
            work, *self.args, *job, self.timeout_s, self.policy_dir, _registries()
        )
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
        for fut in handles:
            self.owner.pop(fut, None)
        self._restart(kill=True)

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
        return self.remote.remote(*self.args, *job, self.timeout_s, self.policy_dir, _registries())

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


# ------------------------------------------------------------------ the driver
class Sweep:
    """Runs jobs through a backend into the store; knows what is finished already."""

    def __init__(self, cfg: ExperimentConfig, store: Store, backend: Any, progress: bool) -> None:
        self.cfg, self.store, self.backend = cfg, store, backend
        self.records: dict[TrialKey, TrialRecord] = {}
        for rec in store.records(cfg.hash):
            self.records[self.key(("direct" if rec.direct else rec.d, rec.seed))] = rec
        self.before = set(self.records)  # finished before this invocation
        self.requested: set[TrialKey] = set()
        self.ran = 0
        self.failed = 0
        self.progress = progress
        self.bar: tqdm | None = None  # opened at the first trial to run

    def key(self, job: Job) -> TrialKey:
        return trial_key(self.cfg.hash, job[0], job[1])

    @property
    def skipped(self) -> int:
        return len(self.requested & self.before)

    def run(self, jobs: list[Job]) -> None:
        """Run the jobs that have no finished record yet."""
        todo: list[Job] = []
        for job in dict.fromkeys(jobs):
            k = self.key(job)
            self.requested.add(k)
            if k not in self.records:
                todo.append(job)
        if not todo:
            return
        if self.bar is None:
            self.bar = tqdm(
                total=0,
                unit="trial",
                file=sys.stderr,
                disable=not self.progress,
                dynamic_ncols=True,
            )
        self.bar.total = (self.bar.total or 0) + len(todo)  # adaptive: grows as it goes
        self.bar.refresh()
        for job, out in self.backend.run(todo, lambda j: self.store.mark_running(self.key(j))):
            if isinstance(out, BaseException):
                self.store.abandon(self.key(job))
                raise out
            self.store.put(out)
            self.records[self.key(job)] = out
            self.ran += 1
            self.failed += out.status != "done"
            self.bar.set_postfix_str(f"d={job[0]} seed={job[1]} {out.status}", refresh=False)
            self.bar.update(1)

    def scores(self, d: Any) -> list[float]:
        """Finite final scores of the done trials at d (any seed)."""
        out = []
        for k, rec in self.records.items():
            if k[2] == (d == "direct") and (d == "direct" or k[1] == d):
                if rec.status == "done" and math.isfinite(rec.final_eval_mean):
                    out.append(rec.final_eval_mean)
        return out

    # ---------------------------------------------------------------- modes
    def baseline(self) -> None:
        if self.cfg.sweep.baseline:
            self.run([("direct", s) for s in self.cfg.sweep.seeds])

    def grid(self) -> None:
        self.baseline()
        self.run([(d, s) for d in sorted(set(self.cfg.sweep.d_grid)) for s in self.cfg.sweep.seeds])

    def targets(self) -> list[tuple[str, float]]:
        out = []
        base = self.scores("direct")
        if base:
            out.append(("d_int90", self.cfg.sweep.threshold * float(np.mean(base))))
        solved = [r.solved_score for r in self.records.values() if r.solved_score is not None]
        if solved:
            out.append(("d_int100", float(max(solved))))
        return out

    def passes(self, d: int, target: float, full: bool = False) -> bool:
        """Does the mean at d reach the target? Adds seeds when near it (or when `full`)."""
        seeds = self.cfg.sweep.seeds
        self.run([(d, s) for s in (seeds if full else seeds[: coarse_seeds(len(seeds))])])
        s = self.scores(d)
        if not full and len(s) < len(seeds) and s:
            se = float(np.std(s, ddof=1) / math.sqrt(len(s))) if len(s) > 1 else 0.0
            if abs(np.mean(s) - target) <= max(NEAR_FRACTION * abs(target), 2 * se):
                self.run([(d, x) for x in seeds])
                s = self.scores(d)
        return bool(s) and float(np.mean(s)) >= target

    def bisect(self, target: float) -> tuple[int | None, int | None]:
        """Bracket (last d below, first d at/above) the target on the grid."""
        grid = sorted(set(self.cfg.sweep.d_grid))
        n = len(grid)
        lo, hi = -1, n  # virtual ends: below the grid fails, above it passes
        confirmed: set[int] = set()
        for _ in range(n + 2):
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.passes(grid[mid], target, full=mid in confirmed):
                    hi = mid
                else:
                    lo = mid
            moved = False
            if 0 <= hi < n and hi not in confirmed:  # d_int itself runs every seed
                confirmed.add(hi)
                if not self.passes(grid[hi], target, full=True):
                    lo, hi, moved = hi, n, True
            if not moved:
                break
        return (grid[lo] if lo >= 0 else None, grid[hi] if hi < n else None)

    def adaptive(self) -> None:
        self.baseline()
        if not self.targets():  # learn the solved score from a first trial
            grid = sorted(set(self.cfg.sweep.d_grid))
            self.run([(grid[len(grid) // 2], self.cfg.sweep.seeds[0])])
        targets = self.targets()
        if not targets:
            print(
                "rlsub: adaptive sweep has no target (no baseline, no solved score): "
                "running the whole grid",
                file=sys.stderr,
            )
            self.grid()
        for _, target in targets:
            self.bisect(target)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def make_backend(
    cfg: ExperimentConfig, backend: str, workers: int, address: str | None, policy_dir: str | None
) -> Any:
    if workers < 1:
        raise RlsubError(f"--workers must be >= 1, got {workers}")
    if backend == "ray":
        return Ray(cfg, policy_dir, workers, address)
    if backend != "local":
        raise RlsubError(f"unknown backend {backend!r}; allowed: local, ray")
    return InProcess(cfg, policy_dir) if workers == 1 else Pool(cfg, policy_dir, workers)


def run_sweep(
    cfg: ExperimentConfig,
    store_path: str | Path | None = None,
    mode: str = "grid",
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the sweep of `cfg`; returns the summary printed by `rlsub sweep`."""
    from rlsub.estimate import estimate_group

    if mode not in ("grid", "adaptive"):
        raise RlsubError(f"unknown mode {mode!r}; allowed: grid, adaptive")
    if backend == "ray":
        import_ray()  # fail before touching the store
    path = Path(store_path) if store_path is not None else default_path(cfg.name)
    t0 = time.perf_counter()
    with Store(path) as store:
        policy_dir = str(path.parent / "policies")
        be = make_backend(cfg, backend, workers, address, policy_dir)
        sweep = Sweep(cfg, store, be, progress)
        try:
            sweep.adaptive() if mode == "adaptive" else sweep.grid()
        finally:
            sweep.close()
            be.close()
        records = store.records(cfg.hash)
    estimate = estimate_group(records) if records else None
    return {
        "store": str(path),
        "config": cfg.source,
        "name": cfg.name,
        "config_hash": cfg.hash,
        "mode": mode,
        "backend": backend,
        "workers": workers,
        "trials": {
            "requested": len(sweep.requested),
            "run": sweep.ran,
            "skipped": sweep.skipped,
            "failed": sweep.failed,
            "in_store": len(records),
        },
        "wall_s": time.perf_counter() - t0,
        "estimate": estimate,
    }


def format_summary(r: dict[str, Any]) -> str:
    """Human-readable end-of-sweep summary."""
    from rlsub.estimate import format_group

    t = r["trials"]
    head = (
        f"sweep {r['name']} ({r['mode']}, {r['backend']}, {r['workers']} worker(s)) -> "
        f"{r['store']}\n"
        f"trials: {t['run']} run ({t['failed']} failed), {t['skipped']} skipped (finished "
        f"before), {t['in_store']} in store for this config; {r['wall_s']:.1f} s"
    )
    return head if r["estimate"] is None else head + "\n" + format_group(r["estimate"])


def cli_sweep(args: argparse.Namespace) -> None:
    """`rlsub sweep` (arguments parsed in rlsub.cli)."""
    from rlsub.cli import emit

    cfg = load_experiment(args.config)
    result = run_sweep(
        cfg,
        args.store,
        mode=args.mode,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        progress=not args.json,
    )
    emit(args, result, format_summary)
