"""Evolution strategies in z.

OpenAI-style ES (Salimans, Ho, Chen, Sidor, Sutskever 2017), all in the
subspace coordinates z (d of them):

    eps_i ~ N(0, I_d), i = 1..n            antithetic pairs z +- sigma eps_i
    F_i^+-  = mean return of z +- sigma eps_i over K episodes (one batched rollout)
    w       = centred ranks of all 2n returns, in [-0.5, 0.5]
    g       = sum_i (w_i^+ - w_i^-) eps_i / (2 n sigma)
    z      <- Adam(z, -(g) + l2 * z)

with observation normalisation shared by the population (updated during
training rollouts, frozen for evaluation). CMA-ES (pycma) is the option for
small d (`algorithm: cmaes`). The centre z is evaluated every `eval_every`
generations on fresh seeds; training stops early once it reaches the env's
solved score (`stop_when_solved`), and the final policy is evaluated on
`eval_episodes` fresh deterministic episodes.

Training episodes can be capped (`max_steps_per_episode`: Atari games run for
thousands of steps); the centre's evaluations always play full games, so the
learning curve and the final score are full-game scores, and each curve point
also carries the generation's mean capped fitness (`train_mean`). Pixel
observations are scaled to [0, 1], never normalised (obs_norm must be false).
`backend: ray` plays the population on Ray actors (rlsub.es_ray) that rebuild
the perturbations from the noise generator's state, play whole antithetic
pairs with the same seeds (`reseed` included) and send back returns only.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from rlsub.algos.base import Trainer, TrainResult
from rlsub.algos.cmaes import train_cma
from rlsub.algos.es_knowledge import ES_HOOKS
from rlsub.algos.es_setup import MAX_SLOTS, build_setup, policy_extra
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import ALLOWED as DEVICES
from rlsub.core.device import valid as device_valid
from rlsub.core.errors import RlsubError
from rlsub.core.schema import check, doc
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.pipelined import pipelined_rollout
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm


@dataclass(frozen=True)
class ESConfig:
    generations: int = doc("ES generations (upper bound if stop_when_solved)", default=100)
    population: int = doc("individuals per generation (even: antithetic pairs)", default=64)
    episodes_per_member: int = doc("episodes per individual per generation", default=1)
    sigma: float = doc("noise standard deviation in z", default=0.02)
    lr: float = doc("Adam step size on z", default=0.01)
    l2: float = doc("weight decay on z (added to the ES gradient)", default=0.005)
    obs_norm: bool = doc("running observation normalisation", default=True)
    obs_clip: float = doc("clip normalised observations to +-obs_clip", default=5.0)
    eval_every: int = doc("evaluate the centre every this many generations", default=5)
    eval_episodes: int | None = doc(
        "final evaluation episodes (null: the env spec's)", default=None
    )
    stop_when_solved: bool = doc(
        "stop once the centre's evaluation reaches the solved score", default=True
    )
    threads: int = doc("torch threads for the policy forward", default=1)
    max_steps_per_episode: int | None = doc(
        "cap on agent steps of each training episode (its return so far is the fitness; "
        "null: play to the env's episode end); the centre's evaluations (curve and final "
        "score) always play full games",
        default=None,
    )
    env_threads: int | None = doc(
        "emulator threads of an ale vector env (null: ale-py's choice, one per core)",
        default=None,
    )
    bn_reference: int = doc(
        "networks with BatchNorm: observations of random play whose statistics become the "
        "BatchNorm statistics at theta0, then frozen (a fixed form of the original ES's "
        "virtual batch norm; 0: keep the init statistics, BatchNorm is then an affine map)",
        default=0,
    )
    pipeline: bool = doc(
        "ale envs: play the population in two vector envs so that emulating one half "
        "overlaps the other half's forward (rlsub.rollout.pipelined_rollout; same results)",
        default=False,
    )
    reseed: bool = doc(
        "seed the slots of every training rollout (seeds drawn per generation; episode k "
        "of every member starts alike: common random numbers). false: seed them in the "
        "first generation only, later resets continue each slot's own RNG (still "
        "deterministic). ale-py reloads the ROM to seed a slot, about 45 ms each on one "
        "core (0.7 s a generation for 16 Pong slots), so the Pong configs use false",
        default=True,
    )
    pair_dtype: Literal["float32", "bfloat16"] = doc(
        "storage of the antithetic pairs' large Linear deltas (ConvNets: es_pong's FC256, "
        "rlsub.rollout.pairs). bfloat16 halves the bytes each step reads (the Pong "
        "forward is bound by them) and rounds each perturbation of those weights to 8 "
        "significant bits (relative error <= 2^-9); the update still uses the exact eps",
        default="float32",
    )
    backend: Literal["local", "ray"] = doc(
        "where the population plays: this process, or Ray actors (rlsub.es_ray)",
        default="local",
    )
    workers: int = doc("Ray actors sharing the population (backend: ray)", default=2)
    ray_address: str | None = doc(
        "Ray cluster address (null: start or join a local Ray)", default=None
    )
    device: str = doc(
        "where theta and the population's forward live: auto, cpu, cuda, cuda:N "
        "(rlsub.core.device). Envs step on the CPU; observations go over once per step "
        "(uint8 for pixels). auto: CUDA for pixel observations (ConvNet policies) where a "
        "GPU is present; flat observations stay on the CPU, whose lane kernels run small "
        "MLPs faster",
        default="auto",
    )

    def __post_init__(self) -> None:
        check(self.generations > 0, f"generations must be > 0, got {self.generations}")
        check(
            self.max_steps_per_episode is None or self.max_steps_per_episode > 0,
            f"max_steps_per_episode must be > 0, got {self.max_steps_per_episode}",
        )
        check(self.workers > 0, f"workers must be > 0, got {self.workers}")
        check(self.bn_reference >= 0, f"bn_reference must be >= 0, got {self.bn_reference}")
        check(not (self.pipeline and self.obs_norm), "pipeline: true needs obs_norm: false")
        check(
            self.backend == "local" or not self.obs_norm,
            "obs_norm: true needs backend: local (running statistics live in one process)",
        )
        check(
            self.population >= 2 and self.population % 2 == 0,
            f"population must be an even number >= 2, got {self.population}",
        )
        check(
            self.episodes_per_member > 0,
            f"episodes_per_member must be > 0, got {self.episodes_per_member}",
        )
        slots = self.population * self.episodes_per_member
        check(
            slots <= MAX_SLOTS,  # every slot is an env and a row of the population's forward
            f"population x episodes_per_member = {slots:,} exceeds the resource limit of "
            f"{MAX_SLOTS:,} env slots per generation",
        )
        check(self.sigma > 0, f"sigma must be > 0, got {self.sigma}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.l2 >= 0, f"l2 must be >= 0, got {self.l2}")
        check(self.obs_clip > 0, f"obs_clip must be > 0, got {self.obs_clip}")
        check(self.eval_every > 0, f"eval_every must be > 0, got {self.eval_every}")
        check(
            self.eval_episodes is None or 0 < self.eval_episodes <= MAX_SLOTS,
            f"eval_episodes must be in 1..{MAX_SLOTS:,}, got {self.eval_episodes}",
        )
        check(self.threads > 0, f"threads must be > 0, got {self.threads}")
        check(device_valid(self.device), f"device must be one of {DEVICES}, got {self.device!r}")


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of x scaled to [-0.5, 0.5]; tied values share their average rank.

    Averaging ties matters for integer returns (CartPole): breaking ties by order
    would turn equal returns into a spurious gradient along the noise.
    """
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    return ranks / max(len(x) - 1, 1) - 0.5


