"""`PopulationPolicy`: x (N, B, ...) -> (N, B, ...) for N networks given by batched parameters,
prepared once per population (the module's own batched forward, or vmap of functional_call).

Imports: torch only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call


class PopulationPolicy:
    """x: (N, B, ...) -> (N, B, ...) for N networks given by batched parameters.

    MLPs go through their batched matmuls (weights transposed and made
    contiguous once, here), ConvNets (es_pong, nature_cnn) through grouped
    convolutions and batched matmuls; other modules through torch.vmap of
    functional_call.
    """

    def __init__(
        self,
        module: nn.Module,
        full: dict[str, Tensor],
        pairs: dict[str, tuple[Tensor, Tensor]] | None = None,
    ) -> None:
        self.module = module
        self.full = full
        first = next(iter(full.values()))
        self.N = first.shape[0]
        self.device = first.device  # where the inputs must be (rlsub.core.device)
        prepare = getattr(module, "batched_prepare", None)
        self.apply = getattr(module, "batched_apply", None)
        if prepare is None or self.apply is None:
            self.prepared = None
        else:
            self.prepared = prepare(full, pairs) if pairs else prepare(full)
        if self.prepared is None:

            def one(p: dict[str, Tensor], xi: Tensor) -> Tensor:
                return functional_call(module, p, (xi,))

            self.batched = torch.vmap(one)

    @property
    def takes_uint8(self) -> bool:
        """True when uint8 pixels may be passed as they are (the module scales them by 1/255)."""
        return self.prepared is not None and bool(getattr(self.module, "uint8_input", False))

    def __call__(self, x: Tensor) -> Tensor:
        if self.prepared is not None:
            assert self.apply is not None
            return self.apply(self.prepared, x)
        return self.batched(self.full, x)

    def subset(self, idx: Tensor) -> PopulationPolicy:
        """The policy of individuals `idx` (a 1-D index tensor) only."""
        out = PopulationPolicy.__new__(PopulationPolicy)
        out.module, out.apply, out.N, out.device = self.module, self.apply, len(idx), self.device
        idx = idx.to(self.device)
        if self.prepared is not None:
            subset = getattr(self.module, "batched_subset", None)  # rlsub.nets.convnet.ConvNet
            if subset is not None:
                out.prepared = subset(self.prepared, idx)
            else:
                out.prepared = [(W[idx], b[idx]) for W, b in self.prepared]
            out.full = {}
        else:
            out.prepared = None
            out.full = {k: v[idx] for k, v in self.full.items()}
            out.batched = self.batched
        return out
