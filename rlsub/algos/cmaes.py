"""CMA-ES in the subspace (pycma, `algorithm: cmaes`): for small d, the full covariance of z.

Imports: algos.es_setup, rollout, envs, core.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlsub.algos.base import Trainer, TrainResult
from rlsub.algos.es_knowledge import CMAES_HOOKS
from rlsub.algos.es_setup import MAX_SLOTS, build_setup, policy_extra
from rlsub.core.config import ExperimentConfig
from rlsub.core.schema import check, doc
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm


@dataclass(frozen=True)
class CMAESConfig:
    generations: int = doc("CMA-ES generations (upper bound if stop_when_solved)", default=100)
    population: int | None = doc("population size (null: pycma's default 4 + 3 ln d)", default=None)
    episodes_per_member: int = doc("episodes per individual per generation", default=1)
    sigma0: float = doc("initial step size in z", default=0.5)
    obs_norm: bool = doc("running observation normalisation", default=True)
    obs_clip: float = doc("clip normalised observations to +-obs_clip", default=5.0)
    eval_every: int = doc("evaluate the mean every this many generations", default=5)
    eval_episodes: int | None = doc(
        "final evaluation episodes (null: the env spec's)", default=None
    )
    stop_when_solved: bool = doc("stop once the evaluation reaches the solved score", default=True)
    threads: int = doc("torch threads for the policy forward", default=1)

    def __post_init__(self) -> None:
        check(self.generations > 0, f"generations must be > 0, got {self.generations}")
        check(
            self.population is None or self.population >= 2,
            f"population must be >= 2, got {self.population}",
        )
        check(
            self.episodes_per_member > 0,
            f"episodes_per_member must be > 0, got {self.episodes_per_member}",
        )
        slots = (self.population or 1) * self.episodes_per_member
        check(
            slots <= MAX_SLOTS and (self.eval_episodes or 1) <= MAX_SLOTS,
            f"population x episodes_per_member = {slots:,} (or eval_episodes) exceeds the "
            f"resource limit of {MAX_SLOTS:,} env slots per generation",
        )
        check(self.sigma0 > 0, f"sigma0 must be > 0, got {self.sigma0}")
        check(self.eval_every > 0, f"eval_every must be > 0, got {self.eval_every}")


def train_cma(cfg: ExperimentConfig, d: int | str, seed: int, progress: bool) -> TrainResult:
    """One CMA-ES trial, pycma's linear algebra on one BLAS thread: OpenBLAS's results
    depend on its thread count (InvertedPendulum direct trials changed with 1 vs 2)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _train_cma(cfg, d, seed, progress)


def _train_cma(cfg: ExperimentConfig, d: int | str, seed: int, progress: bool) -> TrainResult:
    import cma

    es: Any = cfg.train
    K = es.episodes_per_member
    probe = build_setup(cfg, d, seed, 1)
    probe[1].close()
    popsize = es.population or 4 + int(3 * math.log(probe[4].d))
    spec, env, dims, seeds, sub = build_setup(cfg, d, seed, popsize * K)
    eval_K = es.eval_episodes or spec.eval_episodes
    eval_env = make_vec_env(spec, eval_K)
    norm = RunningNorm(dims.obs_shape, es.obs_clip) if es.obs_norm else None
    rng = np.random.default_rng(seeds["env"])
    eval_rng = np.random.default_rng(seeds["eval"])
    opts = {"popsize": popsize, "seed": seeds["es_noise"] % (2**31 - 2) + 1, "verbose": -9}
    cmaes = cma.CMAEvolutionStrategy(np.zeros(sub.d), es.sigma0, opts)
    curve: list[dict[str, float]] = []
    best, env_steps, slot_steps = -math.inf, 0, 0

    def evaluate(z: torch.Tensor) -> tuple[float, float]:
        res = population_rollout(
            sub, z[None], eval_env, dims, eval_K, int(eval_rng.integers(2**31)), norm
        )
        return float(res.returns.mean()), float(res.returns.std())

    bar = tqdm(  # advanced by hand each generation: it never lags behind the log
        total=es.generations, desc=f"CMA-ES d={sub.d}", disable=not progress, leave=False
    )
    generations = 0
    t0 = time.perf_counter()
    for g in range(es.generations):
        generations = g + 1
        X = np.asarray(cmaes.ask())
        Z = torch.as_tensor(X, dtype=torch.float32)
        res = population_rollout(
            sub, Z, env, dims, K, int(rng.integers(2**31)), norm, update_norm=True
        )
        env_steps += res.env_steps  # useful steps: of episodes still playing
        slot_steps += res.slot_steps  # simulated
        fitness = res.returns.mean(1)
        cmaes.tell(list(X), list(-fitness))  # pycma minimises
        rate = env_steps / (time.perf_counter() - t0)
        bar.set_postfix(
            mean=f"{fitness.mean():.1f}",
            best=f"{fitness.max():.1f}",
            useful_steps_s=f"{rate:,.0f}",
            useful=f"{env_steps / max(slot_steps, 1):.0%}",
            refresh=False,
        )
        bar.update(1)
        if (g + 1) % es.eval_every == 0 or g + 1 == es.generations:
            mean, _ = evaluate(torch.as_tensor(cmaes.mean, dtype=torch.float32))
            best = max(best, mean)
            curve.append({"step": env_steps, "value": mean, "generation": g + 1})
            if es.stop_when_solved and mean >= spec.solved_score:
                break
    bar.close()
    env.close()
    z = torch.as_tensor(cmaes.mean, dtype=torch.float32)
    with torch.no_grad():
        sub.z.copy_(z)
    final_mean, final_std = evaluate(z)
    eval_env.close()
    return TrainResult(
        final_eval_mean=final_mean,
        final_eval_std=final_std,
        best_eval_mean=max(best, final_mean),
        D=sub.D,
        d=sub.d,
        env_steps=env_steps,
        curve=curve,
        solved_score=spec.solved_score,
        subspace=sub,
        extra=policy_extra(cfg, dims, norm),
        info={"eval_episodes": eval_K, "generations": generations, "slot_steps": slot_steps},
    )


CMAES = Trainer(CMAESConfig, train_cma, **CMAES_HOOKS)
