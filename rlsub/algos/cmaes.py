"""CMA-ES in the subspace (pycma, `algorithm: cmaes`): for small d, the full covariance of z.

`CMAStrategy` is pycma as an ask/tell strategy for the generation loop
(rlsub.algos.es_loop), which plays, evaluates, stops and checkpoints it as it does
OpenAI-ES. pycma's state is not kept in a checkpoint (it would need pickle): the
fitness of every generation told is, and a resumed trial rebuilds pycma from its
seed and replays those tells, which draws the same samples and gives the same state
bit for bit (pycma is deterministic given its seed and the fitness it is told).
pycma's linear algebra runs on one BLAS thread: OpenBLAS's results depend on its
thread count (InvertedPendulum direct trials changed with 1 vs 2).

Imports: algos.es_loop, algos.es_solo, algos.es_setup, core.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlsub.algos.base import Trainer
from rlsub.algos.es_knowledge import CMAES_HOOKS
from rlsub.algos.es_loop import Asked
from rlsub.algos.es_setup import MAX_SLOTS
from rlsub.algos.es_solo import train
from rlsub.core.schema import check, doc


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

    def strategy(self) -> CMAStrategy:
        """The ask/tell strategy these settings describe (rlsub.algos.es_loop runs it)."""
        return CMAStrategy(self)


@dataclass
class CMAState:
    """pycma's strategy object and the fitness of every generation told (its checkpoint)."""

    es: Any  # cma.CMAEvolutionStrategy
    told: list[np.ndarray]


class CMAStrategy:
    """CMA-ES (pycma) as an ask/tell strategy; pycma minimises, so it is told -fitness."""

    name = "cmaes"
    label = "CMA-ES"
    curve_train_mean = False

    def __init__(self, cfg: CMAESConfig) -> None:
        self.cfg = cfg

    def population(self, d: int) -> int:
        return self.cfg.population or 4 + int(3 * math.log(d))

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            yield

    def init(self, d: int, noise_seed: int) -> CMAState:
        import cma

        opts = {"popsize": self.population(d), "seed": noise_seed % (2**31 - 2) + 1}
        opts["verbose"] = -9
        return CMAState(cma.CMAEvolutionStrategy(np.zeros(d), self.cfg.sigma0, opts), [])

    def ask(self, state: CMAState) -> Asked:
        X = np.asarray(state.es.ask())
        return Asked(torch.as_tensor(X, dtype=torch.float32), None, X, None, None)

    def tell(self, state: CMAState, asked: Asked, fitness: np.ndarray) -> CMAState:
        state.es.tell(list(asked.eps), list(-fitness))
        state.told.append(np.array(fitness, dtype=np.float64))
        return state

    def mean(self, state: CMAState) -> torch.Tensor:
        return torch.as_tensor(state.es.mean, dtype=torch.float32)

    def save(self, state: CMAState) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        told = np.stack(state.told) if state.told else np.zeros((0, 0))
        return {}, {"told": torch.from_numpy(told)}

    def load(
        self, d: int, noise_seed: int, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> CMAState:
        state = self.init(d, noise_seed)
        for fitness in tensors["told"].numpy():
            self.tell(state, self.ask(state), fitness)
        return state

    def info(
        self, state: CMAState, eval_episodes: int, capped: int, slot_steps: int
    ) -> dict[str, Any]:
        return {
            "eval_episodes": eval_episodes,
            "generations": len(state.told),
            "slot_steps": slot_steps,
        }


CMAES = Trainer(CMAESConfig, train, checkpoints=True, **CMAES_HOOKS)
