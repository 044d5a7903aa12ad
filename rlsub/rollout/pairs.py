"""ES's antithetic pairs [z + E; z - E] prepared from 1 + H projections instead of 2H.

Modules with pair-aware batched forwards (rlsub.nets.convnet.ConvNet) keep every large
Linear weight as centre plus signed delta, optionally stored in bfloat16; each step
then reads the centre once and each delta once per pair. Rollouts take
`pairs=(z, E)` or `(z, E, delta_dtype)` and build the policy here.

Imports: core only. The core's Subspace knows nothing of this.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlsub.core.population import PopulationPolicy
from rlsub.core.subspace import Subspace

# (z: (d,), E: (H, d)) or (z, E, delta_dtype)
PairsArg = tuple[Tensor, Tensor] | tuple[Tensor, Tensor, torch.dtype]


def pairs_policy(sub: Subspace, pairs: PairsArg) -> PopulationPolicy:
    """The population policy of `pairs` = (z, E) or (z, E, delta_dtype)."""
    z, E, *rest = pairs
    return antithetic_policy(sub, z, E, delta_dtype=rest[0] if rest else torch.float32)


def antithetic_policy(
    sub: Subspace,
    z: Tensor,
    E: Tensor,
    min_pair_numel: int = 1 << 16,
    delta_dtype: torch.dtype = torch.float32,
) -> PopulationPolicy:
    """The population [z + E_i (i < H); z - E_i] for z: (d,), E: (H, d): N = 2H members.

    ES's antithetic pairs, prepared as `population_fn` would prepare Z = [z + E; z - E],
    from 1 + H projections (theta_c = theta0 + P z, and P E) instead of 2H: member
    i's tensors are theta_c + P E_i, member H + i's theta_c - P E_i. Modules with
    pair-aware batched forwards (rlsub.nets.convnet.ConvNet) keep every Linear weight of
    at least `min_pair_numel` entries as centre and delta (each step then reads the
    centre once and each delta once per pair); the other tensors are formed per
    member. Results equal population_fn's up to float rounding.

    delta_dtype (default float32; ES's `train.pair_dtype`): torch.bfloat16 stores those
    deltas rounded to bfloat16 (8 significant bits, relative error <= 2^-9), which
    halves the bytes a step reads; the members are then theta_c +- bf16(P E_i),
    not exactly population_fn's.
    """
    if z.dim() != 1 or E.dim() != 2 or E.shape[1] != sub.d or z.shape[0] != sub.d:
        raise ValueError(f"antithetic_policy: z must be ({sub.d},), E (H, {sub.d})")
    prepare = getattr(sub.module, "batched_prepare", None)
    if prepare is None or not getattr(sub.module, "pair_forward", False):
        return sub.population_fn(sub.split(sub.theta(torch.cat([z + E, z - E]))))
    centre = sub.split(sub.theta(z[None]))  # name -> (1, *shape)
    delta = sub.split(sub.P(E))  # name -> (H, *shape)
    pairs: dict[str, tuple[Tensor, Tensor]] = {}
    params: dict[str, Tensor] = {}
    H = E.shape[0]
    for name in sub.names:
        c, e = centre[name], delta[name]
        if name.endswith("weight") and c.dim() == 3 and c[0].numel() >= min_pair_numel:
            pairs[name] = (c[0], e.to(delta_dtype))
            params[name] = c.expand(2 * H, *c.shape[1:])  # placeholder: not read
        else:
            params[name] = torch.cat([c + e, c - e])
    return PopulationPolicy(sub.module, sub.complete_params(params), pairs)
