"""The Fastfood projection (Le, Sarlos, Smola 2013): y = H G Pi H B pad(z), memory O(L),
time O(L log L).

On the CPU in float32 the products run through numba kernels
(rlsub.core.fastfood_kernels: an in-place radix-2 Walsh-Hadamard transform, one of
length L each way); on a GPU through torch, with the transform as small Kronecker
matmuls (`fwht`, `apply_torch`). The two sum in different orders, so they agree
to float rounding, not to the bit. At Pong's D = 1,005,974 (L = 2^20), one thread,
CPU time: about 2 ms forward and 4-5 ms forward + backward through the kernels
(`rlsub bench projection`), 12 and 29 ms through torch's matmuls (and 120 and
250 ms of wall time on two threads of this busy 2-core machine).

Imports: core.projection_base, core.fastfood_kernels (numba, on first CPU use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rlsub.core.projection_base import Projection


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


class _FastfoodCPU(torch.autograd.Function):
    """theta0 + P Z (or P Z) through the numba kernels; backward P^T g through them too."""

    @staticmethod
    def forward(ctx, Z: Tensor, theta0: Tensor | None, P: FastfoodProjection) -> Tensor:  # type: ignore[override]
        ctx.P = P
        base = None if theta0 is None else theta0.detach().contiguous().numpy()
        return torch.from_numpy(P.forward_np(Z.detach().contiguous().numpy(), base))

    @staticmethod
    @once_differentiable  # the kernels' products are not recorded: no second order
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        g = grad.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(ctx.P.transpose_np(g)), None, None


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
        # for the CPU kernels: fold[b] = Pi[b] mod m_b (uint16 when it fits), m_b the power
        # of two >= block b's share of d, and two float32 buffers of length L
        self._fold = []
        for b in range(self.n_blocks):
            m = 1 << max(0, min(L, d - b * L) - 1).bit_length()
            dtype = np.uint16 if m <= 2**16 else np.int32
            self._fold.append((self.Pi[b].numpy() & (m - 1)).astype(dtype))
        self._scratch = np.empty((2, L), dtype=np.float32)

    def _tensors(self) -> list[Tensor]:
        return [self.B, self.Pi, self.Pi_inv, self.G, *self.hadamards]

    def to(self, device: torch.device | str) -> FastfoodProjection:
        super().to(device)
        self.hadamards = [H.to(device) for H in self.hadamards]
        return self

    # ------------------------------------------------------------ the CPU kernels
    def _kernels_apply(self, z: Tensor) -> bool:
        """z float32 on the CPU with P there: the numba kernels' case."""
        return z.device.type == "cpu" and z.dtype == torch.float32 and self.B.device.type == "cpu"

    def _np(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """(kernels module, B, Pi_inv, G as numpy views, fold) for the CPU kernels."""
        from rlsub.core import fastfood_kernels as k

        return k, self.B.numpy(), self.Pi_inv.numpy(), self.G.numpy(), self._fold

    @property
    def nbytes(self) -> int:
        """B, Pi, Pi^-1, G and the Hadamard factors, plus the CPU kernels' Pi mod m and scratch."""
        extra = sum(f.nbytes for f in self._fold) + self._scratch.nbytes
        return super().nbytes + extra

    def forward_np(self, Z: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """(base +) P Z for Z: (N, d) float32 -> (N, D) float32, through the numba kernels."""
        k, B, _, G, fold = self._np()
        work, v = self._scratch
        N, L = Z.shape[0], self.L
        out = np.empty((N, self.D), dtype=np.float32)
        base = np.empty(0, dtype=np.float32) if base is None else base
        for r in range(N):
            for b in range(self.n_blocks):
                zb = Z[r, b * L : min((b + 1) * L, self.d)]
                first, last = b == 0, b == self.n_blocks - 1
                k.forward(zb, B[b], fold[b], G[b], work, v, base, out[r], first, last)
        return out

    def transpose_np(self, Gr: np.ndarray) -> np.ndarray:
        """P^T g for each row of Gr: (N, D) float32 -> (N, d)."""
        return np.stack([self.transpose_parts([(0, g)]) for g in Gr])

    def has_transpose_kernel(self, theta0: Tensor, z: Tensor) -> bool:
        return z.dim() == 1 and self._kernels_apply(z) and self._kernels_apply(theta0)

    def transpose_parts(self, parts: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
        k, B, Pi_inv, G, fold = self._np()
        work, v = self._scratch
        covered = 0
        for lo, values in sorted(parts, key=lambda p: p[0]):
            if lo > covered:
                work[covered:lo] = 0.0
            work[lo : lo + values.size] = values.reshape(-1)
            covered = lo + values.size
        work[covered:] = 0.0
        L = self.L
        out = np.empty(self.d, dtype=np.float32)
        k.wht(work)
        for b in range(self.n_blocks):
            lo, hi = b * L, min((b + 1) * L, self.d)
            k.backward(work, B[b], fold[b], Pi_inv[b], G[b], out[lo:hi], v)
        return out

    # ------------------------------------------------------------------ products
    def apply(self, Z: Tensor) -> Tensor:
        if self._kernels_apply(Z):
            return _FastfoodCPU.apply(Z, None, self)
        return self.apply_torch(Z)

    def affine(self, theta0: Tensor, z: Tensor) -> Tensor:
        if self._kernels_apply(z) and self._kernels_apply(theta0) and not theta0.requires_grad:
            self._check_z(z)
            if z.dim() == 1:
                return _FastfoodCPU.apply(z.unsqueeze(0), theta0, self).squeeze(0)
            return _FastfoodCPU.apply(z, theta0, self)
        return super().affine(theta0, z)

    def apply_torch(self, Z: Tensor) -> Tensor:
        """Z: (N, d) -> (N, D) through torch (any device and dtype; the transform as matmuls)."""
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
