"""The very sparse random projection (Li, Hastie, Church 2006): per-layer density
1/sqrt(layer size), entries +-1, columns normalised over all D rows. CSR for P and P^T,
SciPy CSC row blocks for populations, ELLPACK (core.sparse_ell) for one z on the CPU.

Imports: core.projection_base, core.sparse_ell, core.errors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rlsub.core import sparse_ell
from rlsub.core.projection_base import Projection


class _SparseMatmul(torch.autograd.Function):
    """(N, d) -> (N, D) with P and P^T both held as CSR (fast forward and backward).

    On the CPU the forward goes through `csc`, SciPy column-compressed copies
    of P's row blocks when given: P has D short rows (a few non-zeros each) but
    only d long columns, and SciPy's CSC product runs over columns, scattering
    into the output. One block of CSC_BLOCK_ROWS rows writes into 128 KiB that
    stay in cache, where one CSC over all of D sweeps the whole theta once per
    column. Measured on MNIST FC at d = 750 (D = 199,210, 502,652 non-zeros),
    best of 5 x 100: 0.61 ms in blocks of 32,768 rows, 0.91 ms as one CSC,
    about 1.0 ms for torch.mv on the CSR. Two threads (a block each) measured
    faster alone but slower inside a training step, where torch's own threads
    hold the cores. `rlsub bench supervised` measures the whole step.
    A single z on the CPU (one theta per step) skips this class: `_SparseAffine`
    computes theta0 + P z in one pass through rlsub.core.sparse_ell (0.29 ms there).
    """

    @staticmethod
    def forward(ctx, Z: Tensor, P: Tensor, Pt: Tensor, csc: Any = None) -> Tensor:  # type: ignore[override]
        ctx.Pt = Pt
        if csc is not None and Z.device.type == "cpu" and Z.dtype == torch.float32:
            return torch.from_numpy(_csc_matmul(csc, Z.detach().numpy(), P.shape[0]))
        return _csr_matmul(P, Z)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return _csr_matmul(ctx.Pt, grad), None, None, None


class _SparseAffine(torch.autograd.Function):
    """theta0 + P z for one z on the CPU through rlsub.core.sparse_ell; backward P^T g there too."""

    @staticmethod
    def forward(ctx, z: Tensor, theta0: Tensor | None, ell: Any) -> Tensor:  # type: ignore[override]
        ctx.ell = ell
        base = None if theta0 is None else theta0.detach().contiguous().numpy()
        return torch.from_numpy(sparse_ell.affine(ell, z.detach().numpy(), base))

    @staticmethod
    @once_differentiable  # the kernels' products are not recorded: no second order
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        g = grad.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(sparse_ell.transpose(ctx.ell, [(0, g)])), None, None


CSC_BLOCK_ROWS = 32_768


def _csc_matmul(blocks: list[tuple[int, int, Any]], Z: np.ndarray, D: int) -> np.ndarray:
    """(N, D) = (P Z^T)^T from SciPy CSC row blocks (start, stop, block of P).

    For N > 1 the product is written as (D, N) and returned transposed (a view
    with strides (1, N)): copying it into (N, D) order cost 7x the product
    itself for CartPole's population (D = 562, N = 256: 236 us against 31).
    """
    if Z.shape[0] == 1:
        out = np.empty((1, D), dtype=np.float32)
        z = Z[0]
        for a, b, m in blocks:
            out[0, a:b] = m @ z
        return out
    if len(blocks) == 1:
        return np.asarray(blocks[0][2] @ Z.T, dtype=np.float32).T
    cols = np.empty((D, Z.shape[0]), dtype=np.float32)
    for a, b, m in blocks:
        cols[a:b] = m @ Z.T
    return cols.T


def _csr_matmul(M: Tensor, X: Tensor) -> Tensor:
    """(X @ M^T) for a CSR M (R, C) and dense X (N, C): (N, R).

    N == 1 (one theta per step, the common case) goes through the sparse
    matrix-vector product, measured about 1.5x faster than sparse.mm on (C, 1).
    """
    if X.shape[0] == 1:
        return torch.mv(M, X[0]).unsqueeze(0)
    return torch.sparse.mm(M, X.t().contiguous()).t()


def _csr_int32(coo: Tensor) -> Tensor:
    """COO -> CSR with int32 indices (half the index bandwidth of int64)."""
    csr = coo.to_sparse_csr()
    if csr.values().numel() >= 2**31 - 1:
        return csr
    return torch.sparse_csr_tensor(
        csr.crow_indices().to(torch.int32),
        csr.col_indices().to(torch.int32),
        csr.values(),
        csr.shape,
        check_invariants=False,
    )


class SparseProjection(Projection):
    """Very sparse random projection, per-layer density 1/sqrt(layer size).

    `layer_sizes` splits the D rows into parameter tensors (their sizes must sum
    to D); by default the whole of D is one layer. Every column gets at least
    one non-zero so none is empty at small D.
    """

    kind = "sparse"

    def __init__(self, D: int, d: int, seed: int, layer_sizes: Sequence[int] | None = None) -> None:
        super().__init__(D, d, seed)
        sizes = list(layer_sizes) if layer_sizes else [D]
        if sum(sizes) != D or any(s <= 0 for s in sizes):
            raise ValueError(f"sparse: layer sizes {sizes} must be positive and sum to D={D}")
        g = self._generator()
        rows, cols = [], []
        offset = 0
        for n in sizes:
            density = 1.0 / math.sqrt(n)
            nnz = max(1, round(n * d * density))
            rows.append(torch.randint(0, n, (nnz,), generator=g) + offset)
            cols.append(torch.randint(0, d, (nnz,), generator=g))
            offset += n
        # one guaranteed entry per column, at a random row
        rows.append(torch.randint(0, D, (d,), generator=g))
        cols.append(torch.arange(d))
        r, c = torch.cat(rows), torch.cat(cols)
        vals = torch.randint(0, 2, (r.numel(),), generator=g).float() * 2 - 1
        coo = torch.sparse_coo_tensor(
            torch.stack([r, c]), vals, (D, d), check_invariants=False
        ).coalesce()
        idx, v = coo.indices(), coo.values()
        # a duplicated (row, col) pair may have summed to 0: keep it, it is harmless
        norms = torch.zeros(d).index_add_(0, idx[1], v * v).sqrt()
        norms[norms == 0] = 1.0
        v = v / norms[idx[1]]
        # the single-z CPU forward (rlsub.core.sparse_ell): the draws as they are, duplicates
        # kept apart, so they sum to the same P as the coalesced matrices below
        self.ell = sparse_ell.build(
            r.numpy(), c.numpy(), (vals < 0).numpy(), (1 / norms).numpy(), D, sizes
        )
        with (
            warnings.catch_warnings()
        ):  # torch calls CSR support "beta"; it is what we measured fastest
            warnings.simplefilter("ignore", UserWarning)
            self.P = _csr_int32(
                torch.sparse_coo_tensor(idx, v, (D, d), check_invariants=False).coalesce()
            )
            self.Pt = _csr_int32(
                torch.sparse_coo_tensor(idx.flip(0), v, (d, D), check_invariants=False).coalesce()
            )
        self.csc()  # built now, so that nbytes counts it from the start

    @property
    def nbytes(self) -> int:
        """P and P^T (torch CSR), plus SciPy's CSC row blocks and the ELL form on the CPU."""
        blocks = self.csc()
        if blocks is None:
            return super().nbytes
        extra = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for _, _, m in blocks)
        return super().nbytes + extra + self.ell.nbytes

    def _tensors(self) -> list[Tensor]:
        out = []
        for m in (self.P, self.Pt):
            out += [m.crow_indices(), m.col_indices(), m.values()]
        return out

    def csc(self) -> list[tuple[int, int, Any]] | None:
        """SciPy CSC copies of P's row blocks for the CPU forward (built once), or None off the CPU."""
        if self.P.device.type != "cpu":
            return None
        key = self.P.values().data_ptr()
        if getattr(self, "_csc_key", None) != key:
            import scipy.sparse

            P = self.P
            csr = scipy.sparse.csr_matrix(
                (P.values().numpy(), P.col_indices().numpy(), P.crow_indices().numpy()),
                shape=tuple(P.shape),
            )
            self._csc = [
                (a, min(a + CSC_BLOCK_ROWS, self.D), csr[a : a + CSC_BLOCK_ROWS].tocsc())
                for a in range(0, self.D, CSC_BLOCK_ROWS)
            ]
            self._csc_key = key
        return self._csc

    def _single_on_cpu(self, z: Tensor) -> bool:
        """z: (d,) float32 with P on the CPU: the case of the ELL kernel."""
        return (
            z.dim() == 1
            and z.shape[0] == self.d
            and z.device.type == "cpu"
            and z.dtype == torch.float32
            and self.P.device.type == "cpu"
        )

    def __call__(self, z: Tensor) -> Tensor:
        if self._single_on_cpu(z):
            return _SparseAffine.apply(z, None, self.ell)
        return super().__call__(z)

    def affine(self, theta0: Tensor, z: Tensor) -> Tensor:
        if self._single_on_cpu(z) and theta0.dtype == torch.float32:
            return _SparseAffine.apply(z, theta0, self.ell)
        return super().affine(theta0, z)

    def has_transpose_kernel(self, theta0: Tensor, z: Tensor) -> bool:
        return self._single_on_cpu(z) and theta0.dtype == torch.float32

    def transpose_parts(self, parts: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
        return sparse_ell.transpose(self.ell, parts)

    def apply(self, Z: Tensor) -> Tensor:
        return _SparseMatmul.apply(Z, self.P, self.Pt, self.csc())
