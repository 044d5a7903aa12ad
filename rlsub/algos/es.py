"""OpenAI-ES in z: its settings (`ESConfig`) and its ask/tell strategy (`OpenAIES`).

OpenAI-style ES (Salimans, Ho, Chen, Sidor, Sutskever 2017), all in the
subspace coordinates z (d of them):

    eps_i ~ N(0, I_d), i = 1..n            antithetic pairs z +- sigma eps_i
    F_i^+-  = mean return of z +- sigma eps_i over K episodes (one batched rollout)
    w       = centred ranks of all 2n returns, in [-0.5, 0.5]
    g       = sum_i (w_i^+ - w_i^-) eps_i / (2 n sigma)
    z      <- Adam(z, -(g) + l2 * z)

The generation loop (rlsub.algos.es_loop) runs this strategy as it runs CMA-ES
(rlsub.algos.cmaes): observation normalisation shared by the population
(updated during training rollouts, frozen for evaluation), the centre evaluated
every `eval_every` generations on fresh seeds, an early stop once it reaches the
env's solved score (`stop_when_solved`), the final evaluation on
`eval_episodes` fresh episodes, and checkpoints of long trials.

Training episodes can be capped (`max_steps_per_episode`: Atari games run for
thousands of steps); the centre's evaluations always play full games, so the
learning curve and the final score are full-game scores, and each curve point
also carries the generation's mean capped fitness (`train_mean`). Pixel
observations are scaled to [0, 1], never normalised (obs_norm must be false).
`backend: ray` plays the population on Ray actors (rlsub.algos.es_ray) that
redraw the perturbations from the noise generator's state (`draw_noise`), play
whole antithetic pairs with the same seeds (`reseed` included) and send back
returns only.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from rlsub.algos.base import Trainer
from rlsub.algos.es_knowledge import ES_HOOKS
from rlsub.algos.es_loop import Asked, draw_noise
from rlsub.algos.es_setup import MAX_SLOTS
from rlsub.algos.es_solo import train
from rlsub.core.device import ALLOWED as DEVICES
from rlsub.core.device import valid as device_valid
from rlsub.core.schema import check, doc


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
    reseed: bool | int = doc(
        "seed the slots of every training rollout (seeds drawn per generation; episode k "
        "of every member starts alike: common random numbers). false: seed them in the "
        "first generation only, later resets continue each slot's own RNG (still "
        "deterministic). N: seed them every N generations (0, N, 2N, ...), continue in "
        "between. ale-py reloads the ROM to seed a slot, about 45 ms each on one core (0.7 "
        "s a generation for 16 Pong slots), so the Pong configs use 10. A trial writes "
        "checkpoints (rlsub.core.checkpoint) only where slots are seeded next: every "
        "generation with true, every N with N, never with false",
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
        "where the population plays: this process, or Ray actors (rlsub.algos.es_ray)",
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
        check(
            isinstance(self.reseed, bool) or 0 < self.reseed <= self.generations,
            f"reseed must be true, false or a number of generations in 1..generations "
            f"({self.generations}), got {self.reseed}",
        )
        check(device_valid(self.device), f"device must be one of {DEVICES}, got {self.device!r}")

    def strategy(self) -> OpenAIES:
        """The ask/tell strategy these settings describe (rlsub.algos.es_loop runs it)."""
        return OpenAIES(self)


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
    eps = draw_noise(gen, half, state.z.numel())
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


@dataclass
class OpenAIESState:
    """A trial's OpenAI-ES state: Adam on z and the noise generator."""

    adam: ESState
    gen: torch.Generator


class OpenAIES:
    """OpenAI-ES as an ask/tell strategy for the generation loop (rlsub.algos.es_loop)."""

    name = "openai_es"
    label = "ES"
    curve_train_mean = True  # curve points carry the generation's mean capped fitness

    def __init__(self, cfg: ESConfig) -> None:
        self.cfg = cfg

    def population(self, d: int) -> int:
        return self.cfg.population

    def init(self, d: int, noise_seed: int) -> OpenAIESState:
        zeros = torch.zeros(d)
        adam = ESState(zeros, zeros.clone(), zeros.clone())
        return OpenAIESState(adam, torch.Generator().manual_seed(noise_seed))

    def ask(self, state: OpenAIESState) -> Asked:
        noise_state = state.gen.get_state()  # Ray actors redraw eps from it
        eps, Z = es_ask(state.adam, self.cfg.population // 2, self.cfg.sigma, state.gen)
        pairs = (state.adam.z, self.cfg.sigma * eps, getattr(torch, self.cfg.pair_dtype))
        return Asked(Z, state.adam.z, eps, noise_state, pairs)

    def tell(self, state: OpenAIESState, asked: Asked, fitness: np.ndarray) -> OpenAIESState:
        return OpenAIESState(es_tell(state.adam, asked.eps, fitness, self.cfg), state.gen)

    def mean(self, state: OpenAIESState) -> torch.Tensor:
        return state.adam.z

    def context(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def save(self, state: OpenAIESState) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        a = state.adam
        tensors = {"z": a.z, "m": a.m, "v": a.v, "noise": state.gen.get_state()}
        return {"t": a.t}, tensors

    def load(
        self, d: int, noise_seed: int, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> OpenAIESState:
        gen = torch.Generator()
        gen.set_state(tensors["noise"])
        adam = ESState(tensors["z"], tensors["m"], tensors["v"], int(meta["t"]))
        if adam.z.shape != (d,):
            raise ValueError(f"checkpoint holds z of shape {tuple(adam.z.shape)}, d = {d}")
        return OpenAIESState(adam, gen)

    def info(
        self, state: OpenAIESState, eval_episodes: int, capped: int, slot_steps: int
    ) -> dict[str, Any]:
        return {
            "generations": state.adam.t,
            "eval_episodes": eval_episodes,
            "max_steps_per_episode": self.cfg.max_steps_per_episode,
            "capped_episodes": capped,
            "slot_steps": slot_steps,
            "backend": self.cfg.backend,
        }


ES = Trainer(ESConfig, train, checkpoints=True, **ES_HOOKS)
