"""theta = theta0 + P z handed to the network as one view per subspace tensor, and P^T g
computed from those tensors' gradients in one pass (`Subspace.params`).

The ordinary path, `Subspace.split(Subspace.theta())`, has autograd split a flat
theta into views and, in the backward, concatenate the tensors' gradients into
one (D,) gradient before P^T g. Where the projection has a CPU kernel for its
transpose (sparse: rlsub.core.sparse_ell; Fastfood: rlsub.core.fastfood_kernels),
one custom autograd function does both ends instead: its forward computes theta
once (the projection's own `affine`, so the same bits as `theta()`) and returns
the views; its backward hands each tensor's gradient, where autograd left it,
straight to the kernel (`Projection.transpose_parts`). The gradient of z is P^T g
summed in the kernel's order: it agrees with autograd's to float rounding.

Imports: torch and numpy only (the projection is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _Views(torch.autograd.Function):
    """z (d,) -> the views of theta0 + P z, one per (size, shape); backward P^T g by parts."""

    @staticmethod
    def forward(ctx, z: Tensor, theta0: Tensor, P: Any, sizes: Any, shapes: Any):  # type: ignore[override]
        ctx.set_materialize_grads(False)  # a tensor the loss does not use: no zeros
        ctx.P, ctx.sizes = P, sizes
        theta = P.affine(theta0, z.detach())
        return tuple(t.view(s) for t, s in zip(theta.split(sizes), shapes, strict=True))

    @staticmethod
    @once_differentiable  # the kernels' products are not recorded: no second order
    def backward(ctx, *grads: Tensor | None):  # type: ignore[override]
        parts, a = [], 0
        for g, n in zip(grads, ctx.sizes, strict=True):
            if g is not None:
                if g.dtype != torch.float32 or not g.is_contiguous():
                    g = g.to(torch.float32).contiguous()
                parts.append((a, g.detach().numpy()))
            a += n
        return torch.from_numpy(ctx.P.transpose_parts(parts)), None, None, None, None


def views(
    z: Tensor,
    theta0: Tensor,
    P: Any,
    sizes: Sequence[int],
    shapes: Sequence[tuple[int, ...]],
) -> tuple[Tensor, ...]:
    """The views of theta0 + P z (z: (d,)), one per tensor of `sizes` / `shapes`, in order."""
    return _Views.apply(z, theta0, P, list(sizes), list(shapes))
