"""Random projections P: R^d -> R^D with unit-norm columns.

Every projection is built from (seed, D, d, kind) with its own
`torch.Generator`, never the global RNG, so any process rebuilds the same P
from integers. All map z: (d,) -> (D,) and Z: (N, d) -> (N, D), and are
differentiable in z.

Kinds (Li et al. 2018, section 2 and appendix):

- ``dense``: Gaussian entries, each column scaled to unit norm. Memory D*d
  floats; refused above a configurable limit.
- ``sparse``: very sparse random projection (Li, Hastie, Church 2006): each
  parameter tensor (layer) of size n gets density 1/sqrt(n), entries +-1,
  every column normalised over all D rows. Stored as two CSR matrices
  (P for the forward, P^T for the backward); on the CPU also as SciPy CSC row
  blocks (populations, Z: (N, d)) and in ELLPACK form (one z, with theta0
  added in the same pass: rlsub.sparse_ell).
- ``fastfood``: y = H G Pi H B pad(z) (Le, Sarlos, Smola 2013) with H the
  unnormalised Walsh-Hadamard transform of length L = 2^ceil(log2 D), first D
  entries kept, divided by sqrt(D) * ||G|| so columns have norm about 1.
  Memory O(L), time O(L log L) per product. When d > L one block cannot hold
  z, so ceil(d / L) independent blocks are used, each taking a slice of z,
  and their outputs are summed (each column still belongs to one block, so
  its norm stays about 1).
- ``identity``: P = I (d = D). Used for the direct-training baseline so that
  every trainer handles both cases with one code path.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlsub import sparse_ell
from rlsub.errors import RlsubError

KINDS = ("dense", "sparse", "fastfood", "identity")
DEFAULT_DENSE_LIMIT_GIB = 2.0


def _check_dims(kind: str, D: int, d: int) -> None:
    if kind not in KINDS:
        raise RlsubError(f"unknown projection kind {kind!r}; allowed: {', '.join(KINDS)}")
    if D <= 0:
        raise RlsubError(f"projection: D must be > 0, got {D}")
    if d <= 0:
        raise RlsubError(f"projection: d must be > 0, got d={d}")
    if kind == "identity" and d != D:
        raise RlsubError(f"identity projection needs d == D, got d={d}, D={D}")
    if kind in ("dense", "sparse") and d > D:
        raise RlsubError(
            f"projection: d={d} exceeds D={D}; a {kind} subspace larger than the "
            "network is not allowed (train directly instead)"
        )


class Projection:
    """Base class: P: (d,) -> (D,), (N, d) -> (N, D). Subclasses hold only buffers."""

    kind: str = ""

    def __init__(self, D: int, d: int, seed: int) -> None:
        _check_dims(self.kind, D, d)
        self.D, self.d, self.seed = int(D), int(d), int(seed)

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device="cpu")
        g.manual_seed(self.seed)
        return g

    def __call__(self, z: Tensor) -> Tensor:
        if z.shape[-1] != self.d or z.dim() not in (1, 2):
            raise ValueError(
                f"{self.kind}: z must be (d,) or (N, d) with d={self.d}, got {tuple(z.shape)}"
            )
        if z.dim() == 1:
            return self.apply(z.unsqueeze(0)).squeeze(0)
        return self.apply(z)

    def apply(self, Z: Tensor) -> Tensor:
        """Z: (N, d) -> (N, D)."""
        raise NotImplementedError

    def affine(self, theta0: Tensor, z: Tensor) -> Tensor:
        """theta0 + P z: (D,) + (d,) -> (D,), or (D,) + (N, d) -> (N, D)."""
        return theta0 + self(z)

    @property
    def nbytes(self) -> int:
        """Memory held by the projection's own tensors."""
        return sum(t.element_size() * t.nelement() for t in self._tensors())

    def _tensors(self) -> list[Tensor]:
        return []

    def to(self, device: torch.device | str) -> Projection:
        """Move the projection's tensors to `device` (in place); returns self."""
        for name, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, name, value.to(device))
        return self

    def describe(self) -> dict[str, int | str]:
        return {"kind": self.kind, "D": self.D, "d": self.d, "seed": self.seed}


class IdentityProjection(Projection):
    kind = "identity"

    def apply(self, Z: Tensor) -> Tensor:
        return Z


