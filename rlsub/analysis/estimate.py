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

**The estimates.** ``headline`` (the number a table reports): the median of the
posterior draws of the crossing d (``analysis.interval``: a logistic curve in log d and a
monotone curve linear between grid points, seed noise and the baseline's uncertainty
carried), with ``interpolated_interval``, the same draws' central 90 %. Both come from
one set of draws, so the headline always lies inside its interval, whatever the
shape of the mean curve (the percentile bootstrap over seeds was tried first and covered
the truth only 51-78 % of the time on synthetic sweeps, see ``analysis.calibration``).
``headline_side`` says where the median fell: "in" the swept range, "below" its smallest
d (every d reaches the line: no number, "< smallest d") or "beyond" its largest (no
number: "not reached"). With ``draws=0`` (no posterior) the headline is the
interpolated crossing below.
Beside it, the grid's own numbers: ``interpolated``, the d at which the mean-over-seeds
curve crosses the line, linear in log d between the last grid d below the line and the
first d from which the curve stays at or above it; ``d_int``, that first grid d (the
smallest grid d from which the mean stays at or above the line), with ``interval``: the
interval's ends moved up to grid points. An interval end of None means "beyond the grid"
(hi) or "below the grid" (lo). ``posterior_mean`` / ``posterior_std`` (the original's
"786 +- 66" style) are given only when every posterior draw crosses within the grid.

**Curves that are not monotone.** ``dips``: the grid d after the first crossing whose
mean is below the line again. An inner dip stays in the data (the posterior's curves
are monotone, so it widens the interval; the grid's stays-above value moves past it).
A **collapse**, the largest d swept below the line right after a d at or above it, is
optimiser instability, not the task's dimension: left in, it would void a clear
crossing and make the answer depend on how far the grid reaches. It is left out of
the crossing and reported beside it (``collapse``, and the note); the curve keeps it.

Rules (``rule=``, for the grid's numbers): ``"stays_above"`` (default) as above ("stays
above": a lucky blip above the line below the real crossing does not count, and the first
crossing is reported beside it as ``first_crossing``, with ``monotone`` false when they
differ); ``"original"``: Li et al.'s rule, the smallest d whose mean is strictly above
the line (first crossing).

Imports: experiment (records), envs and data (floors), core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from rlsub.analysis.curve import (
    CurvePoint,
    crossing_indices,
    curve_points,
    finished_ok,
    interpolate,
    score_of,
)
from rlsub.analysis.group import CurvePointDict, EstimateDict, Group
from rlsub.analysis.interval import DRAWS, LEVEL, METHOD, crossing_interval
from rlsub.data.datasets import chance_accuracy
from rlsub.envs.spec import env_spec_data, load_env_spec
from rlsub.experiment.record import TrialRecord

RULES = ("stays_above", "original")
INTERVAL_METHOD = METHOD  # how `interpolated_interval` is computed, in words (footnotes)


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
    headline: float | None = None  # the reported d: the posterior median (see the module)
    headline_side: str = "none"  # "in" | "below" | "beyond" the swept range | "none"
    dips: list[int] = field(default_factory=list)  # d past the first crossing, below the line
    collapse: int | None = None  # the largest d, below the line after a d above it: left out
    line_floor: float = 0.0  # the line's floor (random score; 0 for supervised), for redraws
    score_floor: float = 0.0  # what failed trials count as, the bottom of the scale
    threshold: float | None = None  # set when the line moves with the baseline (d_int90)


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
    collapse = None  # the largest d below the line right after one at or above it
    if len(pts) >= 3 and pts[-1].mean < target <= pts[-2].mean:
        collapse, pts = pts[-1], pts[:-1]
    ds = np.array([p.d for p in pts])
    means = np.array([[p.mean for p in pts]])
    idx, first = crossing_indices(means, np.array([target]), rule)
    i, f = int(idx[0]), int(first[0])
    interp = float(interpolate(ds, means, np.array([target]), idx)[0])
    dips = (
        [] if f < 0 else [int(d) for d, m in zip(ds[f:], means[0, f:], strict=True) if m < target]
    )
    if i < 0:
        note = f"not reached within the grid (> {int(ds[-1])})"
        if f >= 0:  # crossed, then the largest d fell below the line
            note = (
                f"the mean crosses at d = {int(ds[f])} and is below the line again at the "
                f"largest d swept ({_list(dips)}): no grid d stays above it"
            )
        d_int: int | None = None
        interpolated: float | None = None
    elif i == 0:
        note = f"<= {int(ds[0])} (every d reaches the target)"
        d_int, interpolated = int(ds[0]), None
    else:
        note = f"crossing between {int(ds[i - 1])} and {int(ds[i])}"
        if dips:
            note += f"; not monotone: below the line again at d = {_list(dips)}"
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
        dips=dips,
    )
    if collapse is not None:
        est.collapse = collapse.d
        est.note += (
            f"; the largest d swept, {collapse.d}, falls below the line again (mean "
            f"{collapse.mean:.4g}, {collapse.n} seeds): a collapse, left out of the crossing "
            "and reported here"
        )
    if d_int is not None:  # without a posterior, the grid's interpolation stands in
        est.headline = interpolated if interpolated is not None else float(d_int)
        est.headline_side = "in" if interpolated is not None else "below"
    elif i < 0:
        est.headline_side = "beyond"
    est.line_floor = floor
    est.score_floor = floor if score_floor is None else score_floor
    est.threshold = threshold if baseline_scores else None
    if draws <= 0:
        return est
    c = crossing_interval(
        [p.d for p in pts],
        [p.scores for p in pts],
        floor=est.score_floor,
        target=target,
        baseline_scores=baseline_scores if est.threshold is not None else None,
        threshold=est.threshold,
        line_floor=floor,
        draws=draws,
    )
    est.headline, est.headline_side = c.median, c.median_side
    est.interpolated_interval = (c.lo, c.hi)
    est.interval = (int(ds[0]) if c.below else _up_to_grid(ds, c.lo), _up_to_grid(ds, c.hi))
    est.reached_fraction = c.reached_fraction
    est.posterior_mean, est.posterior_std = c.mean, c.std
    return est


