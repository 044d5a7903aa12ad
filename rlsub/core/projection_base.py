"""What every random projection shares: the interface (`Projection`: z (d,) -> P z (D,),
Z (N, d) -> (N, D)), the kinds and their dimension rules (`check_dims`), and the
identity (P = I, the direct baseline). The kinds live beside it (core.dense,
core.sparse, core.fastfood); `rlsub.core.projections.make_projection` builds one.

Imports: torch only (and core.errors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from rlsub.core.errors import RlsubError

KINDS = ("dense", "sparse", "fastfood", "identity")
DEFAULT_DENSE_LIMIT_GIB = 2.0


def check_dims(kind: str, D: int, d: int) -> None:
    """Refuse (RlsubError) an unknown kind or a d that kind cannot have for D."""
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
        check_dims(self.kind, D, d)
        self.D, self.d, self.seed = int(D), int(d), int(seed)

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device="cpu")
        g.manual_seed(self.seed)
        return g

    def _check_z(self, z: Tensor) -> None:
        if z.shape[-1] != self.d or z.dim() not in (1, 2):
            raise ValueError(
                f"{self.kind}: z must be (d,) or (N, d) with d={self.d}, got {tuple(z.shape)}"
            )

    def __call__(self, z: Tensor) -> Tensor:
        self._check_z(z)
        if z.dim() == 1:
            return self.apply(z.unsqueeze(0)).squeeze(0)
        return self.apply(z)

    def apply(self, Z: Tensor) -> Tensor:
        """Z: (N, d) -> (N, D)."""
        raise NotImplementedError

    def affine(self, theta0: Tensor, z: Tensor) -> Tensor:
        """theta0 + P z: (D,) + (d,) -> (D,), or (D,) + (N, d) -> (N, D)."""
        return theta0 + self(z)

    def has_transpose_kernel(self, theta0: Tensor, z: Tensor) -> bool:
        """Whether `transpose_parts` serves this (theta0, z) (rlsub.core.views); z: (d,)."""
        return False

    def transpose_parts(self, parts: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
        """P^T g (d,) float32 for g (D,) given as parts (first row, float32 values); rows no
        part covers are 0. Only where `has_transpose_kernel` says so."""
        raise NotImplementedError

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
