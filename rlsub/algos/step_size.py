"""z's step size in a policy-gradient subspace: a number, or a rule in D and d.

Adam moves each coordinate of z by about its learning rate per step, and with
unit-norm columns of P theta then moves about sqrt(d / D) as far as in direct
training. A fixed multiplier of the algorithm's learning rate therefore suits one d
and not the others: with x100 on CartPole PPO (D = 9,155) d = 32 learns too slowly
and d = 4,096 diverges, so the curve is not monotone and the crossing is an
artefact of the constant (issue 26). ``"K*sqrt(D/d)"`` gives every d the step of
direct training, times K: the protocol of the policy-gradient rows.

Imports: core.
"""

from __future__ import annotations

import math
import re

from rlsub.core.subspace import DIRECT

_SQRT_RULE = re.compile(r"^\s*(?:(\d+(?:\.\d*)?(?:e[-+]?\d+)?)\s*\*?\s*)?sqrt\(D/d\)\s*$")


def resolve_z_lr_scale(scale: float | str, D: int, d: int | str) -> float:
    """z's learning-rate multiplier: a positive number as it is, or "K*sqrt(D/d)" (K
    optional, default 1) with D the subspace's parameters and d its dimension; 1 for
    the direct baseline. ValueError for anything else."""
    if isinstance(scale, bool) or not isinstance(scale, int | float | str):
        raise ValueError(f"z_lr_scale must be a number > 0 or 'K*sqrt(D/d)', got {scale!r}")
    if isinstance(scale, str):
        m = _SQRT_RULE.match(scale)
        if m is None:
            raise ValueError(
                f"z_lr_scale must be a number > 0 or 'K*sqrt(D/d)' (e.g. '3*sqrt(D/d)'), "
                f"got {scale!r}"
            )
        k = float(m.group(1) or 1.0)
        if k <= 0:
            raise ValueError(f"z_lr_scale: K must be > 0, got {scale!r}")
        return 1.0 if d == DIRECT else k * math.sqrt(D / int(d))
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"z_lr_scale must be > 0, got {scale!r}")
    return float(scale)
