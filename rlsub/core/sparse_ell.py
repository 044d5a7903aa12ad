"""theta0 + P z for one z on the CPU, for the sparse projection (numba kernel).

The sparse P of rlsub.core.projections has D short rows (a few non-zeros each) and
d long columns, every entry +-1 times its column's scale 1/||column||. For a
single z (supervised and policy-gradient steps, ES evaluations) the product is
written row by row as gathers from a table of 2d + 1 signed, scaled values

    tab = [z * scale, -z * scale, 0]          (a few KiB: stays in L1)
    theta[i] = theta0[i] + tab[ell[0, i]] + ... + tab[ell[W - 1, i]]

("ELLPACK" storage: the first W entries of every row, padded with the index of
the 0; codes are uint16 while 2d + 1 fits). Entries past W in a row (rows of
the small layers are longer) go through a short list of (row, code) pairs
added afterwards. One pass reads theta0, W x D codes of 2 bytes and writes
theta; SciPy's CSC product reads 8 bytes per non-zero and scatters into theta.
Measured on MNIST FC at d = 750 (D = 199,210, 502,652 non-zeros, W = 4, 81,638
left over): 0.29 ms for theta0 + P z against 0.53 ms for SciPy's CSC row
blocks without the theta0 add.

Duplicated (row, column) draws are kept as separate entries, so they sum to
the same P as the coalesced CSR matrices that the other paths use; results
agree with them to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ELL_WIDTH = 4


@dataclass(frozen=True)
class EllMatrix:
    """P in ELLPACK form plus leftovers; see the module docstring. Shapes: ell (W, D)."""

    D: int
    d: int
    scale: np.ndarray  # (d,) float32: 1 / column norm
    ell: np.ndarray  # (W, D) codes into tab: j (+), d + j (-), 2d (zero padding)
    rem_rows: np.ndarray  # (R,) int32 rows of the leftover entries (sorted)
    rem_codes: np.ndarray  # (R,) codes of the leftover entries

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.scale, self.ell, self.rem_rows, self.rem_codes))


def build(
    rows: np.ndarray, cols: np.ndarray, negative: np.ndarray, scale: np.ndarray, D: int
) -> EllMatrix:
    """From the entries (row, column, sign) of P, duplicates allowed, and column scales."""
    d = len(scale)
    dtype = np.uint16 if 2 * d + 1 <= np.iinfo(np.uint16).max else np.int32
    codes = (cols + d * negative.astype(np.int64)).astype(dtype)
    order = np.argsort(rows, kind="stable")
    rows, codes = rows[order], codes[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    ell = np.full((ELL_WIDTH, D), 2 * d, dtype=dtype)
    first = rank < ELL_WIDTH
    ell[rank[first], rows[first]] = codes[first]
    return EllMatrix(
        D,
        d,
        np.ascontiguousarray(scale, dtype=np.float32),
        ell,
        rows[~first].astype(np.int32),
        np.ascontiguousarray(codes[~first]),
    )


def _affine_py(base, z, scale, ell, rem_rows, rem_codes, out):  # type: ignore[no-untyped-def]
    """The kernel (compiled by numba on first use: `_kernel`)."""
    d = z.shape[0]
    tab = np.empty(2 * d + 1, dtype=np.float32)
    for j in range(d):
        s = z[j] * scale[j]
        tab[j] = s
        tab[d + j] = -s
    tab[2 * d] = 0.0
    D = out.shape[0]
    e0, e1, e2, e3 = ell[0], ell[1], ell[2], ell[3]
    if base.shape[0] == D:
        for i in range(D):
            out[i] = base[i] + ((tab[e0[i]] + tab[e1[i]]) + (tab[e2[i]] + tab[e3[i]]))
    else:
        for i in range(D):
            out[i] = (tab[e0[i]] + tab[e1[i]]) + (tab[e2[i]] + tab[e3[i]])
    for k in range(rem_rows.shape[0]):
        out[rem_rows[k]] += tab[rem_codes[k]]
    return out


_NO_BASE = np.empty(0, dtype=np.float32)
_compiled: Any = None


def _kernel() -> Any:
    """`_affine_py` compiled (numba is imported here, not with rlsub.core.projections)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True)(_affine_py)  # no fast-math: same bits on any CPU
    return _compiled


def affine(m: EllMatrix, z: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """base + P z as a new float32 array (D,); z: (d,) float32; base: (D,) float32 or None (0)."""
    assert ELL_WIDTH == 4 and m.ell.shape[0] == 4  # the kernel unrolls the four slots
    out = np.empty(m.D, dtype=np.float32)
    return _kernel()(
        _NO_BASE if base is None else base,
        np.ascontiguousarray(z, dtype=np.float32),
        m.scale,
        m.ell,
        m.rem_rows,
        m.rem_codes,
        out,
    )