def as_dict(e: Estimate) -> EstimateDict:
    """The estimate as data, as a group holds it."""
    return cast(EstimateDict, asdict(e))


def _list(ds: list[int]) -> str:
    return ", ".join(str(d) for d in ds)


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
        return getattr(env_spec_data(env, cfg.get("env_variant")), "random_score", None)
    try:
        return load_env_spec(env, cfg.get("env_variant")).random_score
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
) -> Group:
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
    measured = next((r.info["measured_floor"] for r in records if "measured_floor" in r.info), None)
    if known_floor is None and measured is not None:  # kept with the store by the sweep
        known_floor = float(measured["mean"])
        notes.append(
            f"random score measured for this store: {known_floor:.4g} +- "
            f"{float(measured.get('se', 0.0)):.2g} (standard error) over "
            f"{measured.get('episodes')} episodes of random actions"
        )
    if known_floor is None:
        seen = [score_of(r, score) for r in records if finished_ok(r, score)]
        floor_used = min(seen) if seen else 0.0
        if any(not finished_ok(r, score) for r in records):
            notes.append(
                f"no floor score known for {ref.task}: failed trials count as the lowest "
                f"score observed ({floor_used:.4g})"
            )
    else:
        floor_used = float(known_floor)
    points = curve_points(sub, score, floor_used)
    base_ok = [score_of(r, score) for r in base if finished_ok(r, score)]
    base_scores = base_ok + [floor_used] * (len(base) - len(base_ok))
    solved = [r.solved_score for r in records if r.solved_score is not None]
    out: Group = {
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
        "failed": sum(1 for r in records if not finished_ok(r, score)),
        "baseline": {
            "mean": float(np.mean(base_scores)) if base_scores else None,
            "std": float(np.std(base_scores, ddof=1)) if len(base_scores) > 1 else None,
            "n": len(base_scores),
            "failed": len(base) - len(base_ok),
        },
        "baseline_scores": base_scores,
        "solved_score": max(solved) if solved else None,
        "curve": [cast(CurvePointDict, asdict(p)) for p in points],
        "d_int90": None,
        "d_int100": None,
        "notes": notes,
    }
    if base_scores:
        bmean = float(np.mean(base_scores))
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
        elif not supervised and not rl_line:
            notes.append(
                "no random score known for this env: the line is 0.9 x baseline, which "
                "means little where returns can be negative (rlsub sweep on this store "
                "measures one)"
            )
        target = lo + thr * (bmean - lo)
        out["d_int90"] = as_dict(
            estimate(points, target, "d_int90", rule, base_scores, thr, draws, lo, line, floor_used)
        )
    else:
        notes.append("no baseline (direct) trial: d_int90 not estimated")
    if solved:
        line = f"solved score ({max(solved):g})"
        out["d_int100"] = as_dict(
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
) -> list[Group]:
    """`estimate_group` for every config hash in `records` (sorted by task, network, ...)."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        groups[r.config_hash].append(r)
    out = [estimate_group(g, rule, threshold, draws) for g in groups.values()]
    out.sort(key=lambda g: (g["task"], g["network"], g["algorithm"], g["projection"], g["name"]))
    return out
