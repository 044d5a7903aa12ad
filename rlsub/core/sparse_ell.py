"""theta0 + P z and P^T g for one z on the CPU, for the sparse projection (numba kernels).

The sparse P of rlsub.core.projections has D short rows (a few non-zeros each) and
d long columns, every entry +-1 times its column's scale 1/||column||. For a
single z (supervised and policy-gradient steps, replayed policies) the product
is written row by row as gathers from a table of 2d signed, scaled values and
SINKS zeros

    tab = [z * scale, -z * scale, 0, ..., 0]   (a few KiB: stays in L1)
    theta[i] = theta0[i] + ((tab[ell[0, i]] + tab[ell[1, i]]) + (tab[ell[2, i]] + tab[ell[3, i]]))

("ELLPACK" storage: the first W = 4 entries of every row, in the order they were
drawn, padded with the index of a zero; codes are uint16 while 2d + SINKS fits).
A row's entries past the fourth (rows of the small layers are longer) are then
added one after another in draw order. They are kept by class: `rows` lists the
rows with more than W entries grouped by (segment, count past W), `codes` their
entries, and each class is a run of rows with the same count, so the loop over
a row's entries does not mispredict (0.09 ms where one list of (row, code) pairs
took 0.24 ms, MNIST FC at d = 1,000: 152,764 such entries). The segments are the
layers P was drawn by. The sums and their order are those of the first version
of this kernel, bit for bit (tests/test_projections.py).

The transpose P^T g (the backward) walks the same storage: g[i] is added into
acc[code] for every entry of row i (tables of 2d + SINKS sums in L1, one per ELL
slot), then grad z = scale * (acc[:d] - acc[d:2d]). The padding takes the SINKS zeros in
turn (row i pads with zero i mod SINKS), so that consecutive rows do not add
into one sum, a chain of dependent additions that cost 2.4x. The order of the
sums is not torch's CSR product's, so the gradient agrees with it to float
rounding. `rlsub bench supervised` measures both kernels inside a training step.

Duplicated (row, column) draws are kept as separate entries, so they sum to
the same P as the coalesced CSR matrices that the other paths use; results
agree with them to float rounding.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ELL_WIDTH = 4
SINKS = 8  # zeros that the ELL padding takes in turn (see the module docstring)


@dataclass(frozen=True)
class EllMatrix:
    """P in ELLPACK form plus the rows' entries past the ELL width; see the module docstring."""

    D: int
    d: int
    scale: np.ndarray  # (d,) float32: 1 / column norm
    ell: np.ndarray  # (W, D) codes into tab: j (+), d + j (-), 2d + (i mod SINKS) (padding)
    bounds: np.ndarray  # (S + 1,) int64: segment s holds rows bounds[s] .. bounds[s + 1] - 1
    rows: np.ndarray  # (R,) int32: the rows with more than W entries, grouped by class
    codes: np.ndarray  # their entries past the W-th in draw order, rows in the order of `rows`
    classes: np.ndarray  # (C + 1, 4) int64: segment, count past W, first in rows, first in
    # codes; then a sentinel (S, 0, R, len(codes))

    @property
    def nbytes(self) -> int:
        arrays = (self.scale, self.ell, self.bounds, self.rows, self.codes, self.classes)
        return sum(a.nbytes for a in arrays)


def build(
    rows: np.ndarray,
    cols: np.ndarray,
    negative: np.ndarray,
    scale: np.ndarray,
    D: int,
    sizes: Sequence[int] | None = None,
) -> EllMatrix:
    """From the entries (row, column, sign) of P in draw order, duplicates allowed, the
    column scales and the segment sizes (layers; None: one segment of D rows)."""
    d = len(scale)
    dtype = np.uint16 if 2 * d + SINKS <= np.iinfo(np.uint16).max else np.int32
    codes = (cols + d * negative.astype(np.int64)).astype(dtype)
    order = np.argsort(rows, kind="stable")
    rows, codes = rows[order].astype(np.int64), codes[order]
    start = np.searchsorted(rows, np.arange(D + 1), side="left")  # row i: start[i] .. start[i+1]
    rank = np.arange(len(rows)) - start[rows]
    ell = np.empty((ELL_WIDTH, D), dtype=dtype)
    ell[:] = 2 * d + np.arange(D) % SINKS
    first = rank < ELL_WIDTH
    ell[rank[first], rows[first]] = codes[first]
    bounds = np.cumsum([0, *(sizes if sizes else [D])]).astype(np.int64)
    count = np.diff(start) - ELL_WIDTH  # entries past the ELL block
    seg = np.searchsorted(bounds, np.arange(D), side="right") - 1
    long = np.nonzero(count > 0)[0]
    long = long[np.lexsort((long, count[long], seg[long]))]  # by segment, count, row
    n = count[long]
    firsts = np.cumsum(n) - n  # where each listed row's codes start
    take = np.repeat(start[long] + ELL_WIDTH - firsts, n) + np.arange(int(n.sum()))
    new = np.ones(len(long), dtype=bool)
    new[1:] = (seg[long][1:] != seg[long][:-1]) | (n[1:] != n[:-1])
    at = np.nonzero(new)[0]
    classes = np.zeros((len(at) + 1, 4), dtype=np.int64)
    classes[:-1] = np.stack([seg[long][at], n[at], at, firsts[at]], axis=1).reshape(-1, 4)
    classes[-1] = (len(bounds) - 1, 0, len(long), int(n.sum()))
    return EllMatrix(
        D,
        d,
        np.ascontiguousarray(scale, dtype=np.float32),
        ell,
        bounds,
        long.astype(np.int32),
        np.ascontiguousarray(codes[take]),
        classes,
    )


