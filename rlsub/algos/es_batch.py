"""Several ES trials of one config as one batched job: `train_batch(cfg, jobs)`.

A sweep is many small trials (CartPole ES: 5 d x 5 seeds + baselines, a second
or so each). Run one by one, each generation's rollout is one compiled call
over 64 slots, and the fixed cost per call (building theta, the lane weights,
Python) is a large share. Here the live trials advance generation by generation
in lockstep, and each generation is ONE rollout (`rlsub.rollout.fused`) over the
slots of every trial: trial t's lanes carry its own theta (its own projection
and d), its own observation statistics (a group of the kernel) and its own
start seeds. Each trial keeps its own noise generator, env and eval seed
streams, Adam state, curve, stop rule and record, and draws from them in the
order `rlsub.algos.es.train` does, so every trial's result equals its solo run
bit for bit (tests/test_es_batch.py): the generation loop is the solo trials' own
(rlsub.algos.es_loop.run_generations), with `FusedPlayer` as the player. Its
evaluations (every `eval_every` generations and the final one) are batched the
same way. A trial that stops (solved, or its generations spent) leaves the
batch; the rest go on.

It runs where the fused kernel does: algorithm es, backend local, MLP policies
on CartPole (gymnasium's native vector env), reseed true, no pipeline.
`batchable(cfg)` says why not otherwise; the sweep then runs trials one by one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlsub.algos.base import TrainResult
from rlsub.algos.es import ESConfig
from rlsub.algos.es_loop import Asked, Run, run_generations, start_run
from rlsub.core.config import ExperimentConfig
from rlsub.envs.spec import load_env_spec
from rlsub.rollout import fused, lanes
from rlsub.rollout.slots import RolloutResult


def batchable(cfg: ExperimentConfig) -> str | None:
    """None when `train_batch` can run cfg's trials together, else the reason it cannot."""
    es: Any = cfg.train
    if not isinstance(es, ESConfig):
        return f"algorithm {cfg.algorithm!r} (batched trials: es only)"
    if es.backend != "local" or es.pipeline or es.reseed is not True:
        return "batched trials need train.backend local, pipeline false and reseed true"
    if cfg.network.name != "mlp":
        return f"network {cfg.network.name!r} (batched trials: mlp only)"
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    if spec.fast_path != "cartpole":  # declared by the spec (rlsub.envs.spec)
        return f"env {spec.name!r} (batched trials: CartPole, whose physics runs in the kernel)"
    return None


class FusedPlayer:
    """Plays every run's population (and evaluates every centre) in one fused rollout."""

    def __init__(self, K: int, eval_K: int) -> None:
        self.K, self.eval_K = K, eval_K

    def _play(
        self, runs: list[Run], Zs: list[torch.Tensor], K: int, seeds: list[int], update: bool,
        cap: Any,
    ) -> list[RolloutResult]:  # fmt: skip
        """One fused rollout of every run's population Zs[t] (K episodes each from seeds[t] + k)."""
        ws = [lanes.lane_weights(r.setup.sub, Z, K) for r, Z in zip(runs, Zs, strict=True)]
        sizes = [w.shape[1] for w in ws]
        group = np.repeat(np.arange(len(runs)), sizes)
        slot_seeds = [
            s + k for s, Z in zip(seeds, Zs, strict=True) for _ in range(len(Z)) for k in range(K)
        ]
        s0 = runs[0].setup
        norms = lanes.LaneNorms([r.norm for r in runs], group, s0.dims.obs_shape[0], update)
        w = np.concatenate(ws, 1)
        rets, lens, _, capped = fused.rollout(
            s0.sub.module, w, s0.env, s0.dims, slot_seeds, norms, cap, sizes
        )
        out = []
        for Z, n, b in zip(Zs, sizes, np.cumsum(sizes), strict=True):
            useful = int(lens[b - n : b].sum())  # the fused loop simulates only live slots
            out.append(
                RolloutResult(
                    returns=rets[b - n : b].reshape(len(Z), K),
                    lengths=lens[b - n : b].reshape(len(Z), K),
                    env_steps=useful,
                    slot_steps=useful,
                    capped=int(capped[b - n : b].sum()),
                )
            )
        return out

    def play(
        self, runs: list[Run], asked: list[Asked], seeds: list[int | None], cap: int | None
    ) -> list[RolloutResult]:
        assert all(s is not None for s in seeds), "batched trials seed every generation"
        return self._play(runs, [a.Z for a in asked], self.K, seeds, True, cap)  # type: ignore[arg-type]

    def evaluate(
        self, runs: list[Run], centres: list[torch.Tensor], seeds: list[int]
    ) -> list[tuple[float, float]]:
        played = self._play(runs, [z[None] for z in centres], self.eval_K, seeds, False, None)
        return [(float(p.returns.mean()), float(p.returns.std())) for p in played]

    def close(self) -> None:
        return None


def train_batch(
    cfg: ExperimentConfig, jobs: list[tuple[Any, int]], progress: bool = True
) -> list[TrainResult | BaseException]:
    """ES trials (d, seed) of one config in lockstep (module docstring); per job, its
    TrainResult or the exception that ended it (the others go on)."""
    es: Any = cfg.train
    torch.set_num_threads(es.threads)
    strategy = es.strategy()
    runs = []
    for d, seed in jobs:
        run = start_run(cfg, strategy, d, seed, 1)  # the env only lends its physics constants
        if not (fused.supported(run.setup.env) and lanes.supported(run.setup.sub, run.setup.dims)):
            run.setup.close()
            raise RuntimeError(
                f"{cfg.source}: these trials cannot be batched (rlsub.rollout.fused)"
            )
        runs.append(run)
    player = FusedPlayer(
        es.episodes_per_member, es.eval_episodes or runs[0].setup.spec.eval_episodes
    )
    try:
        run_generations(cfg, strategy, runs, player, progress, f"ES batch of {len(runs)}")
    finally:
        for r in runs:
            r.setup.close()
    return [
        r.result if r.result is not None else r.error or RuntimeError("no result") for r in runs
    ]
