"""What ES, CMA-ES and the Ray ES actors share: the env, the Subspace policy and its
batch-norm statistics built from (config, d, seed) alone, and the policy file's extra.

Imports: rollout, envs, nets, core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlsub.core.config import ExperimentConfig
from rlsub.core.device import resolve as resolve_device
from rlsub.core.errors import RlsubError
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims, EnvSpec, env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.nets.batchnorm import set_batchnorm_statistics
from rlsub.rollout.slots import RunningNorm, random_observations

# env slots one generation may play (population x episodes per member, or evaluation
# episodes): each slot is an env and a row of the batched forward
MAX_SLOTS = 100_000


@dataclass
class Setup:
    """A trial's env and policy from (config, d, seed): `env` plays `slots` episodes at
    once (None when built with slots=None: the caller makes it, e.g. once d is known)."""

    spec: EnvSpec
    env: Any
    dims: EnvDims
    seeds: dict[str, int]
    sub: Subspace

    def make_env(self, cfg: ExperimentConfig, slots: int) -> Any:
        """A vector env of `slots` slots for this trial's env (rlsub.envs.vector)."""
        return make_vec_env(self.spec, slots, threads=getattr(cfg.train, "env_threads", None))

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def build_setup(cfg: ExperimentConfig, d: int | str, seed: int, slots: int | None) -> Setup:
    """The env (`slots` slots; None: no env is kept, only its dims are read) and the
    Subspace policy of trial (d, seed)."""
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    env = make_vec_env(spec, slots or 1, threads=getattr(cfg.train, "env_threads", None))
    dims = env_dims(env)
    try:
        check_pixels(cfg, spec, env, dims)
    except RlsubError:
        env.close()
        raise
    seeds = trial_seeds(seed)
    proj_seed = (
        cfg.subspace.projection_seed
        if cfg.subspace.projection_seed is not None
        else seeds["projection"]
    )
    kwargs = policy_network_kwargs(cfg.network.name, cfg.network.kwargs, dims)
    sub = Subspace.from_spec(
        cfg.network.name,
        kwargs,
        seeds["theta0"],
        d,
        cfg.subspace.projection,
        proj_seed,
        include=cfg.subspace.include,
        rest=cfg.subspace.rest,
        dense_limit_gib=cfg.subspace.dense_limit_gib,
    )
    n_ref = getattr(cfg.train, "bn_reference", 0)
    if n_ref > 0:  # from seeds alone, so Ray actors and replays get the same statistics
        ref_env = make_vec_env(spec, 8, threads=getattr(cfg.train, "env_threads", None))
        set_batchnorm_statistics(sub.module, random_observations(ref_env, n_ref, seeds["env"]))
        ref_env.close()
    sub.eval()
    sub.to(es_device(getattr(cfg.train, "device", "cpu"), env, f"{cfg.source}: train.device"))
    if slots is None:
        env.close()
    return Setup(spec, None if slots is None else env, dims, seeds, sub)


def check_pixels(cfg: ExperimentConfig, spec: EnvSpec, env: Any, dims: EnvDims) -> None:
    """Refuse observation normalisation for pixel observations (they are scaled by 1/255)."""
    if getattr(cfg.train, "obs_norm", False) and is_pixels(env):
        raise RlsubError(
            f"{cfg.source}: train.obs_norm must be false for pixel observations "
            f"(env {spec.name!r}: uint8 {dims.obs_shape}); the policy sees them divided by 255"
        )


def es_device(name: str, env: Any, where: str) -> torch.device:
    """Where ES keeps theta and runs the population's forward (rlsub.core.device). auto:
    CUDA for pixel observations (ConvNet policies) where a GPU is present; flat
    observations stay on the CPU, where the lane kernels run small MLPs faster."""
    if name == "auto" and not is_pixels(env):
        return torch.device("cpu")
    return resolve_device(name, where)


def is_pixels(env: Any) -> bool:
    """uint8 image observations (Atari frames), which are scaled, never normalised."""
    space = env.single_observation_space
    return bool(space.dtype == np.uint8 and len(space.shape or ()) >= 2)


def policy_extra(cfg: ExperimentConfig, dims: Any, norm: RunningNorm | None) -> dict[str, Any]:
    return {
        "env": cfg.env,
        "env_variant": cfg.env_variant,
        "action": "argmax" if dims.discrete else "clip",
        "obs_norm": None if norm is None else norm.state(),
    }
