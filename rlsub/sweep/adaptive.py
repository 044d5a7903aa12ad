"""The adaptive sweep: bisection over the grid for each line, then refinement inside it.

For each target the records make available (d_int90's line, d_int100's solved score), a
bisection over the grid (log-spaced grids make it bisection on log d): a d is first
tried with `coarse_seeds` seeds; when its mean is near the target (within
`NEAR_FRACTION` = 5 % of it, or two standard errors) every seed runs. Bisection stops
when the bracket is one grid step; the top of the final bracket then runs every seed,
and if that changes its decision the bisection goes on. Then `refine` adds d (every
seed) between swept d where the estimator's interval is widest, until hi / lo <=
sweep.precision, the trial budget is spent, or the interval runs past the grid (a
wider grid is the user's choice: it never steps outside it). It assumes a monotone
curve; without any target (no baseline and no solved score) it falls back to the grid.

The functions drive a `strategy.Sweep` (its records, floor, `run`, `grid`).

Imports: analysis.estimate.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from rlsub.analysis.estimate import estimate_group
from rlsub.analysis.group import estimate_of

NEAR_FRACTION = 0.05  # adaptive: a mean within 5 % of the target gets every seed


def coarse_seeds(n_seeds: int) -> int:
    """Adaptive: seeds tried first at a d (a third of them, at least one)."""
    return max(1, math.ceil(n_seeds / 3))


def targets(sw: Any) -> list[tuple[str, float]]:
    """The lines of the estimator (rlsub.analysis.estimate): d_int90's
    floor + threshold x (baseline - floor) for RL (threshold x baseline for supervised
    tasks or an unknown floor), and d_int100's solved score."""
    out = []
    base = sw.scores("direct")
    if base:
        lo = 0.0 if sw.cfg.supervised or sw.floor is None else sw.floor
        thr = sw.cfg.sweep.threshold
        out.append(("d_int90", lo + thr * (float(np.mean(base)) - lo)))
    solved = [r.solved_score for r in sw.records.values() if r.solved_score is not None]
    if solved:
        out.append(("d_int100", float(max(solved))))
    return out


def passes(sw: Any, d: int, target: float, full: bool = False) -> bool:
    """Does the mean at d reach the target? Adds seeds when near it (or when `full`)."""
    seeds = sw.cfg.sweep.seeds
    sw.run([(d, s) for s in (seeds if full else seeds[: coarse_seeds(len(seeds))])])
    s = sw.scores(d)
    if not full and len(s) < len(seeds) and s:
        se = float(np.std(s, ddof=1) / math.sqrt(len(s))) if len(s) > 1 else 0.0
        if abs(np.mean(s) - target) <= max(NEAR_FRACTION * abs(target), 2 * se):
            sw.run([(d, x) for x in seeds])
            s = sw.scores(d)
    return bool(s) and float(np.mean(s)) >= target


def bisect(sw: Any, target: float) -> tuple[int | None, int | None]:
    """Bracket (last d below, first d at/above) the target on the grid."""
    grid = sorted(set(sw.cfg.sweep.d_grid))
    n = len(grid)
    lo, hi = -1, n  # virtual ends: below the grid fails, above it passes
    confirmed: set[int] = set()
    for _ in range(n + 2):
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if passes(sw, grid[mid], target, full=mid in confirmed):
                hi = mid
            else:
                lo = mid
        moved = False
        if 0 <= hi < n and hi not in confirmed:  # d_int itself runs every seed
            confirmed.add(hi)
            if not passes(sw, grid[hi], target, full=True):
                lo, hi, moved = hi, n, True
        if not moved:
            break
    return (grid[lo] if lo >= 0 else None, grid[hi] if hi < n else None)


def search(sw: Any) -> None:
    """The adaptive sweep: the baseline, bisection on the grid for each line, then
    refinement inside the grid (`refine`); why each refinement stopped goes to
    ``sw.stopped``."""
    sw.baseline()
    if not targets(sw):  # learn the solved score from a first trial
        grid = sorted(set(sw.cfg.sweep.d_grid))
        sw.run([(grid[len(grid) // 2], sw.cfg.sweep.seeds[0])])
    lines = targets(sw)
    if not lines:
        print(
            "rlsub: adaptive sweep has no target (no baseline, no solved score): "
            "running the whole grid",
            file=sys.stderr,
        )
        sw.grid()
    for _, target in lines:
        bisect(sw, target)
    for kind, _ in lines:
        sw.stopped[kind] = refine(sw, kind, sw.budget())


def refine(sw: Any, kind: str, budget: int) -> str:
    """Add d (every seed) where the interval of `kind` is widest until its hi / lo <=
    sweep.precision; returns why it stopped. New d stay within the config's grid
    (`next_d`): grid points not yet swept first, then points between swept d. An
    interval that runs past the grid's ends says so; widening the grid is the user's
    choice (sweep.d_grid)."""
    seeds, precision = sw.cfg.sweep.seeds, sw.cfg.sweep.precision
    grid = sorted(set(sw.cfg.sweep.d_grid))
    D = sw.D or max((r.D for r in sw.records.values()), default=0)
    start = sw.ran
    while True:
        g = estimate_group(list(sw.records.values()), draws=1000, floor=sw.floor)
        e = estimate_of(g, kind)
        if e is None or e["headline_side"] in ("none", "beyond") and e["d_int"] is None:
            return "no d reaches the line"
        lo, hi = e["interpolated_interval"] or (None, None)
        if lo is not None and hi is not None and hi <= precision * lo:
            return f"precision reached (hi/lo {hi / lo:.3g} <= {precision:g})"
        if sw.ran - start + len(seeds) > budget:
            return f"trial budget of {budget} spent (hi/lo still above {precision:g})"
        ds = sorted({int(p["d"]) for p in g["curve"]})
        new = next_d(ds, grid, lo, hi, D)
        if new is None:
            ends = [w for w, x in (("below", lo), ("beyond", hi)) if x is None]
            if ends:
                return (
                    f"the interval runs {' and '.join(ends)} the grid and no d is left to "
                    "add inside it (widen sweep.d_grid to look there)"
                )
            return "no integer d left to add inside the interval"
        sw.run([(new, s) for s in seeds])


def next_d(
    ds: list[int], grid: list[int], lo: float | None, hi: float | None, D: int
) -> int | None:
    """The next d to sweep for an interval [lo, hi] of the crossing (None: that end runs
    past the swept d), never outside [grid[0], grid[-1]]. An open end looks outward to
    the next grid point not yet swept; otherwise the widest gap between swept d that
    the interval overlaps is split: at its grid point nearest the gap's geometric middle
    if it holds one, else at that middle. None when no new integer d fits."""
    fits = [x for x in grid if x not in ds and not (D and x > D)]
    if lo is None and [x for x in fits if x < ds[0]]:
        return max(x for x in fits if x < ds[0])
    if hi is None and [x for x in fits if x > ds[-1]]:
        return min(x for x in fits if x > ds[-1])
    a = ds[0] if lo is None else lo
    b = ds[-1] if hi is None else hi
    gaps = [(x, y) for x, y in zip(ds, ds[1:], strict=False) if y >= a and x <= b]
    for x, y in sorted(gaps, key=lambda p: p[1] / p[0], reverse=True):
        mid = math.sqrt(x * y)
        inside = [g for g in fits if x < g < y]
        if inside:
            return min(inside, key=lambda g: abs(math.log(g / mid)))
        new = round(mid)
        if x < new < y and not (D and new > D):
            return new
    return None
