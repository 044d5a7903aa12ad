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
bit for bit (tests/test_es_batch.py). Its evaluations (every `eval_every`
generations and the final one) are batched the same way. A trial that stops
(solved, or its generations spent) leaves the batch; the rest go on.

It runs where the fused kernel does: algorithm es, backend local, MLP policies
on CartPole (gymnasium's native vector env), reseed true, no pipeline.
`batchable(cfg)` says why not otherwise; the sweep then runs trials one by one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlsub.algos.base import TrainResult
from rlsub.algos.es import ESState, es_ask, es_result, es_tell
from rlsub.algos.es_setup import build_setup
from rlsub.core.config import ExperimentConfig
from rlsub.envs.spec import load_env_spec
from rlsub.rollout import fused, lanes
from rlsub.rollout.slots import RunningNorm


def batchable(cfg: ExperimentConfig) -> str | None:
    """None when `train_batch` can run cfg's trials together, else the reason it cannot."""
    es: Any = cfg.train
    if cfg.algorithm != "es":
        return f"algorithm {cfg.algorithm!r} (batched trials: es only)"
    if es.backend != "local" or es.pipeline or not es.reseed:
        return "batched trials need train.backend local, pipeline false and reseed true"
    if cfg.network.name != "mlp":
        return f"network {cfg.network.name!r} (batched trials: mlp only)"
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    if not (spec.vector == "native" and spec.id.startswith("CartPole")):
        return f"env {spec.name!r} (batched trials: CartPole, whose physics runs in the kernel)"
    return None


@dataclass
class _Run:
    """One trial of the batch: what `rlsub.algos.es.train` keeps in its locals."""

    d: Any
    seed: int
    setup: tuple[Any, ...]  # (spec, env, dims, seeds, sub) of build_setup
    state: ESState
    gen: torch.Generator
    rng: np.random.Generator
    eval_rng: np.random.Generator
    norm: RunningNorm | None
    curve: list[dict[str, float]] = field(default_factory=list)
    best: float = -math.inf
    env_steps: int = 0
    capped: int = 0
    train_mean: float = math.nan  # the last generation's mean fitness
    error: BaseException | None = None
    result: TrainResult | None = None

    @property
    def sub(self) -> Any:
        return self.setup[4]


def _start(cfg: ExperimentConfig, d: Any, seed: int) -> _Run:
    es: Any = cfg.train
    setup = build_setup(cfg, d, seed, 1)  # the env only lends its physics constants
    spec, env, dims, seeds, sub = setup
    if not (fused.supported(env) and lanes.supported(sub, dims)):
        env.close()
        raise RuntimeError(f"{cfg.source}: these trials cannot be batched (rlsub.rollout.fused)")
    norm = RunningNorm(dims.obs_shape, es.obs_clip) if es.obs_norm else None
    zeros = torch.zeros(sub.d)
    return _Run(
        d, seed, setup, ESState(zeros, zeros.clone(), zeros.clone()),
        torch.Generator().manual_seed(seeds["es_noise"]), np.random.default_rng(seeds["env"]),
        np.random.default_rng(seeds["eval"]), norm,
    )  # fmt: skip


def _play(
    runs: list[_Run], Zs: list[torch.Tensor], K: int, seeds: list[int], update: bool, cap: Any
) -> list[tuple[np.ndarray, int, int]]:
    """One fused rollout of every run's population Zs[t] (K episodes each from seeds[t] + k):
    per run (returns (N, K), useful steps, capped episodes)."""
    ws = [lanes.lane_weights(r.sub, Z, K) for r, Z in zip(runs, Zs, strict=True)]
    sizes = [w.shape[1] for w in ws]
    group = np.repeat(np.arange(len(runs)), sizes)
    slot_seeds = [
        s + k for s, Z in zip(seeds, Zs, strict=True) for _ in range(len(Z)) for k in range(K)
    ]
    spec, env, dims, _, sub = runs[0].setup
    norms = lanes.LaneNorms([r.norm for r in runs], group, dims.obs_shape[0], update)
    w = np.concatenate(ws, 1)
    rets, lens, _, capped = fused.rollout(sub.module, w, env, dims, slot_seeds, norms, cap, sizes)
    ends = np.cumsum(sizes)
    return [
        (
            rets[b - n : b].reshape(len(Z), K),
            int(lens[b - n : b].sum()),
            int(capped[b - n : b].sum()),
        )
        for Z, n, b in zip(Zs, sizes, ends, strict=True)
    ]


def _evaluate(runs: list[_Run], eval_K: int) -> list[tuple[float, float]]:
    """Every run's centre on eval_K fresh episodes (one batched rollout; statistics frozen)."""
    seeds = [int(r.eval_rng.integers(2**31)) for r in runs]
    played = _play(runs, [r.state.z[None] for r in runs], eval_K, seeds, False, None)
    return [(float(ret.mean()), float(ret.std())) for ret, _, _ in played]


def train_batch(
    cfg: ExperimentConfig, jobs: list[tuple[Any, int]], progress: bool = True
) -> list[TrainResult | BaseException]:
    """ES trials (d, seed) of one config in lockstep (module docstring); per job, its
    TrainResult or the exception that ended it (the others go on)."""
    es: Any = cfg.train
    torch.set_num_threads(es.threads)
    K, half = es.episodes_per_member, es.population // 2
    runs = [_start(cfg, d, seed) for d, seed in jobs]
    spec = runs[0].setup[0]
    eval_K = es.eval_episodes or spec.eval_episodes
    live = list(runs)
    bar = tqdm(
        total=es.generations, desc=f"ES batch of {len(runs)}", disable=not progress, leave=False
    )
    t0 = time.perf_counter()
    for g in range(es.generations):
        asked = [es_ask(r.state, half, es.sigma, r.gen) for r in live]
        seeds = [int(r.rng.integers(2**31)) for r in live]
        played = _play(live, [Z for _, Z in asked], K, seeds, True, es.max_steps_per_episode)
        for r, (eps, _), (returns, useful, n_cap) in zip(live, asked, played, strict=True):
            r.env_steps += useful
            r.capped += n_cap
            fitness = returns.mean(1)
            r.train_mean = float(fitness.mean())
            if not np.all(np.isfinite(fitness)):
                r.error = FloatingPointError(f"non-finite return at generation {g}")
                continue
            r.state = es_tell(r.state, eps, fitness, es)
            if not torch.isfinite(r.state.z).all():
                r.error = FloatingPointError(f"z diverged at generation {g}")
        live = [r for r in live if r.error is None]
        if (g + 1) % es.eval_every == 0 or g + 1 == es.generations:
            for r, (mean, _) in zip(live, _evaluate(live, eval_K), strict=True):
                r.best = max(r.best, mean)
                r.curve.append(
                    {
                        "step": r.env_steps,
                        "value": mean,
                        "generation": g + 1,
                        "train_mean": r.train_mean,
                    }
                )
            stopping = [
                r for r in live
                if g + 1 == es.generations or (es.stop_when_solved and r.curve[-1]["value"] >= spec.solved_score)
            ]  # fmt: skip
            _finish(cfg, stopping, eval_K)
            live = [r for r in live if r.result is None]
        steps = sum(r.env_steps for r in runs)
        bar.update(1)
        rate = steps / (time.perf_counter() - t0)
        bar.set_postfix(trials=len(live), useful_steps_s=f"{rate:,.0f}", useful="100%")
        if not live:
            break
    bar.close()
    for r in runs:
        r.setup[1].close()
    return [
        r.result if r.result is not None else r.error or RuntimeError("no result") for r in runs
    ]


def _finish(cfg: ExperimentConfig, runs: list[_Run], eval_K: int) -> None:
    if not runs:
        return
    for r, final in zip(runs, _evaluate(runs, eval_K), strict=True):
        spec, env, dims, _, sub = r.setup
        # the fused loop simulates only slots still playing: slot steps = useful steps
        steps = (r.env_steps, r.env_steps, r.capped)
        r.result = es_result(cfg, sub, r.state, spec, dims, r.norm, final, r.best, steps, r.curve)
