"""The Fastfood projection (Le, Sarlos, Smola 2013): y = H G Pi H B pad(z), memory O(L),
time O(L log L); the Walsh-Hadamard transform as small Kronecker matmuls.

Imports: core.projection_base only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

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
