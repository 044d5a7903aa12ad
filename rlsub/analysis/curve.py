"""The mean-over-seeds curve of a sweep and where it crosses a line on the grid.

`curve_points` turns trial records into one point per d (failed trials at the task's
floor score); `crossing_indices` and `interpolate` find, for many curves at once, the
grid index where a curve crosses its line (the stays-above rule or Li et al.'s first
crossing) and the crossing linear in log d between the grid points around it. The
estimator (`analysis.estimate`) builds its grid numbers from these.

Imports: experiment (records).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlsub.experiment.record import TrialRecord


@dataclass
class CurvePoint:
    """Scores at one d: finished trials' scores, and failed ones at the floor score."""

    d: int
    mean: float
    std: float
    n: int
    failed: int
    scores: list[float] = field(default_factory=list)


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
        ok = [score_of(r, score) for r in by_d[d] if finished_ok(r, score)]
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


def score_of(r: TrialRecord, score: str) -> float:
    return float(r.best_eval_mean if score == "best" else r.final_eval_mean)


def finished_ok(r: TrialRecord, score: str) -> bool:
    return r.status == "done" and math.isfinite(score_of(r, score))


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
