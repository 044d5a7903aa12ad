"""Intrinsic-dimension estimates from trial records (pure functions).

Records are grouped by config hash (one experiment: task, network, algorithm,
projection and hyperparameters); the direct baseline of a group is its
``direct`` records (same hash).

**Failures count.** A failed or diverged trial (an exception, a non-finite
score) enters the mean at its d with the task's *floor* score: for RL the env
spec's random-policy score, for supervised tasks chance accuracy (1 / classes).
Where no floor is known (a user's env without a random score, a user's
dataset), the lowest score observed in the group stands in, and a note says so.
Nothing is left out of a mean; every curve point counts its failures.

**The lines.** For each group:

- ``d_int90``: the d at which the mean score reaches the line
  ``random + threshold x (baseline - random)`` for RL (threshold 0.9 by
  default, from the config's sweep section; random: the env spec's random
  score, so the line means the same for returns that can be negative), and
  ``threshold x baseline`` for supervised tasks (the paper's rule), where
  baseline is the mean of the directly trained network's scores;
- ``d_int100``: the d at which the mean score reaches the env's solved score (RL).
Each estimate carries its line as text (``line``).

**The estimates.** ``interpolated`` (the headline): the d at which the
mean-over-seeds curve crosses the line, linear in log d between the last grid
d below the line and the first d from which the curve stays at or above it,
with ``interpolated_interval``, a 90 % interval from ``analysis.interval`` (a
posterior over a logistic curve in log d with seed noise and the baseline's
uncertainty; the percentile bootstrap over seeds was tried first and covered the
truth only 51-78 % of the time on synthetic sweeps, see ``analysis.calibration``).
``d_int`` is the grid's estimate (the smallest grid d from which the mean stays at
or above the line), with ``interval``: the interval's ends moved up to grid points.
An interval end of None means "beyond the grid" (hi) or "below the grid" (lo).
Where no d reaches the line, no number is given: ``d_int`` and ``interpolated`` are
None and the note says "not reached within the grid". ``posterior_mean`` /
``posterior_std`` (the original's "786 +- 66" style) are given only when every
posterior draw crosses within the grid.

Rules (``rule=``): ``"stays_above"`` (default) as above ("stays above": a lucky
blip above the line below the real crossing does not count, and the first
crossing is reported beside it as ``first_crossing``, with ``monotone`` false
when they differ); ``"original"``: Li et al.'s rule, the smallest d whose mean
is strictly above the line (first crossing).

Imports: experiment (records), envs and data (floors), core.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rlsub.analysis.interval import DRAWS, LEVEL, METHOD, crossing_interval
from rlsub.data.datasets import chance_accuracy
from rlsub.envs.spec import env_spec_data, load_env_spec
from rlsub.experiment.record import TrialRecord

RULES = ("stays_above", "original")
INTERVAL_METHOD = METHOD  # how `interpolated_interval` is computed, in words (footnotes)


@dataclass
class CurvePoint:
    """Scores at one d: finished trials' scores, and failed ones at the floor score."""

    d: int
    mean: float
    std: float
    n: int
    failed: int
    scores: list[float] = field(default_factory=list)


@dataclass
class Estimate:
    """One intrinsic-dimension estimate (d_int90 or d_int100) with its interval."""

    kind: str  # "d_int90" | "d_int100"
    rule: str
    target: float
    d_int: int | None
    note: str
    interpolated: float | None = None
    first_crossing: int | None = None
    monotone: bool = True
    interval: tuple[int | None, int | None] | None = None
    interpolated_interval: tuple[float | None, float | None] | None = None
    posterior_mean: float | None = None
    posterior_std: float | None = None
    reached_fraction: float | None = None  # share of posterior draws crossing in the grid
    level: float = LEVEL
    line: str = ""  # the rule that set `target`, in words


def curve_points(
    records: Iterable[TrialRecord], score: str = "final", floor: float | None = None
) -> list[CurvePoint]:
    """Mean score per d over the subspace (non-direct) records, sorted by d.

    Failed or diverged trials enter with `floor` (and are counted in `failed`); with
    floor None they are left out (only for callers that handle failures themselves).
    """
    by_d: dict[int, list[TrialRecord]] = defaultdict(list)
    for r in records:
        if not r.direct:
            by_d[int(r.d)].append(r)
    out = []
    for d in sorted(by_d):
        ok = [_score(r, score) for r in by_d[d] if _ok(r, score)]
        failed = len(by_d[d]) - len(ok)
        scores = ok + ([float(floor)] * failed if floor is not None else [])
        arr = np.asarray(scores, dtype=float)
        out.append(
            CurvePoint(
                d=d,
                mean=float(arr.mean()) if len(arr) else float("nan"),
                std=float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                n=len(arr),
                failed=failed,
                scores=scores,
            )
        )
    return out


def _score(r: TrialRecord, score: str) -> float:
    return float(r.best_eval_mean if score == "best" else r.final_eval_mean)