def _affine_py(base, z, scale, ell, rows, codes, classes, out):  # type: ignore[no-untyped-def]
    """The forward kernel (compiled by numba on first use: `_kernel`)."""
    d = z.shape[0]
    tab = np.zeros(2 * d + SINKS, dtype=np.float32)
    for j in range(d):
        s = z[j] * scale[j]
        tab[j] = s
        tab[d + j] = -s
    D = out.shape[0]
    e0, e1, e2, e3 = ell[0], ell[1], ell[2], ell[3]
    if base.shape[0] == D:
        for i in range(D):
            out[i] = base[i] + ((tab[e0[i]] + tab[e1[i]]) + (tab[e2[i]] + tab[e3[i]]))
    else:
        for i in range(D):
            out[i] = (tab[e0[i]] + tab[e1[i]]) + (tab[e2[i]] + tab[e3[i]])
    for q in range(classes.shape[0] - 1):  # entries past the fourth, in draw order
        k = classes[q, 1]
        c = classes[q, 3]
        for a in range(classes[q, 2], classes[q + 1, 2]):
            i = rows[a]
            v = out[i]
            for t in range(k):
                v += tab[codes[c + t]]
            out[i] = v
            c += k
    return out


def _transpose_py(gs, bounds, ell, rows, codes, classes, acc):  # type: ignore[no-untyped-def]
    """acc[0, code] += g[i] for every entry of every row i; gs: one (n_s,) array per segment
    (an empty one: the segment's g is 0); acc: (W, 2d + SINKS) zeros. ELL slot w adds into
    acc[w] (0.28 against 0.34 ms into one table, MNIST FC at d = 1,000), the entries past
    it into acc[0]; then acc[0] = ((acc[0] + acc[1]) + acc[2]) + acc[3]. The backward
    kernel (`_kernel_t`)."""
    e0, e1, e2, e3 = ell[0], ell[1], ell[2], ell[3]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    for s in range(bounds.shape[0] - 1):
        g = gs[s]
        lo = bounds[s]
        for k in range(g.shape[0]):
            i = lo + k
            gi = g[k]
            a0[e0[i]] += gi
            a1[e1[i]] += gi
            a2[e2[i]] += gi
            a3[e3[i]] += gi
    for q in range(classes.shape[0] - 1):
        g = gs[classes[q, 0]]
        if g.shape[0] == 0:
            continue
        lo = bounds[classes[q, 0]]
        k = classes[q, 1]
        c = classes[q, 3]
        for a in range(classes[q, 2], classes[q + 1, 2]):
            gi = g[rows[a] - lo]
            for t in range(k):
                a0[codes[c + t]] += gi
            c += k
    for j in range(a0.shape[0]):
        a0[j] = ((a0[j] + a1[j]) + a2[j]) + a3[j]


_NO_BASE = np.empty(0, dtype=np.float32)
_compiled: dict[str, Any] = {}


def _kernel() -> Any:
    """`_affine_py` compiled (numba is imported here, not with rlsub.core.projections)."""
    if "affine" not in _compiled:
        from numba import njit

        _compiled["affine"] = njit(cache=True)(_affine_py)  # no fast-math: same bits on any CPU
    return _compiled["affine"]


def _kernel_t() -> Any:
    """`_transpose_py` compiled."""
    if "transpose" not in _compiled:
        from numba import njit

        _compiled["transpose"] = njit(cache=True)(_transpose_py)
    return _compiled["transpose"]


def affine(m: EllMatrix, z: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """base + P z as a new float32 array (D,); z: (d,) float32; base: (D,) float32 or None (0)."""
    assert ELL_WIDTH == 4 and m.ell.shape[0] == 4  # the kernel unrolls the four slots
    out = np.empty(m.D, dtype=np.float32)
    return _kernel()(
        _NO_BASE if base is None else base,
        np.ascontiguousarray(z, dtype=np.float32),
        m.scale,
        m.ell,
        m.rows,
        m.codes,
        m.classes,
        out,
    )


def transpose(m: EllMatrix, parts: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    """P^T g as a new float32 array (d,); g (D,) given as parts (first row, float32 values of
    any shape), the rows no part covers being 0. Parts that are exactly the segments go
    to the kernel as they are; others are first copied into one (D,) array."""
    bounds = [int(b) for b in m.bounds]
    segment = {lo: (s, hi - lo) for s, (lo, hi) in enumerate(itertools.pairwise(bounds))}
    flat = {lo: np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for lo, v in parts}
    if all(lo in segment and g.shape[0] == segment[lo][1] for lo, g in flat.items()):
        gs = tuple(flat.get(lo, _NO_BASE) for lo in bounds[:-1])
    else:
        whole = np.zeros(m.D, dtype=np.float32)
        for lo, g in flat.items():
            whole[lo : lo + g.shape[0]] = g
        gs = tuple(whole[lo:hi] for lo, hi in itertools.pairwise(bounds))
    acc = np.zeros((ELL_WIDTH, 2 * m.d + SINKS), dtype=np.float32)
    _kernel_t()(gs, m.bounds, m.ell, m.rows, m.codes, m.classes, acc)
    return m.scale * (acc[0, : m.d] - acc[0, m.d : 2 * m.d])
