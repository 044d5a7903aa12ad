"""The original paper's DQN (Li et al. 2018, CartPole-v0), in a random subspace.

SB3's DQN is another protocol (Huber loss, hard target copies, a buffer of every
transition, scored by evaluation episodes). This trainer follows the paper's public
code (uber-research/intrinsic-dimension: ``intrinsic_dim/train_dqn.py`` and
``intrinsic_dim/rl/neural_q_learner.py``, read for the protocol, not copied):

- one env, one update per env step once the buffer holds a batch; TF1's RMSProp at
  lr 1e-4 with the scripts' momentum 0.9 (the parser's default; decay 0.9, epsilon 1e-10
  inside the root, the mean square starting at 1: `dqn_learners.TFRMSProp`); discount
  0.95; batch 32;
- a replay buffer of 10,000 that keeps every 5th transition and every terminal one;
- epsilon-greedy, epsilon 0.5 -> 0.1 linearly over the first 10,000 updates;
- loss: the mean squared TD error, each variable's gradient clipped to norm 5;
- a run stops when the mean return of its last 100 training episodes reaches the
  solved score (195) or after ``max_episodes`` (10,000 in the paper), and is scored
  by that mean (`final_eval_mean`): the paper's rule, not an evaluation on fresh
  episodes. A deterministic evaluation on ``eval_episodes`` fresh episodes is kept
  beside it in the record's info;
- the network: Keras' he_normal init (the config's ``init: he_normal``), biases 0.

What the code ran, not what its arguments name: the learner is given a target-update
rate (0.01) and an L2 penalty (0.01), but its Q-network is one Keras model, built
before the learner, called again under a "target_network" variable scope. A Keras
model called twice shares its weights, so the "target" is the online network (behind
a stop-gradient), and both scoped collections are empty: the soft update is a no-op
and the L2 sum is 0. The defaults here are that effective protocol
(``target_update_rate: 1.0``: the target is the online z; ``l2: 0``);
``target_update_rate: 0.01`` and ``l2: 0.01`` give the literal reading (a separate
target z and a penalty on z), which is what this trainer ran before (docs/RESULTS.md).

Imports: algos.base, algos.dqn_learners, algos.sizes, envs, core.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlsub.algos.base import Budget, Trainer, TrainResult
from rlsub.algos.dqn_learners import make_learner
from rlsub.algos.sizes import probe_env
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import ExperimentConfig
from rlsub.core.registry import build_network, count_parameters
from rlsub.core.schema import check, doc
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_env


@dataclass(frozen=True)
class PaperDQNConfig:
    max_episodes: int = doc("episodes before a run gives up (the paper: 10,000)", default=10_000)
    lr: float = doc("RMSProp learning rate", default=1e-4)
    gamma: float = doc("discount", default=0.95)
    batch_size: int = doc("transitions per update", default=32)
    buffer_size: int = doc("replay buffer capacity (transitions kept)", default=10_000)
    store_every: int = doc("keep every Nth transition (and every terminal one)", default=5)
    eps_start: float = doc("initial exploration probability", default=0.5)
    eps_end: float = doc("final exploration probability", default=0.1)
    eps_anneal_updates: int = doc("updates over which epsilon falls linearly", default=10_000)
    momentum: float = doc("RMSProp momentum (the paper's scripts: the parser's 0.9)", default=0.9)
    target_update_rate: float = doc(
        "soft target update after every update (1: the target is the online network, as "
        "the paper's code ran)",
        default=1.0,
    )
    l2: float = doc("penalty x sum of squares of the trained variables", default=0.0)
    max_grad_norm: float = doc("each variable's gradient clipped to this norm", default=5.0)
    window: int = doc("training episodes averaged for the score and the stop", default=100)
    eval_episodes: int = doc("fresh deterministic episodes evaluated at the end", default=20)

    def __post_init__(self) -> None:
        check(self.max_episodes > 0, f"max_episodes must be > 0, got {self.max_episodes}")
        check(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        check(self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}")
        check(self.buffer_size >= self.batch_size, "buffer_size must be >= batch_size")
        check(self.store_every >= 1, f"store_every must be >= 1, got {self.store_every}")
        check(0 <= self.eps_end <= self.eps_start <= 1, "need 0 <= eps_end <= eps_start <= 1")
        check(self.eps_anneal_updates > 0, "eps_anneal_updates must be > 0")
        check(0 < self.target_update_rate <= 1, "target_update_rate must be in (0, 1]")
        check(self.l2 >= 0 and self.max_grad_norm > 0, "need l2 >= 0 and max_grad_norm > 0")
        check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        check(self.window >= 1 and self.eval_episodes >= 0, "need window >= 1, eval_episodes >= 0")


class Replay:
    """The paper's buffer: a ring of `size` transitions, each kept only when it is the
    `every`-th offered or terminal; a batch is drawn without replacement."""

    def __init__(self, size: int, obs_dim: int, every: int) -> None:
        self.s = np.zeros((size, obs_dim), np.float32)
        self.s2 = np.zeros((size, obs_dim), np.float32)
        self.a = np.zeros(size, np.int64)
        self.r = np.zeros(size, np.float32)
        self.done = np.zeros(size, np.float32)
        self.size, self.every, self.offered, self.n, self.i = size, every, 0, 0, 0

    def offer(self, s: Any, a: int, r: float, s2: Any, done: bool) -> None:
        keep = self.offered % self.every == 0 or done
        self.offered += 1
        if keep:
            self.s[self.i], self.a[self.i], self.r[self.i] = s, a, r
            self.s2[self.i], self.done[self.i] = s2, float(done)
            self.i = (self.i + 1) % self.size
            self.n = min(self.n + 1, self.size)

    def state(self) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
        """The buffer for a checkpoint: its counters and its arrays."""
        arrays: dict[str, np.ndarray] = {"s": self.s, "s2": self.s2, "a": self.a, "r": self.r}
        arrays["done"] = self.done
        counts = {"offered": self.offered, "n": self.n, "i": self.i}
        return counts, {f"replay.{k}": torch.from_numpy(v.copy()) for k, v in arrays.items()}

    def load(self, counts: dict[str, int], tensors: dict[str, torch.Tensor]) -> None:
        for k in ("s", "s2", "a", "r", "done"):
            getattr(self, k)[...] = tensors[f"replay.{k}"].numpy()
        self.offered, self.n, self.i = counts["offered"], counts["n"], counts["i"]

    def sample(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        idx = rng.choice(self.n, size=k, replace=False)  # random.sample, as the paper's
        return tuple(x[idx] for x in (self.s, self.a, self.r, self.s2, self.done))


def train(
    cfg: ExperimentConfig[PaperDQNConfig],
    d: int | str,
    seed: int,
    progress: bool = False,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """One run of the paper's protocol; with a `checkpoint`, resumed from the end of its
    last saved episode (every episode starts from a seeded reset, so the rest of the run
    is the one it would have been) and saved after episodes."""
    tc = cfg.train
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    dims = _dims(cfg)
    seeds = trial_seeds(seed)
    pin = cfg.subspace.projection_seed
    sub = Subspace.from_spec(
        cfg.network.name,
        policy_network_kwargs(cfg.network.name, dict(cfg.network.kwargs), dims),
        seeds["theta0"],
        d,
        cfg.subspace.projection,
        seeds["projection"] if pin is None else pin,
        rest="frozen",
        dense_limit_gib=cfg.subspace.dense_limit_gib,
    )
    learner = make_learner(sub, tc)
    rng = np.random.default_rng(seeds["sb3"])
    torch.manual_seed(seeds["sb3"])
    env = make_env(spec)
    replay = Replay(tc.buffer_size, dims.obs_dim, tc.store_every)
    history: deque[float] = deque(maxlen=tc.window)
    curve: list[dict[str, float]] = []
    updates = steps = start = 0
    loaded = checkpoint.load() if checkpoint is not None else None
    if loaded is not None:
        meta, tensors = loaded
        start, updates, steps = meta["episode"], meta["updates"], meta["steps"]
        history.extend(meta["history"])
        curve = list(meta["curve"])
        rng.bit_generator.state = meta["rng"]
        learner.load(tensors)
        replay.load(meta["replay"], tensors)
    t0 = time.perf_counter()
    bar = tqdm(
        total=tc.max_episodes,
        initial=start,
        desc=f"{cfg.name} d={d} seed={seed}",
        unit="episode",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with bar:
        for episode in range(start, tc.max_episodes):
            obs, _ = env.reset(seed=int(seeds["env"]) + episode)
            total, done = 0.0, False
            while not done:
                eps = tc.eps_end + (tc.eps_start - tc.eps_end) * max(
                    (tc.eps_anneal_updates - updates) / tc.eps_anneal_updates, 0.0
                )
                if rng.random() < eps:
                    action = int(rng.integers(dims.n_actions))
                else:
                    action = learner.act(obs)
                obs2, reward, term, trunc, _ = env.step(action)
                done = bool(term or trunc)
                # the paper's "done" masks the bootstrap on every episode end, time limit too
                replay.offer(obs, action, float(reward), obs2, done)
                total += float(reward)
                obs = obs2
                steps += 1
                if replay.n >= tc.batch_size:
                    learner.update(replay.sample(tc.batch_size, rng))
                    updates += 1
            history.append(total)
            score = float(np.mean(history))
            curve.append({"step": float(steps), "value": score, "episode": float(episode + 1)})
            bar.update(1)
            bar.set_postfix(last100=f"{score:.1f}", refresh=False)
            if len(history) == tc.window and score >= spec.solved_score:
                break
            if checkpoint is not None and checkpoint.due():
                counts = {"episode": episode + 1, "updates": updates, "steps": steps}
                state = {**counts, "history": list(history), "curve": curve}
                state["rng"] = rng.bit_generator.state
                rmeta, rtensors = replay.state()
                checkpoint.save({**state, "replay": rmeta}, {**learner.state(), **rtensors})
    env.close()
    learner.finish()
    ev_mean, ev_std = _evaluate(learner.act, spec, tc.eval_episodes, seeds["eval"])
    return TrainResult(
        final_eval_mean=score,
        final_eval_std=float(np.std(history)),
        best_eval_mean=max(c["value"] for c in curve),
        D=sub.D,
        d=sub.d,
        env_steps=steps,
        curve=curve,
        solved_score=spec.solved_score,
        subspace=sub,
        info={
            "score_rule": f"mean return of the last {tc.window} training episodes (the paper's)",
            "episodes": len(curve),
            "updates": updates,
            "fresh_eval_mean": ev_mean,
            "fresh_eval_std": ev_std,
            "train_wall_s": time.perf_counter() - t0,
            **({"resumed_at_episode": start} if start else {}),
        },
    )


def _evaluate(
    act: Callable[[Any], int], spec: Any, episodes: int, seed: int
) -> tuple[float, float]:
    """Greedy returns (`act`: the learner's) on `episodes` fresh episodes (reported beside
    the paper's score)."""
    if episodes == 0:
        return float("nan"), float("nan")
    env = make_env(spec)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, _ = env.step(act(obs))
            total, done = total + float(reward), bool(term or trunc)
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


# ------------------------------------------------- what the layers above ask (algos.base)
def _dims(cfg: ExperimentConfig) -> EnvDims:
    dims = probe_env(cfg)
    check(dims.discrete, f"{cfg.source}: dqn_paper needs a discrete action space")
    return dims


def dimension(cfg: ExperimentConfig, data: bool = True, progress: bool = False) -> int:
    """D: the whole Q-network (this protocol has no subspace.include)."""
    net = cfg.network.name
    return count_parameters(
        build_network(net, policy_network_kwargs(net, dict(cfg.network.kwargs), _dims(cfg)))
    )


def budget(cfg: ExperimentConfig) -> Budget:
    return Budget("episode", float(cfg.train.max_episodes))


def spent(row: Mapping[str, Any]) -> float | None:
    """Training episodes a finished trial played (fewer once solved)."""
    episodes = (row.get("info") or {}).get("episodes")
    return float(episodes) if episodes else None


PAPER_DQN = Trainer(
    PaperDQNConfig, train, dimension=dimension, budget=budget, spent=spent, checkpoints=True
)
