"""Intrinsic-dimension estimates from trial records (pure functions) and `rlsub dint`.

Records are grouped by config hash (one experiment: task, network, algorithm,
projection and hyperparameters); the direct baseline of a group is its
``direct`` records (same hash). Failed trials are left out of every mean and
counted. For each group:

- ``d_int90``: smallest d whose mean final score reaches ``threshold x
  baseline mean`` (threshold from the config's sweep section, 0.9 by default);
- ``d_int100``: smallest d whose mean final score reaches the env's solved
  score, when the records carry one (RL).

Rules (``rule=``):

- ``"bootstrap"`` (default): a d reaches the target when its mean is ``>=``
  the target, and d_int is the smallest grid d *from which the mean curve stays
  at or above the target for every larger d* ("stays above"). A lucky blip
  above the target below the real crossing therefore does not count; a dip
  below the target after the crossing moves d_int past the dip. The first
  crossing is reported beside it (``first_crossing``), with ``monotone`` false
  when the two differ.
- ``"original"``: Li et al.'s rule exactly: the smallest d whose mean over runs
  is *strictly above* the target (first crossing).

Each estimate carries:

- ``interpolated``: the crossing of the mean curve on log d, linear between
  the last d below the target and d_int;
- ``interval``, ``interpolated_interval``: bootstrap percentile intervals
  (5th to 95th percentile, i.e. 90 %) from `BOOTSTRAP_SAMPLES` resamples of the
  seeds, drawn with replacement within each d and within the baseline, with
  the estimate recomputed on each;
- ``bootstrap_mean``, ``bootstrap_std``: of the interpolated crossing over the
  resamples that reach the target (the original's "786 +- 66" style).

Edge cases: when no d reaches the target, ``d_int`` is None with the note
"not reached within grid, > MAX"; when every d does, ``d_int`` is the
smallest d with the note "<= MIN" (an upper bound). An interval end that is
not reached within the grid is None ("> max d").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rlsub.experiment.record import TrialRecord

BOOTSTRAP_SAMPLES = 2000
PERCENTILES = (5.0, 95.0)  # a 90 % percentile interval
BOOTSTRAP_SEED = 0  # fixed, so `rlsub dint` prints the same numbers every time
RULES = ("bootstrap", "original")


@dataclass
class CurvePoint:
    """Scores at one d (done trials only; failed ones counted)."""

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
    bootstrap_mean: float | None = None
    bootstrap_std: float | None = None
    reached_fraction: float | None = None  # share of resamples reaching the target
    percentiles: tuple[float, float] = PERCENTILES


def curve_points(records: Iterable[TrialRecord], score: str = "final") -> list[CurvePoint]:
    """Mean score per d over the subspace (non-direct) records, sorted by d."""
    by_d: dict[int, list[TrialRecord]] = defaultdict(list)
    for r in records:
        if not r.direct:
            by_d[int(r.d)].append(r)
    out = []
    for d in sorted(by_d):
        scores = [_score(r, score) for r in by_d[d] if _ok(r, score)]
        failed = len(by_d[d]) - len(scores)
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
    means: np.ndarray, targets: np.ndarray, rule: str = "bootstrap"
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


def _pct(values: np.ndarray) -> tuple[float | None, float | None]:
    lo, hi = np.percentile(values, PERCENTILES, method="inverted_cdf")
    return (None if not np.isfinite(lo) else float(lo), None if not np.isfinite(hi) else float(hi))


def estimate(
    points: list[CurvePoint],
    target: float,
    kind: str,
    rule: str = "bootstrap",
    baseline_scores: list[float] | None = None,
    threshold: float | None = None,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """d_int for one target with a bootstrap interval.

    With `baseline_scores` and `threshold` (d_int90) each resample also redraws
    the baseline seeds and uses ``threshold x resampled baseline mean`` as its
    target; otherwise (d_int100) the target is fixed.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    pts = [p for p in points if p.n > 0]
    if not pts:
        return Estimate(kind, rule, target, None, "no finished trials")
    ds = np.array([p.d for p in pts])
    means = np.array([[p.mean for p in pts]])
    idx, first = crossing_indices(means, np.array([target]), rule)
    i, f = int(idx[0]), int(first[0])
    interp = float(interpolate(ds, means, np.array([target]), idx)[0])
    if i < 0:
        note = f"not reached within grid, > {int(ds[-1])}"
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
    )
    if n_boot <= 0:
        return est
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(pts)))
    for j, p in enumerate(pts):
        s = np.asarray(p.scores, dtype=float)
        boot[:, j] = s[rng.integers(0, len(s), size=(n_boot, len(s)))].mean(axis=1)
    if baseline_scores and threshold is not None:
        b = np.asarray(baseline_scores, dtype=float)
        targets = threshold * b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    else:
        targets = np.full(n_boot, float(target))
    b_idx, _ = crossing_indices(boot, targets, rule)
    b_d = np.where(b_idx >= 0, ds[np.maximum(b_idx, 0)].astype(float), np.inf)
    b_interp = interpolate(ds, boot, targets, b_idx)
    lo, hi = _pct(b_d)
    est.interval = (None if lo is None else int(lo), None if hi is None else int(hi))
    est.interpolated_interval = _pct(b_interp)
    finite = b_interp[np.isfinite(b_interp)]
    est.reached_fraction = float(len(finite) / n_boot)
    if len(finite):
        est.bootstrap_mean = float(finite.mean())
        est.bootstrap_std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    return est


