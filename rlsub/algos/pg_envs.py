"""SB3's side of the env: vector envs from an env spec (DummyVecEnv over Monitor-wrapped
envs, ale-py's AtariVectorEnv for Atari), deterministic evaluation, the learning-curve
callback, and what a replay of a PG policy file needs (the env spec and observation
normalisation).

Imports: algos.sb3_atari, envs, core.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from tqdm import tqdm

from rlsub.algos.sb3_atari import sb3_atari_env
from rlsub.envs.spec import EnvSpec
from rlsub.envs.vector import make_env


# ----------------------------------------------------------------- envs
def sb3_env_factory(spec: EnvSpec) -> Callable[[], gym.Env]:
    """A callable making one env for SB3 (Atari: gymnasium's preprocessing and frame stack,
    the single-env equivalent of the vector env; training uses `sb3_vec_env`)."""

    def make() -> gym.Env:
        env = make_env(spec)
        if spec.vector == "ale":
            noop = int(spec.kwargs.get("noop_max", 30))
            size = int(spec.kwargs.get("img_height", 84))
            env = gym.wrappers.AtariPreprocessing(
                env, noop_max=noop, frame_skip=1, screen_size=size, grayscale_obs=True
            )
            env = gym.wrappers.FrameStackObservation(env, int(spec.kwargs.get("stack_num", 4)))
        return env

    return make


def sb3_vec_env(spec: EnvSpec, n_envs: int, seed: int | None = None) -> VecEnv:
    """Training envs for SB3: ale-py's vector env through the adapter (Atari), else
    SB3's DummyVecEnv of Monitor-wrapped single envs."""
    if spec.vector == "ale":
        return sb3_atari_env(spec, n_envs, seed)
    return make_vec_env(sb3_env_factory(spec), n_envs=n_envs, seed=seed)


def eval_vec_env(spec: EnvSpec, episodes: int) -> VecEnv:
    """Evaluation envs for SB3: one slot per deterministic episode (`evaluate`)."""
    if spec.vector == "ale":
        return sb3_atari_env(spec, episodes)
    make = sb3_env_factory(spec)
    return DummyVecEnv([lambda: Monitor(make()) for _ in range(episodes)])


def evaluate(model: BaseAlgorithm, env: VecEnv, seed: int) -> tuple[float, float]:
    """Mean and std return of one deterministic episode per slot of `env`."""
    env.seed(seed)
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=env.num_envs, deterministic=True, return_episode_rewards=True
    )
    r = np.asarray(returns, dtype=float)
    return float(r.mean()), float(r.std())


class CurveCallback(BaseCallback):
    """Progress bar (stderr) and a learning-curve point every `eval_freq` env steps."""

    def __init__(
        self,
        total: int,
        eval_freq: int,
        point: Callable[[int], float],
        bar: bool,
        stop_at: float | None = None,
    ):
        super().__init__()
        self.eval_freq, self.point, self.stop_at = eval_freq, point, stop_at
        self.stopped_at: int | None = None
        self.next_eval = eval_freq if eval_freq > 0 else None
        self.bar = tqdm(total=total, unit="step", file=sys.stderr, disable=not bar)
        self.shown = 0

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.shown)
        self.shown = self.num_timesteps
        if self.next_eval is not None and self.num_timesteps >= self.next_eval:
            value = self.point(self.num_timesteps)
            self.bar.set_postfix(eval=f"{value:.1f}")
            self.next_eval += self.eval_freq
            if self.stop_at is not None and value >= self.stop_at:
                self.stopped_at = self.num_timesteps
                return False
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def replay_extra(env: VecEnv) -> dict[str, Any]:
    """What a replay of the policy file needs to act as SB3 did: how actions come from the
    network's outputs, and the scale SB3 gives images."""
    space = env.action_space
    extra: dict[str, Any] = {}
    if isinstance(space, gym.spaces.Discrete):
        extra["action"] = "argmax"
    else:
        extra.update(action="clip", low=space.low.tolist(), high=space.high.tolist())  # type: ignore[attr-defined]
    if len(env.observation_space.shape or ()) == 3:
        extra["obs_scale"] = 1.0 / 255.0  # SB3 divides images by 255 before the network
    return extra
