"""Is the estimator's 90 % interval a 90 % interval? Synthetic sweeps with a known crossing.

A synthetic trainer plays a CartPole-like task (random score 20, best 500, line
``20 + 0.9 x (baseline - 20)``) on the grid d = 1, 2, 4, ..., 128. Each simulated sweep
draws a true mean curve (a logistic in log d, or a linear ramp in log d, so the
estimator's logistic is not always the true shape) whose line crossing d* lies between
3 and 40, then draws n seeds at every d and n baseline seeds with one of three kinds of
seed noise:

- ``gauss``: normal noise around the curve, widest half-way up (5-10 % of the range
  at the middle, 1-3 % at the ends);
- ``bimodal``: each seed solves (near 500) or collapses (near the random score), with
  the chance of solving set by the curve, the "solves or collapses" of CartPole DQN;
- ``mix``: each seed is drawn by one rule or the other at random.

Coverage is the share of sweeps whose interval holds d* (an end "below the grid" or
"beyond the grid" counts as open on that side). `rlsub bench calibration` prints the
table; `tests/test_calibration.py` asserts it at n = 5.

Imports: analysis.estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlsub.analysis.estimate import CurvePoint, estimate

GRID = (1, 2, 4, 8, 16, 32, 64, 128)
RANDOM, BEST, THRESHOLD = 20.0, 500.0, 0.9
NOISE_KINDS = ("gauss", "bimodal", "mix")


@dataclass
class Truth:
    """One simulated task: its mean curve's shape and where it crosses the line."""

    shape: str  # "logistic" | "ramp"
    crossing: float  # d* (the truth)
    slope: float  # logistic: k in sigmoid(k (log d - c)); ramp: log-d width

    def p(self, d: np.ndarray) -> np.ndarray:
        """The fraction of the way from random to best at d (so p(d*) = THRESHOLD)."""
        x = np.log(d) - math.log(self.crossing)
        if self.shape == "logistic":
            return 1.0 / (1.0 + np.exp(-(self.slope * x + math.log(THRESHOLD / (1 - THRESHOLD)))))
        return np.clip(THRESHOLD + x / self.slope, 0.0, 1.0)


def draw_truth(rng: np.random.Generator) -> Truth:
    crossing = float(math.exp(rng.uniform(math.log(3.0), math.log(40.0))))
    if rng.random() < 0.5:
        return Truth("logistic", crossing, float(rng.uniform(1.0, 4.0)))
    return Truth("ramp", crossing, float(rng.uniform(1.5, 4.0)))


def draw_scores(p: np.ndarray, n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """n seeds' scores at each of len(p) points: shape (len(p), n)."""
    span = BEST - RANDOM
    mid = 4 * p * (1 - p)  # 1 half-way up, 0 at the ends
    gauss = RANDOM + span * (
        p[:, None]
        + (rng.uniform(0.01, 0.03) + rng.uniform(0.04, 0.07) * mid[:, None])
        * rng.standard_normal((len(p), n))
    )
    solves = rng.random((len(p), n)) < p[:, None]
    bimodal = np.where(solves, BEST, RANDOM) + 0.02 * span * rng.standard_normal((len(p), n))
    if kind == "gauss":
        return gauss
    if kind == "bimodal":
        return bimodal
    return np.where(rng.random((len(p), n)) < 0.5, gauss, bimodal)


def one_sweep(n: int, kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """Simulate one sweep of n seeds and estimate d_int90: truth, interval, point."""
    truth = draw_truth(rng)
    ds = np.array(GRID, dtype=float)
    scores = draw_scores(truth.p(ds), n, kind, rng)
    base = draw_scores(np.ones(1), n, kind, rng)[0]
    points = [
        CurvePoint(
            d=int(d),
            mean=float(s.mean()),
            std=float(s.std(ddof=1)),
            n=n,
            failed=0,
            scores=[float(x) for x in s],
        )
        for d, s in zip(GRID, scores, strict=True)
    ]
    bmean = float(base.mean())
    target = RANDOM + THRESHOLD * (bmean - RANDOM)
    e = estimate(
        points,
        target,
        "d_int90",
        baseline_scores=[float(x) for x in base],
        threshold=THRESHOLD,
        floor=RANDOM,
    )
    lo, hi = e.interpolated_interval or (None, None)
    covered = (lo is None or lo <= truth.crossing) and (hi is None or truth.crossing <= hi)
    point = e.headline
    return {
        "truth": truth.crossing,
        "shape": truth.shape,
        "lo": lo,
        "hi": hi,
        "point": point,
        "covered": bool(covered),
        "reached": e.d_int is not None,
        "point_inside": point is None
        or ((lo is None or lo <= point) and (hi is None or point <= hi)),
    }


def coverage(sweeps: int, n: int, kind: str, seed: int = 0) -> dict[str, Any]:
    """`sweeps` simulated sweeps of n seeds with `kind` noise: coverage and widths."""
    rng = np.random.default_rng([seed, n, NOISE_KINDS.index(kind)])
    runs = [one_sweep(n, kind, rng) for _ in range(sweeps)]
    closed = [r["hi"] / r["lo"] for r in runs if r["lo"] and r["hi"]]
    return {
        "noise": kind,
        "seeds_per_d": n,
        "sweeps": sweeps,
        "coverage": float(np.mean([r["covered"] for r in runs])),
        "closed_fraction": len(closed) / sweeps,
        "median_hi_over_lo": float(np.median(closed)) if closed else None,
        "point_inside_fraction": float(np.mean([r["point_inside"] for r in runs])),
        "reached_fraction": float(np.mean([r["reached"] for r in runs])),
    }


def _cell(args: tuple[int, int, str, int]) -> dict[str, Any]:
    return coverage(*args)


def coverage_table(
    sweeps: int, ns: tuple[int, ...] = (3, 5), seed: int = 0, workers: int = 1
) -> list[dict[str, Any]]:
    """`coverage` for every (n, noise kind), `workers` processes at a time."""
    cells = [(sweeps, n, kind, seed) for n in ns for kind in NOISE_KINDS]
    if workers <= 1:
        return [_cell(c) for c in cells]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_cell, cells)