def _threshold(records: list[TrialRecord]) -> float:
    for r in records:
        t = (r.config or {}).get("sweep", {}).get("threshold")
        if t is not None:
            return float(t)
    return 0.9


def estimate_group(
    records: list[TrialRecord],
    rule: str = "bootstrap",
    threshold: float | None = None,
    n_boot: int = BOOTSTRAP_SAMPLES,
    score: str = "final",
) -> dict[str, Any]:
    """Curve, baseline and both estimates for the records of one config hash."""
    sub = [r for r in records if not r.direct]
    base = [r for r in records if r.direct]
    ref = sub[0] if sub else records[0]
    thr = _threshold(records) if threshold is None else threshold
    points = curve_points(sub, score)
    base_scores = [_score(r, score) for r in base if _ok(r, score)]
    solved = [r.solved_score for r in records if r.solved_score is not None]
    out: dict[str, Any] = {
        "config_hash": ref.config_hash,
        "name": ref.name,
        "task": ref.task,
        "network": ref.network,
        "algorithm": ref.algorithm,
        "projection": ref.projection,
        "D": max((r.D for r in records), default=0),
        "threshold": thr,
        "rule": rule,
        "score": score,
        "trials": len(records),
        "failed": sum(1 for r in records if r.status != "done"),
        "baseline": {
            "mean": float(np.mean(base_scores)) if base_scores else None,
            "std": float(np.std(base_scores, ddof=1)) if len(base_scores) > 1 else None,
            "n": len(base_scores),
            "failed": len(base) - len(base_scores),
        },
        "solved_score": max(solved) if solved else None,
        "curve": [asdict(p) for p in points],
        "d_int90": None,
        "d_int100": None,
        "notes": [],
    }
    if base_scores:
        bmean = out["baseline"]["mean"]
        if bmean <= 0:
            out["notes"].append(
                f"baseline mean {bmean:.4g} <= 0: {thr} x baseline is not a meaningful target"
            )
        out["d_int90"] = asdict(
            estimate(points, thr * bmean, "d_int90", rule, base_scores, thr, n_boot)
        )
    else:
        out["notes"].append("no finished baseline (direct) trial: d_int90 not estimated")
    if solved:
        out["d_int100"] = asdict(estimate(points, max(solved), "d_int100", rule, n_boot=n_boot))
    return out


def estimate_all(
    records: Iterable[TrialRecord],
    rule: str = "bootstrap",
    threshold: float | None = None,
    n_boot: int = BOOTSTRAP_SAMPLES,
) -> list[dict[str, Any]]:
    """`estimate_group` for every config hash in `records` (sorted by task, network, ...)."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        groups[r.config_hash].append(r)
    out = [estimate_group(g, rule, threshold, n_boot) for g in groups.values()]
    out.sort(key=lambda g: (g["task"], g["network"], g["algorithm"], g["projection"], g["name"]))
    return out


# ---------------------------------------------------------------- text output
def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def format_estimate(e: dict[str, Any] | None) -> str:
    """One line: d_int, interval, interpolated crossing, notes."""
    if e is None:
        return "-"
    lo, hi = e["interval"] or (None, None)
    ilo, ihi = e["interpolated_interval"] or (None, None)
    d_int = "none" if e["d_int"] is None else str(e["d_int"])
    p = f"{e['percentiles'][0]:g}-{e['percentiles'][1]:g}%"
    text = (
        f"{d_int}  [{_fmt(lo)}, {'>max' if hi is None else _fmt(hi)}] ({p}), "
        f"interpolated {_fmt(e['interpolated'])} "
        f"[{_fmt(ilo)}, {'>max' if ihi is None else _fmt(ihi)}]"
    )
    if e["bootstrap_mean"] is not None:
        text += f", bootstrap {e['bootstrap_mean']:.4g} +- {_fmt(e['bootstrap_std'], 3)}"
    text += f"; {e['note']}"
    if not e["monotone"]:
        text += f" (non-monotone: first crossing at {e['first_crossing']})"
    return text


def format_group(g: dict[str, Any]) -> str:
    """Human-readable summary of one `estimate_group` result."""
    b = g["baseline"]
    lines = [
        f"{g['name']} [{g['config_hash']}]: {g['task']} / {g['network']} / {g['algorithm']} / "
        f"{g['projection']}  D={g['D']:,}  rule={g['rule']}",
        f"  baseline {_fmt(b['mean'])} +- {_fmt(b['std'], 3)} (n={b['n']}, failed {b['failed']})"
        + (f"   solved score {g['solved_score']:g}" if g["solved_score"] is not None else ""),
        "  d        mean       std    n  failed",
    ]
    for p in g["curve"]:
        lines.append(
            f"  {p['d']:<8d} {_fmt(p['mean']):>9} {_fmt(p['std'], 3):>9} {p['n']:>4} {p['failed']:>7}"
        )
    lines.append(f"  d_int90  (>= {g['threshold']:g} x baseline): {format_estimate(g['d_int90'])}")
    lines.append(f"  d_int100 (solved score): {format_estimate(g['d_int100'])}")
    lines += [f"  note: {n}" for n in g["notes"]]
    lines.append(f"  trials {g['trials']}, failed {g['failed']} (left out of the means)")
    return "\n".join(lines)
