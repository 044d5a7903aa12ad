"""Sweep d for a user's own train function, into a results store, and estimate d_int.

    def f(d: int | "direct", seed: int) -> float | dict:   # score (higher is better),
        ...                                                # or {"score": .., "D": ..}

    result = sweep_function(f, d_grid=[1, 2, 4, 8], seeds=[0, 1, 2, 3, 4],
                            store="runs/mine.sqlite", floor=0.0)
    result["d_int90"]["headline"], result["d_int90"]["interpolated_interval"]

Each (d, seed) is one trial record in the store, keyed by (name, d, seed) like any
other trial, so a killed sweep resumes where it stopped and `rlsub dint` / `rlsub
report` read the store. An exception or a non-finite score is recorded as a failed
trial (it counts at `floor` in the estimate). With `baseline=True` (default) `f` is
also called with d = "direct" for every seed: the directly trained baseline of the
d_int90 line.

Imports: analysis, experiment, core.
"""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlsub.analysis.estimate import estimate_group
from rlsub.analysis.group import Group
from rlsub.core.errors import RlsubError
from rlsub.experiment.record import TrialRecord, versions
from rlsub.experiment.store import Store, trial_key


def _function_path(f: Callable[..., Any]) -> str:
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"


def sweep_function(
    f: Callable[[Any, int], Any],
    d_grid: Sequence[int],
    seeds: Sequence[int],
    store: str | Path,
    name: str | None = None,
    baseline: bool = True,
    floor: float | None = None,
    threshold: float = 0.9,
    solved_score: float | None = None,
    supervised: bool = False,
) -> Group:
    """Run f(d, seed) for every d in `d_grid` and seed (and the baseline), skipping the
    trials the store already holds; returns `estimate_group` of all of them.

    floor: the score a failed trial counts as (default: the lowest score seen);
    supervised: the d_int90 line is `threshold x baseline` (else, with a floor,
    `floor + threshold x (baseline - floor)`); solved_score: also estimate d_int100.
    """
    if not d_grid or any(int(d) <= 0 for d in d_grid):
        raise RlsubError(f"sweep_function: d_grid must hold positive integers, got {list(d_grid)}")
    if not seeds:
        raise RlsubError("sweep_function: seeds must not be empty")
    fpath = _function_path(f)
    name = str(name or getattr(f, "__name__", "function"))
    config = {
        "name": name,
        "function": fpath,
        "algorithm": "function",
        "sweep": {"d_grid": list(map(int, d_grid)), "seeds": list(seeds), "threshold": threshold},
    }
    if supervised:
        config["dataset"] = {"name": name}
    chash = hashlib.sha256(f"{name}|{fpath}".encode()).hexdigest()[:16]
    jobs: list[Any] = [("direct", s) for s in seeds] if baseline else []
    jobs += [(int(d), s) for d in d_grid for s in seeds]
    with Store(store) as st:
        done = st.statuses(chash)
        for d, seed in jobs:
            if done.get(trial_key(chash, d, seed)) in ("done", "failed"):
                continue
            st.put(_run(f, d, seed, chash, name, fpath, config, solved_score))
        records = st.records(chash)
    return estimate_group(records, floor=floor)


def _run(
    f: Callable[[Any, int], Any],
    d: Any,
    seed: int,
    chash: str,
    name: str,
    fpath: str,
    config: dict[str, Any],
    solved_score: float | None,
) -> TrialRecord:
    direct = d == "direct"
    rec = TrialRecord(
        config_hash=chash,
        name=name,
        task=name,
        algorithm="function",
        network=fpath,
        projection="identity" if direct else "user",
        d=0 if direct else int(d),
        direct=direct,
        seed=int(seed),
        status="failed",
        config=config,
        versions=versions(),
        solved_score=solved_score,
    )
    t0 = time.perf_counter()
    try:
        out = f(d, seed)
    except Exception as exc:  # a failed trial is a record, and the sweep goes on
        rec.reason = f"{type(exc).__name__}: {exc}"[:500]
        rec.info["traceback"] = traceback.format_exc(limit=5)[-2000:]
        rec.wall_s = time.perf_counter() - t0
        return rec
    rec.wall_s = time.perf_counter() - t0
    score, D = (out.get("score"), out.get("D", 0)) if isinstance(out, dict) else (out, 0)
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rec.reason = f"f returned {out!r}, not a score"
        return rec
    rec.D = int(D or 0)
    rec.final_eval_mean = rec.best_eval_mean = value
    rec.final_eval_std = 0.0
    if not math.isfinite(value):
        rec.reason = "diverged: the score is not finite"
        return rec
    if solved_score is not None:
        rec.solved = value >= solved_score
    rec.status = "done"
    return rec
