"""Fixed batch-norm statistics from reference observations (the original ES on Atari).

Imports: torch only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def set_batchnorm_statistics(module: nn.Module, x: Tensor) -> bool:
    """Set every BatchNorm layer's running statistics to those of batch x (a forward in
    training mode with a cumulative average), leaving the module's mode as it was.

    With the statistics then frozen (eval mode) this is a fixed form of the virtual
    batch normalisation of Salimans et al. (2017): features are normalised over a
    reference batch, so the policy reacts to small changes of the input (in Pong,
    the ball) rather than to the constant background. Returns False if there is no
    BatchNorm layer.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return False
    momenta = [m.momentum for m in bns]
    was_training = module.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    module(x)
    module.train(was_training)
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    return True
