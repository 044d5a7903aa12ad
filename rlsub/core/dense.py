"""The dense Gaussian projection: a D x d matrix of Gaussian entries, each column scaled to
unit norm, refused above a memory limit (Li et al. 2018's default kind).

Imports: core.projection_base, core.errors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlsub.core.errors import RlsubError
from rlsub.core.projection_base import DEFAULT_DENSE_LIMIT_GIB, Projection


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
