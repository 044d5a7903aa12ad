"""A user's own network and trainer, outside rlsub, plugged in by import path only.

    network: {name: "user_plugins:tiny_policy", kwargs: {hidden: 8}}
    algorithm: "user_plugins:HILL_CLIMB"

`tiny_policy` is an ordinary nn.Module builder; rlsub fills `in_dim`/`out_dim` from the
env because its signature names them. `HILL_CLIMB` is (1+1) random search in z, written
with rlsub's public pieces: it is here to show (and test) that a trainer plugs in
without editing rlsub.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlsub.algos.base import Trainer, TrainResult
from rlsub.core.config import ExperimentConfig
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout


class TinyPolicy(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def tiny_policy(in_dim: int, out_dim: int, hidden: int = 8) -> nn.Module:
    return TinyPolicy(in_dim, out_dim, hidden)


@dataclass(frozen=True)
class HillClimbConfig:
    iterations: int = 5
    sigma: float = 0.5
    episodes: int = 2


def hill_climb(
    cfg: ExperimentConfig, d: int | str, seed: int, progress: bool = False
) -> TrainResult:
    hc: HillClimbConfig = cfg.train
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    env = make_vec_env(spec, 2 * hc.episodes)
    dims = env_dims(env)
    seeds = trial_seeds(seed)
    kwargs = policy_network_kwargs(cfg.network.name, cfg.network.kwargs, dims)
    sub = Subspace.from_spec(
        cfg.network.name, kwargs, seeds["theta0"], d, cfg.subspace.projection, seeds["projection"]
    )
    rng = np.random.default_rng(seeds["es_noise"])
    z = torch.zeros(sub.d)
    best, curve, steps = -np.inf, [], 0
    for i in range(hc.iterations):
        cand = z + hc.sigma * torch.as_tensor(rng.standard_normal(sub.d), dtype=torch.float32)
        res = population_rollout(sub, torch.stack([z, cand]), env, dims, hc.episodes, seed + i)
        steps += res.env_steps
        scores = res.returns.mean(1)
        if scores[1] >= scores[0]:
            z = cand
        best = max(best, float(scores.max()))
        curve.append({"step": float(steps), "value": float(scores.max())})
    env.close()
    eval_env = make_vec_env(spec, hc.episodes)
    final = population_rollout(sub, z[None], eval_env, dims, hc.episodes, 10_000).returns[0]
    eval_env.close()
    with torch.no_grad():
        sub.z.copy_(z)
    return TrainResult(
        final_eval_mean=float(final.mean()),
        final_eval_std=float(final.std()),
        best_eval_mean=max(best, float(final.mean())),
        D=sub.D,
        d=sub.d,
        env_steps=steps,
        curve=curve,
        solved_score=spec.solved_score,
        subspace=sub,
    )


HILL_CLIMB = Trainer(HillClimbConfig, hill_climb)
