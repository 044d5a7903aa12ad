"""Batched population rollouts: N individuals x K episodes in one vector env.

Slot s = i * K + k runs episode k of individual i. All slots step together;
each step is one batched forward through `Subspace.population_call` (theta of
the whole population is computed once per rollout, not per step). A slot runs
exactly one episode: once it terminates or is truncated it is masked, so
gymnasium's next-step autoreset never leaks reward or observations across
episodes. Episode k of every individual starts from the same seed (common
random numbers), so a population rollout returns what each individual would
get alone with those seeds.

Observation normalisation (Salimans et al. 2017): running mean and variance
shared by the population, updated from the observations of active slots
during training rollouts and frozen during evaluation, clipped to +-clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlsub.envs import EnvDims
from rlsub.subspace import Subspace


class RunningNorm:
    """Running mean/variance of observations (parallel Welford), float64."""

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0) -> None:
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4
        self.clip = clip

    def update(self, x: np.ndarray) -> None:
        """x: (B, *shape)."""
        if len(x) == 0:
            return
        b_mean, b_var, b_count = x.mean(0), x.var(0), len(x)
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -self.clip, self.clip)

    def state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "var": self.var.tolist(),
            "count": self.count,
            "clip": self.clip,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunningNorm:
        norm = cls(np.asarray(state["mean"]).shape, state["clip"])
        norm.mean, norm.var = np.asarray(state["mean"]), np.asarray(state["var"])
        norm.count = float(state["count"])
        return norm


def actions_from_outputs(out: Tensor, dims: EnvDims) -> np.ndarray:
    """Deterministic actions: argmax of logits (discrete) or the output clipped to the box."""
    if dims.discrete:
        return out.argmax(-1).cpu().numpy()
    a = out.cpu().numpy()
    assert dims.low is not None and dims.high is not None
    return np.clip(a, dims.low, dims.high)


def reset_slots(env: gym.vector.VectorEnv, seeds: list[int]) -> np.ndarray:
    """Reset every slot from its own seed; returns observations (S, *obs_shape).

    gymnasium's native CartPole vector env seeds all slots from one RNG, so for it
    each slot's start state is drawn here from its own seed with CartPole's
    distribution (uniform in [-0.05, 0.05]^4), exactly as a single env would.
    """
    base = env.unwrapped
    if type(base).__name__ == "CartPoleVectorEnv":
        env.reset(seed=seeds[0])
        unique = {s: np.random.default_rng(s).uniform(-0.05, 0.05, 4) for s in set(seeds)}
        states = np.stack([unique[s] for s in seeds], axis=1)
        base.state = states  # type: ignore[attr-defined]
        base.steps = np.zeros(len(seeds), dtype=np.int32)  # type: ignore[attr-defined]
        return states.T.astype(np.float32)
    obs, _ = env.reset(seed=list(seeds))  # type: ignore[arg-type]
    return np.asarray(obs)


@dataclass
class RolloutResult:
    returns: np.ndarray  # (N, K) episode returns
    lengths: np.ndarray  # (N, K) episode lengths
    env_steps: int  # useful steps (active slots only)
    slot_steps: int  # all slot steps taken, masked ones included


@torch.no_grad()
def population_rollout(
    sub: Subspace,
    Z: Tensor,
    env: gym.vector.VectorEnv,
    dims: EnvDims,
    episodes: int,
    seed: int,
    obs_norm: RunningNorm | None = None,
    update_norm: bool = False,
) -> RolloutResult:
    """Run N = len(Z) individuals x K = `episodes` episodes in `env` (N*K slots).

    Z: (N, d). Episode k of every individual starts from seed `seed + k`.
    """
    N, K = Z.shape[0], episodes
    S = N * K
    if env.num_envs != S:
        raise ValueError(f"env has {env.num_envs} slots, need N*K = {S}")
    policy = sub.population_fn(sub.split(sub.theta(Z)))  # theta once per rollout, not per step
    obs = reset_slots(env, [seed + k for _ in range(N) for k in range(K)])
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    slot_steps = 0
    while not done.all():
        x = obs.astype(np.float64 if obs_norm is not None else np.float32, copy=False)
        if obs_norm is not None:
            if update_norm:
                obs_norm.update(x[~done])
            x = obs_norm.normalize(x)
        xt = torch.as_tensor(x, dtype=torch.float32).reshape(N, K, *dims.obs_shape)
        out = policy(xt).reshape(S, -1)
        action = actions_from_outputs(out, dims)
        obs, reward, term, trunc, _ = env.step(action)
        active = ~done
        returns[active] += reward[active]
        lengths[active] += 1
        slot_steps += S
        done |= np.asarray(term) | np.asarray(trunc)
    return RolloutResult(
        returns.reshape(N, K), lengths.reshape(N, K), int(lengths.sum()), slot_steps
    )
