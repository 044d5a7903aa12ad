"""What the layers above learn of a trainer's network before any training: the env's
observation and action sizes (from a vector env of one slot), D of a subspace (built at
d = "direct": identity P, cheap) and the parameters of an MLP. The trainers' `dimension`
answers (rlsub.algos.base) are made of these.

Imports: envs, core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlsub.core.config import ExperimentConfig
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims, EnvSpec, env_dims, load_env_spec
from rlsub.envs.vector import make_vec_env

Look = Callable[[EnvSpec, Any, EnvDims], None]


def probe_env(cfg: ExperimentConfig, look: Look | None = None) -> EnvDims:
    """The sizes of cfg's env, from a vector env of one slot (closed again); `look(spec,
    env, dims)` may check the env while it is open (raise RlsubError to refuse it)."""
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    env = make_vec_env(spec, 1)
    try:
        dims = env_dims(env)
        if look is not None:
            look(spec, env, dims)
    finally:
        env.close()
    return dims


def subspace_D(cfg: ExperimentConfig, kwargs: dict[str, Any]) -> int:
    """D of cfg's subspace (its include and rest settings) over the network built with
    `kwargs`: the parameters that z moves."""
    return Subspace.from_spec(
        cfg.network.name,
        kwargs,
        0,
        "direct",
        include=cfg.subspace.include,
        rest=cfg.subspace.rest,
    ).D


def mlp_parameters(sizes: list[int]) -> int:
    """Weights and biases of an MLP with layer sizes `sizes` (inputs first)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
