"""The interval around a crossing d: posterior draws under two curve shapes.

Why not the percentile bootstrap over seeds: with 3-5 seeds per d a resample takes few
distinct values and under-states the spread, and a smooth curve between grid points is
assumed without being said. On synthetic sweeps with a known crossing
(``analysis.calibration``, `rlsub bench calibration`) its nominal 90 % interval covered
the truth 51-78 % of the time (200 sweeps per cell; docs/RESULTS.md). This module's interval does reach its
nominal coverage there. Every score is put on one scale, ``u = (score - floor) /
(top - floor)`` (floor: what a failed trial counts as; top: the baseline mean, or the
best mean for a fixed target), and the line moves with the baseline (each draw draws
the baseline mean from a normal with its standard error). Half of the draws come from
each of two models of the mean curve, because the data cannot say where between two
grid points a curve crosses; the shape is an assumption, so both are kept:

- **logistic**: ``mu(d) = A sigmoid(k (log d - log d*) + logit(line / A))``, a grid
  posterior over the crossing d*, the slope k and the asymptote A (flat priors: log d*
  over the swept range widened by e either side, log k in [log 0.5, log 20], A near
  top), found on a coarse grid and resolved on a fine one. A seed's score is either
  normal around mu(d) (variance ``a + b m (1 - m)``, m the d's observed mean, each d's
  own variance integrated out around it with four pseudo-seeds: a Student t), or
  bimodal: it solves (near A) with chance mu / A or collapses (near 0), the "solves or
  collapses" of CartPole DQN; the noise parameters and the rule are integrated out.
- **piecewise**: each d's mean is drawn from its own Student-t posterior (its variance
  pooled with every d's), the draws are made non-decreasing in d, and the crossing is
  linear in log d between the grid points that bracket the line.

The interval is the pooled draws' 5th and 95th percentiles. An end past the largest d
swept is "beyond the grid" (None), an end below the smallest d "below the grid" (None):
the curve is not extrapolated into a number. Deterministic (fixed seeds), about 0.2 s a
call.

Imports: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVEL = 0.9  # a central 90 % interval
DRAWS = 4000
SEED = 0
METHOD = (
    "posterior draws, half under a logistic curve in log d, half under a monotone curve "
    "linear in log d between grid points; seed noise normal or bimodal, integrated out; "
    "the baseline's standard error carried into the line; central 90 %"
)

_ASYM = np.array([0.96, 1.0, 1.06])
_NOISE_A = np.array([1e-4, 4e-4, 1.6e-3, 6.4e-3, 2.5e-2])
_NOISE_B = np.array([0.0, 0.005, 0.015, 0.04, 0.1, 0.3])
_TAU = np.array([0.01, 0.03]) ** 2
_NU0 = 4.0
_FINE_X, _FINE_K = 120, 40  # the fine grid's size in log d* and log k


def _log_likelihood(mu: np.ndarray, asym: np.ndarray, u: np.ndarray, seen: np.ndarray) -> Any:
    """log p(scores | curve) for every curve (rows of `mu`, shape (G, D)), up to a constant,
    the seed-noise parameters integrated out over their grid (flat prior)."""
    n = seen.sum(axis=1).astype(float)  # seeds per d
    ubar = np.where(seen, u, 0.0).sum(axis=1) / np.maximum(n, 1)
    ss = np.where(seen, (u - ubar[:, None]) ** 2, 0.0).sum(axis=1)
    # the spread rule: normal around mu with variance a + b m (1 - m), m the d's observed
    # mean (not mu: a variance that shrank with mu would pull every curve towards 0 and 1
    # wherever the seeds happen to agree)
    m = np.clip(ubar, 0.0, 1.0)
    var = _NOISE_A[:, None, None] + _NOISE_B[None, :, None] * (m * (1 - m))[None, None]
    var = var.reshape(-1, 1, len(n))  # (noise, 1, D)
    # each d's own variance drawn around it (scaled inverse chi-square, _NU0 pseudo-seeds)
    # and integrated out: a Student-t likelihood, so one d's spread is never over-trusted
    nu_s = _NU0 * var
    log_g = (
        0.5 * _NU0 * np.log(nu_s) - 0.5 * (_NU0 + n) * np.log(nu_s + ss + n * (ubar - mu) ** 2)
    ).sum(axis=-1)
    # the bimodal rule: a seed solves (near A) with chance mu / A, else collapses (near 0)
    q = np.clip(mu / asym[:, None], 1e-6, 1 - 1e-6)[:, :, None]  # (G, D, 1)
    tau = _TAU[:, None, None, None]
    obs, top = u[None, None], asym[None, :, None, None]
    per_seed = np.logaddexp(
        np.log(q) - 0.5 * (np.log(tau) + (obs - top) ** 2 / tau),
        np.log(1 - q) - 0.5 * (np.log(tau) + obs**2 / tau),
    )  # (tau, G, D, n)
    log_b = np.where(seen, per_seed, 0.0).sum(axis=(-2, -1))
    every = np.concatenate([log_g, log_b], axis=0)  # (noise, G)
    peak = every.max(axis=0)  # per curve: a curve far below the best keeps a finite value
    return np.log(np.exp(every - peak).sum(axis=0)) + peak


def _posterior(
    x: np.ndarray,
    log_k: np.ndarray,
    asym: np.ndarray,
    shift: np.ndarray,
    log_d: np.ndarray,
    u: np.ndarray,
    seen: np.ndarray,
) -> Any:
    """Posterior weights (flat prior) on the (x*, log k, A) grid, shape (X, K, A)."""
    z = np.exp(log_k)[None, :, None, None] * (log_d - x[:, None, None, None])
    sig = 1.0 / (1.0 + np.exp(-(z + shift[None, None, :, None])))
    mu = asym[None, None, :, None] * sig
    shape = mu.shape[:3]
    ll = _log_likelihood(mu.reshape(-1, len(log_d)), np.broadcast_to(asym, shape).ravel(), u, seen)
    w = np.exp(ll - ll.max())
    return (w / w.sum()).reshape(shape)


def _piecewise(
    log_d: np.ndarray, u: np.ndarray, seen: np.ndarray, line_u: np.ndarray, rng: Any
) -> Any:
    """Crossings under the shape-free model: each d's true mean drawn from its own
    posterior (Student t around the d's mean; its variance pooled over every d with
    _NU0 pseudo-seeds, so a d whose seeds all agree is not taken as exact), the curve
    made monotone and linear in log d between grid points."""
    n = seen.sum(axis=1).astype(float)
    ubar = np.where(seen, u, 0.0).sum(axis=1) / np.maximum(n, 1)
    ss = np.where(seen, (u - ubar[:, None]) ** 2, 0.0).sum(axis=1)
    pooled = max(float(ss.sum() / max((n - 1).sum(), 1.0)), 1e-4)
    df = np.maximum(n - 1, 0) + _NU0
    scale = np.sqrt((ss + _NU0 * pooled) / df / np.maximum(n, 1))
    m = ubar + scale * rng.standard_t(df, size=(len(line_u), len(n)))  # (draws, D)
    # the true curve does not fall as d grows: average the running max from the left
    # and the running min from the right, a monotone curve through the draws
    m = 0.5 * (
        np.maximum.accumulate(m, axis=1) + np.flip(np.minimum.accumulate(np.flip(m, 1), 1), 1)
    )
    above = m >= line_u[:, None]
    idx = np.where(above.any(axis=1), above.argmax(axis=1), len(n))  # len(n): never
    out = np.full(len(line_u), np.inf)
    out[idx == 0] = 0.0  # at or above the line from the smallest d: below the grid
    inner = (idx > 0) & (idx < len(n))
    i, rows = idx[inner], np.nonzero(inner)[0]
    m_lo, m_hi = m[rows, i - 1], m[rows, i]
    frac = np.clip((line_u[rows] - m_lo) / np.maximum(m_hi - m_lo, 1e-12), 0.0, 1.0)
    out[rows] = np.exp(log_d[i - 1] + frac * (log_d[i] - log_d[i - 1]))
    return out


@dataclass
class Crossing:
    """The posterior of a crossing d: its median and central interval (None: off the grid)."""

    median: float | None
    lo: float | None
    hi: float | None
    reached_fraction: float  # share of draws crossing within the swept range
    mean: float | None  # over the draws, only when every draw crosses within the range
    std: float | None
    below: bool = False  # lo is None because the interval runs below the smallest d
    # where the median lies: "in" the swept range, "below" the smallest d or "beyond"
    # the largest (then `median` is None and no number is given)
    median_side: str = "in"
    draws: Any = field(default=None, repr=False)  # every draw of the crossing d (inf: never)


def crossing_interval(
    ds: Sequence[int],
    scores: Sequence[Sequence[float]],
    floor: float,
    target: float,
    baseline_scores: Sequence[float] | None = None,
    threshold: float | None = None,
    line_floor: float = 0.0,
    level: float = LEVEL,
    draws: int = DRAWS,
    seed: int = SEED,
) -> Crossing:
    """Posterior interval of the d at which the mean score crosses the line.

    `scores[j]`: every seed's score at `ds[j]` (failed trials already at `floor`).
    With `baseline_scores` and `threshold` the line is
    ``line_floor + threshold x (baseline mean - line_floor)`` and moves with the baseline;
    otherwise it is `target`.
    """
    d_arr = np.asarray(ds, dtype=float)
    keep = [j for j in range(len(d_arr)) if len(scores[j]) > 0]
    d_arr = d_arr[keep]
    groups = [np.asarray(scores[j], dtype=float) for j in keep]
    none = Crossing(None, None, None, 0.0, None, None, median_side="none")
    if len(d_arr) == 0:
        return none
    means = np.array([g.mean() for g in groups])
    base = np.asarray(baseline_scores if baseline_scores is not None else [], dtype=float)
    with_base = len(base) > 0 and threshold is not None
    top = float(base.mean()) if with_base else max(float(means.max()), target)
    scale = top - floor
    if scale <= 0:
        return none
    n_max = max(len(g) for g in groups)
    u = np.full((len(groups), n_max), np.nan)
    for j, g in enumerate(groups):
        u[j, : len(g)] = (g - floor) / scale
    seen = ~np.isnan(u)
    u = np.where(seen, u, 0.0)

    # the line at the baseline's mean (or the fixed target), on the u scale
    thr = float(threshold or 0.0)
    line0 = line_floor + thr * (base.mean() - line_floor) if with_base else target
    l0 = (float(line0) - floor) / scale
    if l0 <= 0.0:  # the line is at or below the floor: every d is above it
        return Crossing(None, None, float(d_arr[0]), 1.0, None, None, True, "below")
    asym = np.unique(np.concatenate([_ASYM, l0 * np.array([1.02, 1.06])]))
    asym = asym[asym > l0 * 1.005]
    # curves are named by where they cross l0 (x = log d*), their slope k and asymptote A;
    # a coarse grid finds where the posterior lives, a fine one there resolves it
    log_d = np.log(d_arr)
    shift = np.log(l0 / asym) - np.log1p(-l0 / asym)  # logit(l0 / A): mu(d*) = l0
    x = np.arange(log_d[0] - 1.0, log_d[-1] + 1.5, 0.05)
    log_k = np.linspace(np.log(0.5), np.log(20.0), 21)
    w = _posterior(x, log_k, asym, shift, log_d, u, seen)
    keep = w > 1e-7 * w.max()
    xs, ks = np.nonzero(keep.any(axis=2))
    step_k = log_k[1] - log_k[0]
    x = np.linspace(x[xs.min()] - 0.05, x[xs.max()] + 0.05, _FINE_X)
    log_k = np.linspace(log_k[ks.min()] - step_k, log_k[ks.max()] + step_k, _FINE_K)
    w = _posterior(x, log_k, asym, shift, log_d, u, seen)
    k = np.exp(log_k)
    shape = w.shape
    w = w.ravel()
    x_step = x[1] - x[0]

    rng = np.random.default_rng(seed)
    if with_base:
        se = float(base.std(ddof=1) / np.sqrt(len(base))) if len(base) > 1 else 0.0
        line = line_floor + thr * (base.mean() + se * rng.standard_normal(draws) - line_floor)
    else:
        line = np.full(draws, float(target))
    line_u = (line - floor) / scale
    half = draws // 2
    # the logistic model: half of the draws
    xi, ki, ai = np.unravel_index(rng.choice(w.size, size=half, p=w), shape)
    x_draw = x[xi] + x_step * (rng.random(half) - 0.5)  # spread within the grid cell
    ratio = line_u[:half] / asym[ai]  # the drawn line as a share of A
    with np.errstate(divide="ignore", invalid="ignore"):
        logit = np.log(ratio) - np.log1p(-ratio)
        logistic = np.exp(x_draw + (logit - shift[ai]) / k[ki])
    logistic = np.where(ratio >= 1.0, np.inf, np.where(ratio <= 0.0, 0.0, logistic))
    # the piecewise model: the other half
    cross = np.concatenate([logistic, _piecewise(log_d, u, seen, line_u[half:], rng)])
    tail = (1.0 - level) / 2.0
    d_min, d_max = float(d_arr[0]), float(d_arr[-1])
    finite = np.minimum(cross, d_max * 1e6)  # "never" as a d far past the grid
    lo, med, hi = np.quantile(finite, [tail, 0.5, 1.0 - tail])
    inside = cross <= d_max
    all_in = bool(inside.all()) and bool((cross >= d_min).all())
    return Crossing(
        median=float(med) if d_min <= med <= d_max else None,
        lo=float(lo) if d_min <= lo <= d_max else None,
        hi=float(hi) if hi <= d_max else None,
        reached_fraction=float(inside.mean()),
        mean=float(cross.mean()) if all_in else None,
        std=float(cross.std(ddof=1)) if all_in else None,
        below=bool(lo < d_min),
        median_side="below" if med < d_min else "beyond" if med > d_max else "in",
        draws=cross,
    )
