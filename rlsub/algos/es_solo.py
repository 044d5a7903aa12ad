"""A solo ES trial (`train`, any strategy) and where its populations play
(rlsub.algos.es_loop.Player), chosen once before the generation loop:

- `LocalPlayer`: one vector env in this process (`population_rollout`: the compiled
  lane kernels for MLPs on flat observations, the batched torch forward otherwise);
- `PipelinedPlayer`: two ale-py vector envs, so emulating one half overlaps the other
  half's forward (`train.pipeline`; same results);
- `RayPlayer`: Ray actors holding shards of whole antithetic pairs
  (`train.backend: ray`, rlsub.algos.es_ray).

Each evaluates the centre in this process on its own eval env (frozen statistics).
Several trials in one compiled rollout are rlsub.algos.es_batch's player.

Imports: algos.es_loop, algos.es_ray, rollout, envs, core.
"""

from __future__ import annotations

from typing import Any

import torch

from rlsub.algos.base import TrainResult
from rlsub.algos.es_loop import Asked, Player, Run, run_generations, start_run
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import ExperimentConfig
from rlsub.core.errors import RlsubError
from rlsub.envs.vector import fast_path
from rlsub.rollout.pipelined import pipelined_rollout
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RolloutResult


class _EvalEnv:
    """Evaluates a solo trial's centre on `eval_episodes` slots of its own env."""

    def __init__(self, cfg: ExperimentConfig, run: Run) -> None:
        tc: Any = cfg.train
        self.eval_K = tc.eval_episodes or run.setup.spec.eval_episodes
        self.eval_env = run.setup.make_env(cfg, self.eval_K)

    def evaluate(
        self, runs: list[Run], centres: list[torch.Tensor], seeds: list[int]
    ) -> list[tuple[float, float]]:
        (run,), (z,), (seed,) = runs, centres, seeds
        s = run.setup
        res = population_rollout(s.sub, z[None], self.eval_env, s.dims, self.eval_K, seed, run.norm)
        return [(float(res.returns.mean()), float(res.returns.std()))]

    def close(self) -> None:
        self.eval_env.close()


class LocalPlayer(_EvalEnv):
    def __init__(self, cfg: ExperimentConfig, run: Run, population: int) -> None:
        super().__init__(cfg, run)
        self.K = cfg.train.episodes_per_member
        self.env = run.setup.make_env(cfg, population * self.K)

    def play(
        self, runs: list[Run], asked: list[Asked], seeds: list[int | None], cap: int | None
    ) -> list[RolloutResult]:
        (run,), (a,), (seed,) = runs, asked, seeds
        s = run.setup
        res = population_rollout(
            s.sub, a.Z, self.env, s.dims, self.K, seed, run.norm, True, cap, pairs=a.pairs
        )
        return [res]

    def close(self) -> None:
        self.env.close()
        super().close()


class PipelinedPlayer(_EvalEnv):
    def __init__(self, cfg: ExperimentConfig, run: Run, population: int) -> None:
        tc: Any = cfg.train
        self.K = tc.episodes_per_member
        half = (population + 1) // 2  # individuals in the first env
        first = run.setup.make_env(cfg, half * self.K)
        if fast_path(first) != "ale":  # declared by the env's spec
            first.close()
            raise RlsubError(
                f"{cfg.source}: train.pipeline needs an ale env, not {run.setup.spec.name!r}"
            )
        self.envs = (first, run.setup.make_env(cfg, (population - half) * self.K))
        super().__init__(cfg, run)

    def play(
        self, runs: list[Run], asked: list[Asked], seeds: list[int | None], cap: int | None
    ) -> list[RolloutResult]:
        (run,), (a,), (seed,) = runs, asked, seeds
        s = run.setup
        return [pipelined_rollout(s.sub, a.Z, self.envs, s.dims, self.K, seed, cap, pairs=a.pairs)]

    def close(self) -> None:
        for e in self.envs:
            e.close()
        super().close()


class RayPlayer(_EvalEnv):
    def __init__(self, cfg: ExperimentConfig, run: Run) -> None:
        from rlsub.algos.es_ray import RayPopulation

        super().__init__(cfg, run)
        self.pool = RayPopulation(cfg, run.d, run.seed)

    def play(
        self, runs: list[Run], asked: list[Asked], seeds: list[int | None], cap: int | None
    ) -> list[RolloutResult]:
        (a,), (seed,) = asked, seeds
        assert a.centre is not None and a.noise_state is not None, "Ray plays OpenAI-ES only"
        return [self.pool.rollout(a.centre, a.noise_state, seed)]  # whole pairs per actor

    def close(self) -> None:
        self.pool.close()
        super().close()


def make_player(cfg: ExperimentConfig, run: Run, population: int) -> Player:
    """The player `cfg.train` asks for (backend, pipeline), for `population` members."""
    tc: Any = cfg.train
    if getattr(tc, "backend", "local") == "ray":
        return RayPlayer(cfg, run)
    if getattr(tc, "pipeline", False):
        return PipelinedPlayer(cfg, run, population)
    return LocalPlayer(cfg, run, population)


def train(
    cfg: ExperimentConfig,
    d: int | str,
    seed: int,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """One trial of the strategy `cfg.train` describes (`cfg.train.strategy()`), played
    where `cfg.train` says (`make_player`), resumed from
    `checkpoint` where it holds one and checkpointed there as it goes."""
    tc: Any = cfg.train
    strategy: Any = tc.strategy()
    torch.set_num_threads(tc.threads)  # run_trial restores the caller's setting
    with strategy.context():
        run = start_run(cfg, strategy, d, seed, None, checkpoint)
        player = make_player(cfg, run, strategy.population(run.setup.sub.d))
        try:
            desc = f"{strategy.label} d={run.setup.sub.d}"
            run_generations(cfg, strategy, [run], player, progress, desc)
        finally:
            player.close()
    if run.error is not None:
        raise run.error
    assert run.result is not None
    return run.result