def _ok(r: TrialRecord, score: str) -> bool:
    return r.status == "done" and math.isfinite(_score(r, score))


def crossing_indices(
    means: np.ndarray, targets: np.ndarray, rule: str = "stays_above"
) -> tuple[np.ndarray, np.ndarray]:
    """Crossing index per row of `means` (B, n) against `targets` (B,); -1 when not reached.

    Returns (d_int index by `rule`, first-crossing index by the same comparison).
    """
    strict = rule == "original"
    above = means > targets[:, None] if strict else means >= targets[:, None]
    n = above.shape[1]
    any_above = above.any(axis=1)
    first = np.where(any_above, above.argmax(axis=1), -1)
    if rule == "original":
        return first, first
    stays = np.flip(np.logical_and.accumulate(np.flip(above, axis=1), axis=1), axis=1)
    count = stays.sum(axis=1)
    idx = np.where(count > 0, n - count, -1)
    return idx, first


def interpolate(ds: np.ndarray, means: np.ndarray, targets: np.ndarray, idx: np.ndarray) -> Any:
    """Crossing on log d: linear between (d[i-1], m[i-1]) and (d[i], m[i]) for i = idx.

    idx == 0 gives d[0] (an upper bound); idx == -1 gives inf (not reached).
    """
    B = means.shape[0]
    out = np.full(B, np.inf)
    log_d = np.log(ds.astype(float))
    rows = np.arange(B)
    at_min = idx == 0
    out[at_min] = ds[0]
    inner = idx > 0
    if inner.any():
        i = idx[inner]
        r = rows[inner]
        m_lo, m_hi = means[r, i - 1], means[r, i]
        span = m_hi - m_lo
        frac = np.where(span > 0, (targets[r] - m_lo) / np.where(span > 0, span, 1.0), 1.0)
        frac = np.clip(frac, 0.0, 1.0)
        out[inner] = np.exp(log_d[i - 1] + frac * (log_d[i] - log_d[i - 1]))
    return out


def estimate(
    points: list[CurvePoint],
    target: float,
    kind: str,
    rule: str = "stays_above",
    baseline_scores: list[float] | None = None,
    threshold: float | None = None,
    draws: int = DRAWS,
    floor: float = 0.0,
    line: str = "",
    score_floor: float | None = None,
) -> Estimate:
    """d_int for one target with its interval (`analysis.interval`; draws 0: none).

    With `baseline_scores` and `threshold` (d_int90) the line is
    ``floor + threshold x (baseline mean - floor)`` (floor 0: the supervised
    ``threshold x baseline``) and the interval carries the baseline's uncertainty;
    otherwise (d_int100) the target is fixed. `score_floor`: the score failed trials
    count as (default `floor`), the bottom of the interval's scale.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    pts = [p for p in points if p.n > 0]
    if not pts:
        return Estimate(kind, rule, target, None, "no trials", line=line)
    ds = np.array([p.d for p in pts])
    means = np.array([[p.mean for p in pts]])
    idx, first = crossing_indices(means, np.array([target]), rule)
    i, f = int(idx[0]), int(first[0])
    interp = float(interpolate(ds, means, np.array([target]), idx)[0])
    if i < 0:
        note = f"not reached within the grid (> {int(ds[-1])})"
        d_int: int | None = None
        interpolated: float | None = None
    elif i == 0:
        note = f"<= {int(ds[0])} (every d reaches the target)"
        d_int, interpolated = int(ds[0]), None
    else:
        note = f"crossing between {int(ds[i - 1])} and {int(ds[i])}"
        d_int, interpolated = int(ds[i]), interp
    est = Estimate(
        kind,
        rule,
        float(target),
        d_int,
        note,
        interpolated=interpolated,
        first_crossing=None if f < 0 else int(ds[f]),
        monotone=i == f,
        line=line,
    )
    if draws <= 0:
        return est
    c = crossing_interval(
        [p.d for p in pts],
        [p.scores for p in pts],
        floor=floor if score_floor is None else score_floor,
        target=target,
        baseline_scores=baseline_scores if threshold is not None else None,
        threshold=threshold,
        line_floor=floor,
        draws=draws,
    )
    est.interpolated_interval = (c.lo, c.hi)
    est.interval = (int(ds[0]) if c.below else _up_to_grid(ds, c.lo), _up_to_grid(ds, c.hi))
    est.reached_fraction = c.reached_fraction
    est.posterior_mean, est.posterior_std = c.mean, c.std
    return est


def _up_to_grid(ds: np.ndarray, x: float | None) -> int | None:
    """The smallest grid d >= x (None for an open end)."""
    if x is None:
        return None
    above = ds[ds >= x - 1e-9]
    return int(above[0]) if len(above) else None


def _threshold(records: list[TrialRecord]) -> float:
    for r in records:
        t = (r.config or {}).get("sweep", {}).get("threshold")
        if t is not None:
            return float(t)
    return 0.9


def task_floor(record: TrialRecord) -> float | None:
    """The floor score of a record's task: the env spec's random score (RL) or chance
    accuracy (bundled datasets); None when unknown."""
    return config_floor(record.config or {})


def config_floor(cfg: dict[str, Any], own: bool = False) -> float | None:
    """`task_floor` from a config (as a dict); a store's config (not `own`) is data: nothing
    it names is imported (rlsub.core.trust), the user's own config may name a plug-in."""
    if cfg.get("dataset"):
        return chance_accuracy(str(cfg["dataset"].get("name", "")))
    env = cfg.get("env")
    if not env:
        return None
    if not own:
        return getattr(env_spec_data(str(env), cfg.get("env_variant")), "random_score", None)
    try:
        return load_env_spec(str(env), cfg.get("env_variant")).random_score
    except Exception:  # a user's or missing spec: no floor known
        return None


