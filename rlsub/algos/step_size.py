"""z's step size in a policy-gradient subspace: a number, or a rule in D and d.

Adam moves each coordinate of z by about its learning rate per step, and with
unit-norm columns of P theta then moves about sqrt(d / D) as far as in direct
training. A fixed multiplier of the algorithm's learning rate therefore suits one d
and not the others: with x100 on CartPole PPO (D = 9,155) d = 32 learns too slowly
and d = 4,096 diverges, so the curve is not monotone and the crossing is an
artefact of the constant (issue 26). ``"K*sqrt(D/d)"`` gives every d the step of
direct training, times K: the protocol of the policy-gradient rows. A mapping
``{d: scale}`` gives each d its own entry: what ``rlsub tune`` writes after trying a
few K per d on seeds that are not the reported ones (a d between mapped ones, as
the adaptive sweep adds, takes the entry of the nearest mapped d in log d).

Imports: core.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

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


def scale_at(scale: float | str | Mapping[Any, float | str], d: int | str) -> float | str:
    """The z_lr_scale that applies at d: `scale` itself, or a mapping's entry for d (keys
    are d, as integers or, read back from JSON, strings), else the entry of the nearest
    mapped d in log d (the smaller on a tie). The direct baseline takes any entry: its
    scale is 1 whatever the rule (`resolve_z_lr_scale`)."""
    if not isinstance(scale, Mapping):
        return scale
    table = _table(scale)
    if d == DIRECT:
        return table[min(table)]
    near = min(table, key=lambda k: (abs(math.log(k / int(d))), k))
    return table[near]


def check_scale(scale: Any) -> None:
    """ValueError unless `scale` is a valid z_lr_scale: a number > 0, 'K*sqrt(D/d)', or a
    non-empty mapping from positive integer d to either."""
    if isinstance(scale, Mapping):
        for value in _table(scale).values():
            resolve_z_lr_scale(value, 1, 1)
    else:
        resolve_z_lr_scale(scale, 1, 1)


def _table(scale: Mapping[Any, float | str]) -> dict[int, float | str]:
    if not scale:
        raise ValueError("z_lr_scale: a per-d mapping needs at least one entry")
    out: dict[int, float | str] = {}
    for key, value in scale.items():
        try:
            d = int(key)
        except (TypeError, ValueError):
            d = 0
        if d <= 0 or isinstance(key, bool) or (isinstance(key, float) and not key.is_integer()):
            raise ValueError(f"z_lr_scale: per-d keys must be positive integers (d), got {key!r}")
        out[d] = value
    return out


def describe_scale(scale: float | str | Mapping[Any, float | str]) -> str:
    """The words of a table row: 'z lr x100', 'z lr 3*sqrt(D/d)', or for a per-d mapping of
    K*sqrt(D/d) rules 'z lr K*sqrt(D/d), K per d: 8: 10, 32: 3, ...'."""
    if not isinstance(scale, Mapping):
        return f"z lr {scale}" if isinstance(scale, str) else f"z lr x{scale:g}"
    table = _table(scale)
    ks = {d: _sqrt_k(v) for d, v in table.items()}
    if all(k is not None for k in ks.values()):
        return "z lr K*sqrt(D/d), K per d: " + ", ".join(f"{d}: {ks[d]:g}" for d in sorted(ks))
    return "z lr per d: " + ", ".join(f"{d}: {table[d]}" for d in sorted(table))


def _sqrt_k(value: float | str) -> float | None:
    m = _SQRT_RULE.match(value) if isinstance(value, str) else None
    return None if m is None else float(m.group(1) or 1.0)
