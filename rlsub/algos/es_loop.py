"""The one generation loop of every evolution strategy (OpenAI-ES, CMA-ES), solo or batched.

A strategy (rlsub.algos.es.OpenAIES, rlsub.algos.cmaes.CMAStrategy) is an ask/tell
object with a state (evosax's shape): `ask(state)` gives a generation's population
Z, `tell(state, asked, fitness)` the next state, `mean(state)` the centre z. A player
(rlsub.algos.es_solo: this process, two pipelined ale envs, Ray actors;
rlsub.algos.es_batch: several trials in one compiled rollout) plays populations and
evaluates centres. It is chosen once, before the loop. The loop owns the rest, for
one trial or many in lockstep:

    per generation and trial: Z = ask; rollout seed from the trial's env stream
      (used where slots are seeded: `reseed`); fitness = mean return over K episodes;
      tell; a non-finite return or centre ends that trial as failed
    every `eval_every` generations (and at the last): the centre on eval_episodes
      fresh episodes (eval stream) -> the curve; stop once solved (stop_when_solved)
    at the stop: the final evaluation and the TrainResult
    where slots are seeded next, when its checkpoint is due: the trial's checkpoint

Every trial draws from its own named seed streams (rlsub.core.seeding) in this order
whether it runs alone or in a batch, so a batched trial equals its solo run, and a
trial resumed from a checkpoint equals its uninterrupted run, bit for bit.

Imports: algos.base, algos.es_setup, rollout, core.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from rlsub.algos.base import TrainResult
from rlsub.algos.es_setup import Setup, build_setup, policy_extra
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import ExperimentConfig
from rlsub.rollout.pairs import PairsArg
from rlsub.rollout.slots import RolloutResult, RunningNorm


@dataclass
class Asked:
    """A generation's population Z (N, d) and what the players and the strategy need of it:
    the centre z, the strategy's own record of what it asked (OpenAI-ES: eps; CMA-ES:
    pycma's samples), the noise generator's state before the draw (Ray actors redraw
    eps from it) and ES's antithetic pairs (z, sigma eps, storage dtype)."""

    Z: torch.Tensor
    centre: torch.Tensor | None
    eps: Any
    noise_state: torch.Tensor | None
    pairs: PairsArg | None


