"""Sweep controller: d x seeds trials of one config into a results store.

`rlsub sweep CONFIG [--store PATH] [--mode grid|adaptive] [--workers N]
[--backend local|ray] [--address ADDR] [--json]`

- The direct baseline (all D parameters, every seed) runs first when the
  config's ``sweep.baseline`` is true.
- **grid**: every (d, seed) of ``sweep.d_grid x sweep.seeds``.
- **adaptive**: bisection over the grid for each line, then refinement inside
  it (`rlsub.sweep.adaptive`).

Before anything is created, `rlsub.sweep.validate` checks the request, the
env or dataset files, and every d of the grid against the network's D.

Reliability: the store is a shared work queue. The driver *claims* each trial
(rlsub.experiment.queue: host, pid, lease, heartbeat) just before it starts
and writes its finished record when it ends. Several sweeps of one config on
one store -- on one machine, or on several sharing the store's folder -- split
the trials: each takes the next trial nobody holds, waits for those others
hold, and takes over a claim whose sweep is gone (pid gone on this host, or
heartbeat older than the lease). Each runs a trial only once and ends when
the whole sweep is done, with the same estimate. Rerunning the same command
skips finished trials (done or failed) and reruns interrupted ones. A trial
that raises, diverges (NaN) or exceeds ``sweep.trial_timeout_s`` is recorded
as failed (with its config, D and d) and the sweep goes on. The timeout is a
SIGALRM inside the process running the trial, plus a hard kill of the worker
process after `HARD_KILL_GRACE_S` more in a pool.

Backends: in-process (``--workers 1``); a process pool (spawn context) for
``--workers N``; Ray tasks for ``--backend ray``. Workers receive the config
as plain data plus (d, seed) and the algorithm registries as strings, never
pickled modules, and send back the record as plain data.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rlsub.analysis.estimate import config_floor, estimate_group
from rlsub.core.config import ExperimentConfig
from rlsub.core.errors import RlsubError
from rlsub.core.paths import check_can_write_file
from rlsub.experiment.queue import LEASE_S, Claimant, Heartbeat, running_state
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.store import Store, TrialKey, default_path, trial_key
from rlsub.sweep import adaptive
from rlsub.sweep.backends import make_backend
from rlsub.sweep.executors import WAIT, Job
from rlsub.sweep.floor import ensure_floor
from rlsub.sweep.validate import validate


# ------------------------------------------------------------------ the driver
class Sweep:
    """Runs jobs through a backend into the store; knows what is finished already.

    `who` claims the trials; `D` (from `validate`) goes into failed records.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        store: Store,
        backend: Any,
        progress: bool,
        who: Claimant | None = None,
        D: int | None = None,
        floor: float | None = None,
    ) -> None:
        self.cfg, self.store, self.backend = cfg, store, backend
        self.who = who or Claimant.here()
        self.D = D
        self.records: dict[TrialKey, TrialRecord] = {}
        for rec in store.records(cfg.hash):
            self.records[self.key(("direct" if rec.direct else rec.d, rec.seed))] = rec
        self.before = set(self.records)  # finished before this invocation
        self.requested: set[TrialKey] = set()
        self.ran = 0
        self.failed = 0
        self.elsewhere = 0  # requested trials that other sweeps finished meanwhile
        self.progress = progress
        self.bar: tqdm | None = None  # opened at the first trial to run
        self.planned, self.adaptive_total = 0, False  # the bar's total (`plan`)
        self.floor = config_floor(cfg.to_dict(), own=True) if floor is None else floor
        self.stopped: dict[str, str] = {}  # adaptive: why each refinement stopped

    def key(self, job: Job) -> TrialKey:
        return trial_key(self.cfg.hash, job[0], job[1])

    @property
    def skipped(self) -> int:
        return len(self.requested & self.before)

    def _put(self, k: TrialKey, rec: TrialRecord) -> bool:
        """Store a finished record; refused (a full disk): drop its policy file, release it."""
        try:
            return self.store.put(rec, self.who)
        except RlsubError:
            if rec.policy_path:
                Path(rec.policy_path).unlink(missing_ok=True)
            self.store.give_back(k, self.who)
            raise

    def run(self, jobs: list[Job]) -> None:
        """Run the jobs that have no finished record yet (other sweeps may run some)."""
        todo: list[Job] = []
        for job in dict.fromkeys(jobs):
            k = self.key(job)
            self.requested.add(k)
            if k not in self.records:
                todo.append(job)
        if not todo:
            return
        if self.bar is None:  # drawn at the first trial to run, with the sweep's total
            self.bar = tqdm(
                total=max(self.planned, len(todo)),
                desc=self.cfg.name + (" (adaptive: at most)" if self.adaptive_total else ""),
                unit="trial",
                file=sys.stderr,
                disable=not self.progress,
                dynamic_ncols=True,
            )
        feed = _Feed(self, todo)
        for job, out in self.backend.run(feed):
            feed.running.discard(job)
            k = self.key(job)
            if isinstance(out, BaseException):
                self.store.give_back(k, self.who)
                raise out
            self._complete(out)
            if self._put(k, out):
                self.records[k] = out
                self.ran += 1
                self.failed += out.status != "done"
                self.bar.set_postfix_str(f"d={job[0]} seed={job[1]} {out.status}", refresh=False)
                self.bar.update(1)
            else:  # taken over and finished by another sweep first: theirs stands
                self.absorb({k})

    def _complete(self, rec: TrialRecord) -> None:
        """A failed record keeps the network's D (and d = D when direct)."""
        D = self.D or max((r.D for r in self.records.values()), default=0)
        if rec.D == 0 and D > 0:
            rec.D = D
            if rec.direct:
                rec.d = D

    def absorb(self, keys: set[TrialKey]) -> None:
        """Read the records of `keys` that other sweeps finished."""
        new = {k for k in keys if k not in self.records}
        if not new:
            return
        for rec in self.store.records(self.cfg.hash):
            k = self.key(("direct" if rec.direct else rec.d, rec.seed))
            if k in new:
                self.records[k] = rec
        self.elsewhere += len(new)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.elsewhere} by other sweeps", refresh=False)
            self.bar.update(len(new))

    def scores(self, d: Any) -> list[float]:
        """Final scores of the trials at d (any seed); a failed trial counts at the floor
        when the task has one, as in the estimator."""
        out = []
        for k, rec in self.records.items():
            if k[2] == (d == "direct") and (d == "direct" or k[1] == d):
                if rec.status == "done" and math.isfinite(rec.final_eval_mean):
                    out.append(rec.final_eval_mean)
                elif self.floor is not None:
                    out.append(self.floor)
        return out

    # ---------------------------------------------------------------- modes
    def baseline(self) -> None:
        if self.cfg.sweep.baseline:
            self.run([("direct", s) for s in self.cfg.sweep.seeds])

    def plan(self, mode: str) -> None:
        """The progress bar's total, fixed before the first trial: the unfinished trials
        of the baseline and the grid, plus (adaptive) the most the rest can add: a first
        probe and each line's refinement budget."""
        sw = self.cfg.sweep
        jobs: list[Job] = [("direct", s) for s in sw.seeds] if sw.baseline else []
        jobs += [(d, s) for d in sorted(set(sw.d_grid)) for s in sw.seeds]
        self.planned = sum(self.key(j) not in self.records for j in jobs)
        if mode == "adaptive":
            self.adaptive_total = True
            self.planned += 1 + 2 * self.budget()

    def budget(self) -> int:
        """Adaptive: the refinement's trial budget for each line."""
        sw = self.cfg.sweep
        return sw.max_trials or 3 * len(set(sw.d_grid)) * len(sw.seeds)

    def grid(self) -> None:
        self.baseline()
        self.run([(d, s) for d in sorted(set(self.cfg.sweep.d_grid)) for s in self.cfg.sweep.seeds])

    def adaptive(self) -> None:
        adaptive.search(self)

    def close(self) -> None:
        if self.bar is not None:
            if self.bar.n < (self.bar.total or 0):  # adaptive, stopped before its bound
                self.bar.set_description_str(f"{self.cfg.name}: done", refresh=False)
                self.bar.total = self.bar.n
            self.bar.close()