def trained_directly(records: Iterable[TrialRecord]) -> int:
    """Parameters trained outside the subspace (0 for a faithful row), from the records."""
    return max((int(r.info.get("trained_directly", 0)) for r in records if not r.direct), default=0)


def estimate_group(
    records: list[TrialRecord],
    rule: str = "stays_above",
    threshold: float | None = None,
    draws: int = DRAWS,
    score: str = "final",
    floor: float | None = None,
) -> dict[str, Any]:
    """Curve, baseline and both estimates for the records of one config hash.

    `floor`: the score a failed trial counts as (default: `task_floor`; failing that,
    the lowest score observed in the group, with a note).
    """
    sub = [r for r in records if not r.direct]
    base = [r for r in records if r.direct]
    ref = sub[0] if sub else records[0]
    thr = _threshold(records) if threshold is None else threshold
    supervised = bool((ref.config or {}).get("dataset"))
    notes: list[str] = []
    known_floor = task_floor(ref) if floor is None else floor
    if known_floor is None:
        seen = [_score(r, score) for r in records if _ok(r, score)]
        floor_used = min(seen) if seen else 0.0
        if any(not _ok(r, score) for r in records):
            notes.append(
                f"no floor score known for {ref.task}: failed trials count as the lowest "
                f"score observed ({floor_used:.4g})"
            )
    else:
        floor_used = float(known_floor)
    points = curve_points(sub, score, floor_used)
    base_ok = [_score(r, score) for r in base if _ok(r, score)]
    base_scores = base_ok + [floor_used] * (len(base) - len(base_ok))
    solved = [r.solved_score for r in records if r.solved_score is not None]
    out: dict[str, Any] = {
        "config_hash": ref.config_hash,
        "name": ref.name,
        "task": ref.task,
        "network": ref.network,
        "algorithm": ref.algorithm,
        "projection": ref.projection,
        "D": max((r.D for r in records), default=0),
        "trained_directly": trained_directly(records),
        "threshold": thr,
        "rule": rule,
        "score": score,
        "floor": floor_used,
        "floor_known": known_floor is not None,
        "seeds": sorted({r.seed for r in sub}),
        "trials": len(records),
        "failed": sum(1 for r in records if not _ok(r, score)),
        "baseline": {
            "mean": float(np.mean(base_scores)) if base_scores else None,
            "std": float(np.std(base_scores, ddof=1)) if len(base_scores) > 1 else None,
            "n": len(base_scores),
            "failed": len(base) - len(base_ok),
        },
        "baseline_scores": base_scores,
        "solved_score": max(solved) if solved else None,
        "curve": [asdict(p) for p in points],
        "d_int90": None,
        "d_int100": None,
        "notes": notes,
    }
    if base_scores:
        bmean = out["baseline"]["mean"]
        rl_line = not supervised and known_floor is not None
        lo = floor_used if rl_line else 0.0
        line = (
            f"random ({lo:.4g}) + {thr:g} x (baseline - random)"
            if rl_line
            else f"{thr:g} x baseline"
            + ("" if supervised else " (no random score known for this env)")
        )
        if bmean <= lo:
            notes.append(f"baseline mean {bmean:.4g} <= {lo:.4g}: the line {line} means little")
        target = lo + thr * (bmean - lo)
        out["d_int90"] = asdict(
            estimate(points, target, "d_int90", rule, base_scores, thr, draws, lo, line, floor_used)
        )
    else:
        notes.append("no baseline (direct) trial: d_int90 not estimated")
    if solved:
        line = f"solved score ({max(solved):g})"
        out["d_int100"] = asdict(
            estimate(
                points, max(solved), "d_int100", rule, draws=draws, line=line, floor=floor_used
            )
        )
    return out


def estimate_all(
    records: Iterable[TrialRecord],
    rule: str = "stays_above",
    threshold: float | None = None,
    draws: int = DRAWS,
) -> list[dict[str, Any]]:
    """`estimate_group` for every config hash in `records` (sorted by task, network, ...)."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        groups[r.config_hash].append(r)
    out = [estimate_group(g, rule, threshold, draws) for g in groups.values()]
    out.sort(key=lambda g: (g["task"], g["network"], g["algorithm"], g["projection"], g["name"]))
    return out