class Strategy(Protocol):
    name: str  # written into checkpoints
    label: str  # for progress bars
    curve_train_mean: bool

    def population(self, d: int) -> int: ...
    def context(self) -> contextlib.AbstractContextManager[None]: ...  # around a trial
    def init(self, d: int, noise_seed: int) -> Any: ...
    def ask(self, state: Any) -> Asked: ...
    def tell(self, state: Any, asked: Asked, fitness: np.ndarray) -> Any: ...
    def mean(self, state: Any) -> torch.Tensor: ...
    def save(self, state: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]: ...
    def load(
        self, d: int, noise_seed: int, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> Any: ...
    def info(self, state: Any, eval_episodes: int, capped: int, slot_steps: int) -> dict: ...


@dataclass
class Run:
    """One trial in the loop: its setup, strategy state, seed streams and record so far."""

    d: Any
    seed: int
    setup: Setup
    state: Any
    rng: np.random.Generator  # rollout seeds (stream "env")
    eval_rng: np.random.Generator  # evaluation seeds (stream "eval")
    norm: RunningNorm | None
    checkpoint: Checkpoint | None = None
    generation: int = 0  # generations told
    resumed_at: int = 0  # the generation its checkpoint held (0: started afresh)
    curve: list[dict[str, float]] = field(default_factory=list)
    best: float = -math.inf
    env_steps: int = 0  # useful steps: of episodes still playing
    slot_steps: int = 0  # slot steps simulated
    capped: int = 0  # training episodes cut at max_steps_per_episode
    train_mean: float = math.nan  # the last generation's mean fitness
    fitness_max: float = math.nan
    error: BaseException | None = None
    result: TrainResult | None = None


class Player(Protocol):
    def play(
        self, runs: list[Run], asked: list[Asked], seeds: list[int | None], cap: int | None
    ) -> list[RolloutResult]: ...
    def evaluate(
        self, runs: list[Run], centres: list[torch.Tensor], seeds: list[int]
    ) -> list[tuple[float, float]]: ...
    def close(self) -> None: ...


def start_run(
    cfg: ExperimentConfig,
    strategy: Strategy,
    d: Any,
    seed: int,
    slots: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> Run:
    """A trial's setup (env of `slots` slots, or none) and its state: fresh, or its
    checkpoint's where one is usable."""
    setup = build_setup(cfg, d, seed, slots)
    tc: Any = cfg.train
    norm = RunningNorm(setup.dims.obs_shape, tc.obs_clip) if tc.obs_norm else None
    seeds, sub_d = setup.seeds, setup.sub.d
    run = Run(
        d, seed, setup, strategy.init(sub_d, seeds["es_noise"]),
        np.random.default_rng(seeds["env"]), np.random.default_rng(seeds["eval"]), norm,
        checkpoint,
    )  # fmt: skip
    loaded = checkpoint.load() if checkpoint is not None else None
    if loaded is not None:
        try:
            _restore(run, strategy, *loaded)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # damaged: afresh
            print(f"{checkpoint.path}: checkpoint not usable ({exc}); starting afresh", file=sys.stderr)  # type: ignore[union-attr]  # fmt: skip
            setup.close()
            return start_run(cfg, strategy, d, seed, slots, None)
    return run


def _save(run: Run, strategy: Strategy) -> None:
    assert run.checkpoint is not None
    smeta, stensors = strategy.save(run.state)
    meta = {
        "strategy": strategy.name,
        "strategy_meta": smeta,
        "generation": run.generation,
        "rng": run.rng.bit_generator.state,
        "eval_rng": run.eval_rng.bit_generator.state,
        "curve": run.curve,
        "best": run.best,
        "counts": [run.env_steps, run.slot_steps, run.capped],
        "train_mean": run.train_mean,
        "norm_count": None if run.norm is None else run.norm.count,
    }
    tensors = {f"strategy.{k}": v for k, v in stensors.items()}
    if run.norm is not None:
        tensors["norm.mean"] = torch.from_numpy(np.asarray(run.norm.mean, dtype=np.float64))
        tensors["norm.var"] = torch.from_numpy(np.asarray(run.norm.var, dtype=np.float64))
    run.checkpoint.save(meta, tensors)


def _restore(
    run: Run, strategy: Strategy, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> None:
    if meta["strategy"] != strategy.name:
        raise ValueError(f"written by {meta['strategy']}, not {strategy.name}")
    own = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("strategy.")}
    run.state = strategy.load(
        run.setup.sub.d, run.setup.seeds["es_noise"], meta["strategy_meta"], own
    )
    run.rng.bit_generator.state = meta["rng"]
    run.eval_rng.bit_generator.state = meta["eval_rng"]
    run.generation = run.resumed_at = int(meta["generation"])
    run.curve, run.best = list(meta["curve"]), float(meta["best"])
    run.env_steps, run.slot_steps, run.capped = (int(x) for x in meta["counts"])
    run.train_mean = float(meta["train_mean"])
    if run.norm is not None:
        run.norm.mean = tensors["norm.mean"].numpy().copy()
        run.norm.var = tensors["norm.var"].numpy().copy()
        run.norm.count = float(meta["norm_count"])


def draw_noise(gen: torch.Generator, half: int, d: int) -> torch.Tensor:
    """OpenAI-ES's perturbations eps (half, d) for a generation: the one place they are
    drawn (rlsub.algos.es asks with it; Ray actors redraw them from the generator's state)."""
    return torch.randn(half, d, generator=gen)


def seeds_slots(reseed: bool | int, generation: int) -> bool:
    """Whether generation `generation`'s training rollout seeds its slots (`reseed`)."""
    if isinstance(reseed, bool):
        return reseed or generation == 0
    return generation % reseed == 0


def run_generations(
    cfg: ExperimentConfig,
    strategy: Strategy,
    runs: list[Run],
    player: Player,
    progress: bool,
    desc: str,
) -> None:
    """Advance `runs` in lockstep until each has its result or its error (module docstring)."""
    tc: Any = cfg.train
    reseed = getattr(tc, "reseed", True)
    cap = getattr(tc, "max_steps_per_episode", None)
    spec = runs[0].setup.spec
    eval_K = tc.eval_episodes or spec.eval_episodes
    live = [r for r in runs if r.result is None and r.error is None]
    first = min((r.generation for r in live), default=0)
    bar = tqdm(  # advanced by hand each generation: it never lags behind the log lines
        total=tc.generations, initial=first, desc=desc, disable=not progress, leave=False
    )
    if first and progress:
        bar.write(f"resumed from generation {first} (checkpoint)", file=sys.stderr)
    t0, steps0 = time.perf_counter(), sum(r.env_steps for r in runs)
    while live:
        asked = [strategy.ask(r.state) for r in live]
        seeds = [int(r.rng.integers(2**31)) for r in live]
        seeds_now = [
            s if seeds_slots(reseed, r.generation) else None
            for r, s in zip(live, seeds, strict=True)
        ]
        played = player.play(live, asked, seeds_now, cap)
        for r, a, res in zip(live, asked, played, strict=True):
            _told(r, strategy, a, res)
        live = [r for r in live if r.error is None]
        evaluating = [
            r for r in live if r.generation % tc.eval_every == 0 or r.generation == tc.generations
        ]
        if evaluating:
            _evaluate_centres(strategy, evaluating, player, eval_K, progress, bar, t0)
            stopping = [
                r for r in evaluating
                if r.generation == tc.generations
                or (tc.stop_when_solved and r.curve[-1]["value"] >= spec.solved_score)
            ]  # fmt: skip
            finish(cfg, strategy, stopping, player, eval_K)
            live = [r for r in live if r.result is None]
        for r in live:  # resumable where the next generation seeds its slots
            if r.checkpoint is not None and seeds_slots(reseed, r.generation):
                if r.checkpoint.due():
                    _save(r, strategy)
        bar.update(1)
        rate = (sum(r.env_steps for r in runs) - steps0) / (time.perf_counter() - t0)
        useful = sum(r.env_steps for r in runs) / max(sum(r.slot_steps for r in runs), 1)
        shown: dict[str, Any] = {"trials": len(live)}
        if len(runs) == 1:
            shown = {"mean": f"{runs[0].train_mean:.1f}", "best": f"{runs[0].fitness_max:.1f}"}
        bar.set_postfix(**shown, useful_steps_s=f"{rate:,.0f}", useful=f"{useful:.0%}")
    bar.close()


def _told(r: Run, strategy: Strategy, asked: Asked, res: RolloutResult) -> None:
    g = r.generation
    r.env_steps += res.env_steps
    r.slot_steps += res.slot_steps
    r.capped += res.capped
    fitness = res.returns.mean(1)
    r.train_mean, r.fitness_max = float(fitness.mean()), float(fitness.max())
    if not np.all(np.isfinite(fitness)):
        r.error = FloatingPointError(f"non-finite return at generation {g}")
        return
    r.state = strategy.tell(r.state, asked, fitness)
    if not torch.isfinite(strategy.mean(r.state)).all():
        r.error = FloatingPointError(f"z diverged at generation {g}")
    r.generation = g + 1


def _evaluate(strategy: Strategy, runs: list[Run], player: Player) -> list[tuple[float, float]]:
    """Each run's centre on fresh episodes (seeds from its eval stream): (mean, std)."""
    seeds = [int(r.eval_rng.integers(2**31)) for r in runs]
    return player.evaluate(runs, [strategy.mean(r.state) for r in runs], seeds)


def _evaluate_centres(
    strategy: Strategy,
    runs: list[Run],
    player: Player,
    eval_K: int,
    progress: bool,
    bar: Any,
    t0: float,
) -> None:
    for r, (mean, _) in zip(runs, _evaluate(strategy, runs, player), strict=True):
        r.best = max(r.best, mean)
        point = {"step": r.env_steps, "value": mean, "generation": r.generation}
        if strategy.curve_train_mean:  # capped episodes, perturbed members
            point["train_mean"] = r.train_mean
        r.curve.append(point)
        if progress and len(runs) == 1:  # one line per evaluation: a trail in the log
            bar.write(
                f"generation {r.generation}: centre {mean:.2f} over {eval_K} episodes, "
                f"population mean {r.train_mean:.2f}, env steps {r.env_steps:,}, "
                f"{time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )


def finish(
    cfg: ExperimentConfig, strategy: Strategy, runs: list[Run], player: Player, eval_K: int
) -> None:
    """The final evaluation of `runs` (one batched call) and their TrainResults."""
    if not runs:
        return
    for r, final in zip(runs, _evaluate(strategy, runs, player), strict=True):
        sub, spec = r.setup.sub, r.setup.spec
        with torch.no_grad():
            sub.z.copy_(strategy.mean(r.state))
        r.result = TrainResult(
            final_eval_mean=final[0],
            final_eval_std=final[1],
            best_eval_mean=max(r.best, final[0]),
            D=sub.D,
            d=sub.d,
            env_steps=r.env_steps,
            curve=r.curve,
            solved_score=spec.solved_score,
            subspace=sub,
            extra=policy_extra(cfg, r.setup.dims, r.norm),
            info=strategy.info(r.state, eval_K, r.capped, r.slot_steps),
        )
        if r.resumed_at:  # its wall time counts from there
            r.result.info["resumed_at_generation"] = r.resumed_at
