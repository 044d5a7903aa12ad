"""ale-py's `AtariVectorEnv` as a stable-baselines3 `VecEnv`.

SB3's PPO, A2C and DQN then play Atari with exactly the env settings ES uses
(envs/*.yaml with ``vector: ale``: the C++ vector env does the grey-scaling,
resizing, frame skipping with max-pooling, frame stacking and no-op starts, on
its own threads), instead of a Python loop over single envs with gymnasium's
wrappers.

Episode ends: SB3 expects a finished env to be reset within the same `step`
call, the observation it returns to be the first of the new episode, and the
last observation of the finished episode to be in
``infos[i]["terminal_observation"]`` (PPO and A2C bootstrap truncated episodes
from it; DQN stores it as the next observation of the last transition). The
vector env is therefore built with gymnasium's same-step autoreset
(`AutoresetMode.SAME_STEP`), under which ale-py returns the new episode's
observation and puts the finished one's in ``info["final_obs"]``; the adapter
hands that over per slot and sets ``TimeLimit.truncated`` when an episode was
cut by the frame cap rather than ended by the game. Wrap it in SB3's
`VecMonitor` for episode returns (``info["episode"]``), as `sb3_atari_env` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from rlsub.envs.spec import EnvSpec
from rlsub.envs.vector import make_vec_env


class AtariVecEnv(VecEnv):
    """`num_envs` slots of an ale-py AtariVectorEnv (same-step autoreset) for SB3."""

    def __init__(self, spec: EnvSpec, num_envs: int, threads: int | None = None) -> None:
        self.env = make_vec_env(spec, num_envs, threads=threads, same_step=True)
        self.render_mode = None
        super().__init__(num_envs, self.env.single_observation_space, self.env.single_action_space)
        self._actions = np.zeros(num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:
        if all(s is not None for s in self._seeds):
            seeds = np.asarray(self._seeds, dtype=np.int64)  # ale-py: one seed per slot
            obs, _ = self.env.reset(seed=seeds)  # type: ignore[arg-type]
        else:
            obs, _ = self.env.reset()
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return np.asarray(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, term, trunc, info = self.env.step(self._actions)
        term, trunc = np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool)
        dones = term | trunc
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = info["final_obs"]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = np.asarray(final[i])
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
        return np.asarray(obs), np.asarray(reward, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise NotImplementedError(f"AtariVecEnv has no per-slot env method ({method_name!r})")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def sb3_atari_env(spec: EnvSpec, num_envs: int, seed: int | None = None) -> VecMonitor:
    """The adapter with episode statistics (info["episode"]) and, if given, per-slot seeds."""
    env = VecMonitor(AtariVecEnv(spec, num_envs))
    if seed is not None:
        env.seed(seed)
    return env