@dataclass
class ESState:
    """Immutable-by-convention ES state: the centre z and Adam moments."""

    z: torch.Tensor  # (d,)
    m: torch.Tensor
    v: torch.Tensor
    t: int = 0


def es_ask(
    state: ESState, half: int, sigma: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Antithetic population: eps (half, d) and Z (2*half, d) = [z + sigma eps; z - sigma eps]."""
    eps = torch.randn(half, state.z.numel(), generator=gen)
    return eps, torch.cat([state.z + sigma * eps, state.z - sigma * eps])


def es_tell(state: ESState, eps: torch.Tensor, fitness: np.ndarray, cfg: ESConfig) -> ESState:
    """One Adam step on z from antithetic fitness (2*half,), higher is better."""
    half = eps.shape[0]
    w = torch.as_tensor(centred_ranks(fitness), dtype=torch.float32)
    g = (w[:half] - w[half:]) @ eps / (2 * half * cfg.sigma)
    grad = -g + cfg.l2 * state.z
    t = state.t + 1
    b1, b2 = 0.9, 0.999
    m = b1 * state.m + (1 - b1) * grad
    v = b2 * state.v + (1 - b2) * grad * grad
    step = cfg.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    z = state.z - step * m / (v.sqrt() + 1e-8)
    return ESState(z, m, v, t)


def train(cfg: ExperimentConfig, d: int | str, seed: int, progress: bool = True) -> TrainResult:
    """ES (or CMA-ES) on cfg.env at subspace dimension d; see the module docstring."""
    es: Any = cfg.train
    torch.set_num_threads(es.threads)
    K = es.episodes_per_member
    if cfg.algorithm == "cmaes":
        return train_cma(cfg, d, seed, progress)
    local = es.backend == "local"
    pipeline = es.pipeline and local
    half = (es.population + 1) // 2  # individuals in the first env when pipelined
    slots = (half if pipeline else es.population) * K if local else 1
    spec, env, dims, seeds, sub = build_setup(cfg, d, seed, slots)
    envs = None
    if pipeline:
        if not hasattr(env, "send"):
            env.close()
            raise RlsubError(f"{cfg.source}: train.pipeline needs an ale env, not {spec.name!r}")
        envs = (env, make_vec_env(spec, (es.population - half) * K, threads=es.env_threads))
    pool = None
    if not local:  # Ray actors hold the population's envs; this process evaluates the centre
        from rlsub.algos.es_ray import RayPopulation

        env.close()
        pool = RayPopulation(cfg, d, seed)
    eval_K = es.eval_episodes or spec.eval_episodes
    eval_env = make_vec_env(spec, eval_K, threads=es.env_threads)
    norm = RunningNorm(dims.obs_shape, es.obs_clip) if es.obs_norm else None
    gen = torch.Generator().manual_seed(seeds["es_noise"])
    rng = np.random.default_rng(seeds["env"])
    eval_rng = np.random.default_rng(seeds["eval"])
    state = ESState(torch.zeros(sub.d), torch.zeros(sub.d), torch.zeros(sub.d))
    curve: list[dict[str, float]] = []
    best = -math.inf
    env_steps = 0
    t0 = time.perf_counter()

    def evaluate(z: torch.Tensor) -> tuple[float, float]:
        res = population_rollout(
            sub, z[None], eval_env, dims, eval_K, int(eval_rng.integers(2**31)), norm
        )
        return float(res.returns.mean()), float(res.returns.std())

    pair_dtype = getattr(torch, es.pair_dtype)  # storage of the pairs' large deltas
    bar = tqdm(  # advanced by hand each generation: it never lags behind the log lines
        total=es.generations, desc=f"ES d={sub.d}", disable=not progress, leave=False
    )
    capped = slot_steps = 0
    for g in range(es.generations):
        noise_state = gen.get_state()  # Ray actors rebuild eps from it
        eps, Z = es_ask(state, es.population // 2, es.sigma, gen)
        roll_seed = int(rng.integers(2**31))
        seed_now = roll_seed if es.reseed or g == 0 else None
        pairs = (state.z, es.sigma * eps, pair_dtype)  # Z = [z + sigma eps; z - sigma eps]
        if pool is not None:
            res = pool.rollout(state.z, noise_state, seed_now)  # whole pairs per actor
        elif envs is not None:
            res = pipelined_rollout(
                sub, Z, envs, dims, K, seed_now, es.max_steps_per_episode, pairs=pairs
            )
        else:
            res = population_rollout(
                sub, Z, env, dims, K, seed_now, norm, True, es.max_steps_per_episode, pairs=pairs
            )
        env_steps += res.env_steps  # useful steps: of episodes still playing
        slot_steps += res.slot_steps  # simulated (CartPole's fused loop: the same)
        capped += res.capped
        fitness = res.returns.mean(1)
        if not np.all(np.isfinite(fitness)):
            raise FloatingPointError(f"non-finite return at generation {g}")
        state = es_tell(state, eps, fitness, es)
        if not torch.isfinite(state.z).all():
            raise FloatingPointError(f"z diverged at generation {g}")
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
            mean, _ = evaluate(state.z)
            best = max(best, mean)
            curve.append(
                {
                    "step": env_steps,
                    "value": mean,
                    "generation": g + 1,
                    "train_mean": float(fitness.mean()),  # capped episodes, perturbed members
                }
            )
            if progress:  # one line per evaluation: a trail in the log if the run is killed
                bar.write(
                    f"generation {g + 1}: centre {mean:.2f} over {eval_K} episodes, "
                    f"population mean {fitness.mean():.2f}, env steps {env_steps:,}, "
                    f"{time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                )
            if es.stop_when_solved and mean >= spec.solved_score:
                break
    bar.close()
    if pool is not None:
        pool.close()
    else:
        for e in envs or (env,):
            e.close()
    final = evaluate(state.z)
    eval_env.close()
    steps = (env_steps, slot_steps, capped)
    return es_result(cfg, sub, state, spec, dims, norm, final, best, steps, curve)


def es_result(
    cfg: ExperimentConfig,
    sub: Any,
    state: ESState,
    spec: Any,
    dims: Any,
    norm: RunningNorm | None,
    final: tuple[float, float],
    best: float,
    steps: tuple[int, int, int],
    curve: list[dict[str, float]],
) -> TrainResult:
    """The TrainResult of a finished ES trial (z copied into its Subspace); `final` is the
    final evaluation's (mean, std), `steps` (useful env steps, slot steps simulated,
    capped episodes) of the training rollouts."""
    env_steps, slot_steps, capped = steps
    es: Any = cfg.train
    with torch.no_grad():
        sub.z.copy_(state.z)
    return TrainResult(
        final_eval_mean=final[0],
        final_eval_std=final[1],
        best_eval_mean=max(best, final[0]),
        D=sub.D,
        d=sub.d,
        env_steps=env_steps,
        curve=curve,
        solved_score=spec.solved_score,
        subspace=sub,
        extra=policy_extra(cfg, dims, norm),
        info={
            "generations": state.t,
            "eval_episodes": es.eval_episodes or spec.eval_episodes,
            "max_steps_per_episode": es.max_steps_per_episode,
            "capped_episodes": capped,
            "slot_steps": slot_steps,
            "backend": es.backend,
        },
    )


ES = Trainer(ESConfig, train, **ES_HOOKS)