class _Feed:
    """The jobs of one `Sweep.run` for the executor, claimed one at a time on the store."""

    def __init__(self, sweep: Sweep, todo: list[Job]) -> None:
        self.sweep, self.todo = sweep, todo
        self.by_key = {sweep.key(j): j for j in todo}
        self.running: set[Job] = set()  # claimed by this sweep, handed to the executor

    def take(self) -> Job | str | None:
        sw = self.sweep
        open_ = [j for j in self.todo if j not in self.running and sw.key(j) not in sw.records]
        if not open_:
            return None
        res = sw.store.claim([sw.key(j) for j in open_], sw.who)
        sw.absorb(res.finished)
        mine = [self.by_key[k] for k in res.mine if self.by_key[k] not in self.running]
        if res.key is None and mine:  # ours, yet not running (cannot happen): run it again
            self.again(mine[0])
            res.key = sw.key(mine[0])
        if res.key is not None:
            job = self.by_key[res.key]
            self.running.add(job)
            return job
        if res.held and sw.bar is not None:
            sw.bar.set_postfix_str(f"waiting for {len(res.held)} held by other sweeps")
        return WAIT if res.held else None

    def again(self, job: Job) -> None:
        self.sweep.store.restart(self.sweep.key(job), self.sweep.who)


def run_sweep(
    cfg: ExperimentConfig,
    store_path: str | Path | None = None,
    mode: str = "grid",
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    progress: bool = False,
    lease_s: float = LEASE_S,
) -> dict[str, Any]:
    """Run (or resume, or join) the sweep of `cfg`; returns the summary `rlsub sweep` prints.

    Everything is validated before the store is created. Other sweeps of the same
    config on the same store share the trials (claims with a lease of `lease_s`).
    """
    D = validate(cfg, mode, backend, workers, progress)
    path = Path(store_path) if store_path is not None else default_path(cfg.name)
    check_can_write_file(path, "results store")  # and its policies/ beside it
    t0 = time.perf_counter()
    who = Claimant.here(lease_s)
    # the backend first: a Ray it cannot reach is refused before the store exists
    be = make_backend(cfg, backend, workers, address, str(path.parent / "policies"))
    try:
        with Store(path) as store, Heartbeat(path, who):
            floor = ensure_floor(cfg, store, progress)
            sweep = Sweep(cfg, store, be, progress, who, D, floor)
            store.put_meta("sweep", cfg.hash, {"state": "running", "mode": mode})
            try:
                sweep.plan(mode)
                sweep.adaptive() if mode == "adaptive" else sweep.grid()
            finally:
                sweep.close()
            records = store.records(cfg.hash)
            done = {"state": "done", "mode": mode, "trials": len(records)}
            store.put_meta("sweep", cfg.hash, done)  # a table from this store is complete
            held, abandoned = running_state(store.rows(cfg.hash, status="running"))
    finally:
        be.close()
    estimate = estimate_group(records) if records else None  # a measured floor rides along
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
            "elsewhere": sweep.elsewhere,
            "in_store": len(records),
            "held_elsewhere": held,
            "abandoned": abandoned,
        },
        "wall_s": time.perf_counter() - t0,
        "estimate": estimate,
        "refinement": sweep.stopped,
    }