class DenseProjection(Projection):
    """Gaussian D x d matrix, columns scaled to unit norm."""

    kind = "dense"

    def __init__(self, D: int, d: int, seed: int, max_gib: float = DEFAULT_DENSE_LIMIT_GIB) -> None:
        super().__init__(D, d, seed)
        need_gib = D * d * 4 / 2**30
        if need_gib > max_gib:
            raise RlsubError(
                f"dense projection of D={D} x d={d} needs {need_gib:.2f} GiB, over the "
                f"limit of {max_gib:g} GiB; use --projection sparse or fastfood "
                "(or raise the limit with --dense-limit-gib)"
            )
        g = self._generator()
        # (d, D): row j is column j of P, so normalising rows normalises columns.
        Pt = torch.randn(d, D, generator=g)
        Pt /= Pt.norm(dim=1, keepdim=True)
        self.Pt = Pt

    def _tensors(self) -> list[Tensor]:
        return [self.Pt]

    def apply(self, Z: Tensor) -> Tensor:
        return Z @ self.Pt


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
    computes theta0 + P z in one pass through rlsub.sparse_ell (0.29 ms there).
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
    """theta0 + P z for one z on the CPU through rlsub.sparse_ell; backward P^T g (torch CSR)."""

    @staticmethod
    def forward(ctx, z: Tensor, theta0: Tensor | None, Pt: Tensor, ell: Any) -> Tensor:  # type: ignore[override]
        ctx.Pt = Pt
        base = None if theta0 is None else theta0.detach().contiguous().numpy()
        return torch.from_numpy(sparse_ell.affine(ell, z.detach().numpy(), base))

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return torch.mv(ctx.Pt, grad.contiguous()), None, None, None


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
        # the single-z CPU forward (rlsub.sparse_ell): the draws as they are, duplicates
        # kept apart, so they sum to the same P as the coalesced matrices below
        self.ell = sparse_ell.build(
            r.numpy(), c.numpy(), (vals < 0).numpy(), (1 / norms).numpy(), D
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
            return _SparseAffine.apply(z, None, self.Pt, self.ell)
        return super().__call__(z)

    def affine(self, theta0: Tensor, z: Tensor) -> Tensor:
        if self._single_on_cpu(z) and theta0.dtype == torch.float32:
            return _SparseAffine.apply(z, theta0, self.Pt, self.ell)
        return super().affine(theta0, z)

    def apply(self, Z: Tensor) -> Tensor:
        return _SparseMatmul.apply(Z, self.P, self.Pt, self.csc())


def _hadamard(n: int, dtype: torch.dtype = torch.float32) -> Tensor:
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


def _factor_sizes(L: int, max_factor: int = 32) -> list[int]:
    """Split L = 2^k into powers of two of at most `max_factor`, as even as possible."""
    k = L.bit_length() - 1
    kmax = max_factor.bit_length() - 1
    parts = max(1, math.ceil(k / kmax))
    base, extra = divmod(k, parts)
    return [2 ** (base + (1 if i < extra else 0)) for i in range(parts)]


def fwht(x: Tensor, hadamards: Sequence[Tensor]) -> Tensor:
    """Unnormalised Walsh-Hadamard transform along the last axis of x: (N, L).

    H_L = H_{n1} (x) H_{n2} (x) ... (Kronecker), so the transform is a short
    series of small dense matmuls, one per factor: O(L * sum n_i) flops, which
    on CPUs beats the log2(L)-stage butterfly written in Python.
    """
    N, L = x.shape
    left = N
    right = L
    for H in hadamards:
        n = H.shape[0]
        right //= n
        if right == 1:
            x = (x.reshape(left, n) @ H).reshape(N, L)
        else:
            x = torch.matmul(H, x.reshape(left, n, right)).reshape(N, L)
        left *= n
    return x


class _Permute(torch.autograd.Function):
    """x[:, perm] whose backward is the inverse gather (index_select both ways, no scatter)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor, inv: Tensor) -> Tensor:  # type: ignore[override]
        ctx.inv = inv
        return x.index_select(1, perm)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad.index_select(1, ctx.inv), None, None


class FastfoodProjection(Projection):
    """y = H G Pi H B pad(z), first D entries, / (sqrt(D) ||G||); blocks stacked if d > L."""

    kind = "fastfood"

    def __init__(self, D: int, d: int, seed: int) -> None:
        super().__init__(D, d, seed)
        self.L = 2 ** math.ceil(math.log2(max(D, 2)))
        self.n_blocks = math.ceil(d / self.L)
        g = self._generator()
        L = self.L
        B, Pi, G = [], [], []
        for _ in range(self.n_blocks):
            B.append(torch.randint(0, 2, (L,), generator=g).float() * 2 - 1)
            Pi.append(torch.randperm(L, generator=g).to(torch.int32))
            G.append(torch.randn(L, generator=g))
        self.B = torch.stack(B)  # (n_blocks, L)
        self.Pi = torch.stack(Pi)  # (n_blocks, L)
        self.Pi_inv = torch.argsort(self.Pi, dim=1).to(torch.int32)
        G_t = torch.stack(G)
        # fold the output scaling into G: columns then have norm about 1
        self.G = G_t / (math.sqrt(D) * G_t.norm(dim=1, keepdim=True))
        self.hadamards = [_hadamard(n) for n in _factor_sizes(L)]

    def _tensors(self) -> list[Tensor]:
        return [self.B, self.Pi, self.Pi_inv, self.G, *self.hadamards]

    def to(self, device: torch.device | str) -> FastfoodProjection:
        super().to(device)
        self.hadamards = [H.to(device) for H in self.hadamards]
        return self

    def apply(self, Z: Tensor) -> Tensor:
        N = Z.shape[0]
        L = self.L
        out: Tensor | None = None
        for b in range(self.n_blocks):
            zb = Z[:, b * L : min((b + 1) * L, self.d)]
            x = torch.nn.functional.pad(zb, (0, L - zb.shape[1])) * self.B[b]
            x = fwht(x, self.hadamards)
            x = _Permute.apply(x, self.Pi[b], self.Pi_inv[b]) * self.G[b]
            x = fwht(x, self.hadamards)[:, : self.D]
            out = x if out is None else out + x
        assert out is not None and out.shape == (N, self.D)
        return out


def make_projection(
    kind: str,
    D: int,
    d: int,
    seed: int,
    layer_sizes: Sequence[int] | None = None,
    dense_limit_gib: float = DEFAULT_DENSE_LIMIT_GIB,
) -> Projection:
    """Build projection `kind` from (seed, D, d). Raises RlsubError on bad input."""
    _check_dims(kind, D, d)
    if kind == "dense":
        return DenseProjection(D, d, seed, max_gib=dense_limit_gib)
    if kind == "sparse":
        return SparseProjection(D, d, seed, layer_sizes=layer_sizes)
    if kind == "fastfood":
        return FastfoodProjection(D, d, seed)
    return IdentityProjection(D, d, seed)


def materialize(P: Projection) -> Tensor:
    """The explicit D x d matrix (push the d unit vectors through P). Small D only."""
    with torch.no_grad():
        return P(torch.eye(P.d)).t().contiguous()
