"""What every rollout shares: observation normalisation (`RunningNorm`, SB3's
`RunningMeanStd` with a clip), seeded slot resets,
actions from network outputs, masked stepping of finished slots (`SlotStepper`) and the
result type.

Imports: envs, torch, numpy. Knows nothing of ES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd
from torch import Tensor

from rlsub.envs.spec import EnvDims
from rlsub.envs.vector import fast_path


class RunningNorm(RunningMeanStd):
    """SB3's running mean and variance of observations (`RunningMeanStd`: the parallel
    algorithm, float64, count starting at 1e-4), with what rlsub's rollouts add: the clip
    of normalised observations, empty batches ignored, float32 tensors for a rollout,
    and the state a policy file keeps."""

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0) -> None:
        super().__init__(epsilon=1e-4, shape=shape)
        self.clip = clip

    def update(self, x: np.ndarray) -> None:
        """x: (B, *shape)."""
        if len(x) == 0:
            return
        super().update(x)

    def update_moments(self, b_mean: np.ndarray, b_var: np.ndarray, b_count: float) -> None:
        """Fold in a batch given by its mean, (population) variance and count."""
        if b_count <= 0:
            return
        self.update_from_moments(b_mean, b_var, b_count)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -self.clip, self.clip)

    def torch_normalizer(self) -> tuple[Tensor, Tensor]:
        """(mean, 1/std) as float32 tensors, for normalising inside a rollout."""
        mean = torch.as_tensor(self.mean, dtype=torch.float32)
        inv_std = torch.as_tensor(1.0 / np.sqrt(self.var + 1e-8), dtype=torch.float32)
        return mean, inv_std

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


def reset_slots(env: gym.vector.VectorEnv, seeds: list[int] | None) -> np.ndarray:
    """Reset every slot from its own seed; returns observations (S, *obs_shape).

    seeds None: reset without seeding, so every slot continues its own RNG (ale-py
    reloads the ROM to seed a slot: about 45 ms each, on one core).

    How a slot takes its seed follows the fast path its env spec declares
    (`rlsub.envs.vector.fast_path`): gymnasium's native CartPole vector env seeds all
    slots from one RNG, so for it each slot's start state is drawn here from its own
    seed with CartPole's distribution (uniform in [-0.05, 0.05]^4), exactly as a single
    env would; ale-py takes one seed per slot as an array; any other vector env a list.
    """
    if seeds is None:
        obs, _ = env.reset()
        return np.asarray(obs)
    reset = SEEDED_RESETS.get(fast_path(env) or "", _reset_seed_list)
    return reset(env, seeds)


def _reset_seed_list(env: gym.vector.VectorEnv, seeds: list[int]) -> np.ndarray:
    obs, _ = env.reset(seed=list(seeds))  # type: ignore[arg-type]
    return np.asarray(obs)


def _reset_ale(env: gym.vector.VectorEnv, seeds: list[int]) -> np.ndarray:
    obs, _ = env.reset(seed=np.asarray(seeds, dtype=np.int64))  # type: ignore[arg-type]
    return np.asarray(obs)


def _reset_cartpole(env: gym.vector.VectorEnv, seeds: list[int]) -> np.ndarray:
    """CartPoleVectorEnv's slots started from `cartpole_start_states` (its public state)."""
    base: Any = env.unwrapped
    env.reset(seed=seeds[0])
    states = cartpole_start_states(seeds)
    base.state = states
    base.steps = np.zeros(len(seeds), dtype=np.int32)
    return states.T.astype(np.float32)


# fast path (EnvSpec.fast_path) -> how its vector env resets slot by slot from seeds
SEEDED_RESETS: dict[str, Callable[[gym.vector.VectorEnv, list[int]], np.ndarray]] = {
    "cartpole": _reset_cartpole,
    "ale": _reset_ale,
}


def cartpole_start_states(seeds: list[int]) -> np.ndarray:
    """(4, S) float64: slot s starts from uniform(-0.05, 0.05, 4) drawn with its own seed
    (CartPole's start distribution, as a single env seeded with it draws it)."""
    unique, which = np.unique(np.asarray(seeds), return_inverse=True)
    starts = np.stack([np.random.default_rng(int(s)).uniform(-0.05, 0.05, 4) for s in unique])
    return np.ascontiguousarray(starts[which.reshape(-1)].T)


def random_observations(env: gym.vector.VectorEnv, n: int, seed: int, stride: int = 20) -> Tensor:
    """n observations of uniformly random play (a reference batch), as the policy sees them.

    Every `stride` steps all slots' observations are taken (seeded resets and
    actions: any process gets the same batch). uint8 pixels are scaled to [0, 1].
    """
    S = env.num_envs
    rng = np.random.default_rng(seed)
    env.single_action_space.seed(int(rng.integers(2**31)))
    obs = reset_slots(env, [seed + s for s in range(S)])
    frames: list[np.ndarray] = []
    while sum(len(f) for f in frames) < n:
        for _ in range(stride):
            actions = np.stack([np.asarray(env.single_action_space.sample()) for _ in range(S)])
            obs, *_ = env.step(actions)
        frames.append(np.array(obs))
    batch = np.concatenate(frames)[:n]
    x = torch.from_numpy(batch).float()
    return x.mul_(1.0 / 255.0) if batch.dtype == np.uint8 else x


class SlotStepper:
    """env.step for a rollout whose finished slots are masked: (obs, reward, term, trunc, n).

    A SyncVectorEnv (MuJoCo) is a Python loop over single envs, so only the slots
    still playing are stepped (n of them); a finished slot keeps its last
    observation and gets reward 0, and its env is reset by the next rollout's
    reset. Other vector envs step every slot (n = num_envs).
    """

    def __init__(self, env: gym.vector.VectorEnv, obs: np.ndarray) -> None:
        self.env = env
        self.sync = isinstance(env, gym.vector.SyncVectorEnv)
        if self.sync:
            S = env.num_envs
            self.obs = np.array(obs, copy=True)
            self.reward = np.zeros(S)
            self.term = np.zeros(S, dtype=bool)
            self.trunc = np.zeros(S, dtype=bool)

    def __call__(
        self, actions: np.ndarray, done: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        if not self.sync:
            obs, reward, term, trunc, _ = self.env.step(actions)
            return (
                np.asarray(obs),
                np.asarray(reward),
                np.asarray(term),
                np.asarray(trunc),
                len(done),
            )
        self.reward[:] = 0.0
        self.term[:] = False
        self.trunc[:] = False
        active = np.flatnonzero(~done)
        envs = self.env.envs  # type: ignore[attr-defined]
        for s in active:
            o, r, te, tr, _ = envs[s].step(actions[s])
            self.obs[s], self.reward[s], self.term[s], self.trunc[s] = o, r, te, tr
        return self.obs.copy(), self.reward, self.term, self.trunc, len(active)


@dataclass
class RolloutResult:
    returns: np.ndarray  # (N, K) episode returns
    lengths: np.ndarray  # (N, K) episode lengths
    env_steps: int  # useful steps (active slots only)
    slot_steps: int  # slot steps simulated: masked ones too, except in a SyncVectorEnv
    capped: int = 0  # episodes cut short by max_steps
