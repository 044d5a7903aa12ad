"""Vector-env factories for an env spec: gymnasium's native vector envs, ale-py's
AtariVectorEnv (C++ threads, built-in preprocessing), SyncVectorEnv for the rest.

Imports: envs.spec, core.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlsub.core.errors import RlsubError
from rlsub.envs.spec import REQUIRES_HINT, EnvSpec

SPEC_ATTR = "rlsub_spec"  # the spec a vector env was made from (`make_vec_env`)


def make_vec_env(
    spec: EnvSpec, num_envs: int, threads: int | None = None, same_step: bool = False
) -> gym.vector.VectorEnv:
    """A vector env of `num_envs` slots (seed it with reset(seed=...)), carrying the spec it
    was made from (`spec_of`, `fast_path`: what the rollouts read).

    ale only: `threads` sets the emulator threads (None: ale-py's choice, one per
    core up to num_envs); `same_step` switches to same-step autoreset (the final
    observation in info["final_obs"]), which the SB3 adapter needs.
    """
    env = _make_vec_env(spec, num_envs, threads, same_step)
    setattr(env.unwrapped, SPEC_ATTR, spec)
    return env


def spec_of(env: Any) -> EnvSpec | None:
    """The spec a vector env was made from by `make_vec_env` (None: made elsewhere)."""
    spec = getattr(getattr(env, "unwrapped", env), SPEC_ATTR, None)
    return spec if isinstance(spec, EnvSpec) else None


def fast_path(env: Any) -> str | None:
    """The rollout fast path the env's spec declares (`EnvSpec.fast_path`), or None."""
    spec = spec_of(env)
    return None if spec is None else spec.fast_path


def _make_vec_env(
    spec: EnvSpec, num_envs: int, threads: int | None, same_step: bool
) -> gym.vector.VectorEnv:
    if num_envs <= 0:
        raise RlsubError(f"num_envs must be > 0, got {num_envs}")
    try:
        if spec.vector == "ale":
            return _make_ale(spec, num_envs, threads, same_step)
        if spec.vector == "native":
            return gym.make_vec(
                spec.id,
                num_envs=num_envs,
                vectorization_mode="vector_entry_point",
                max_episode_steps=spec.max_episode_steps,
                **spec.kwargs,
            )
        mode = "sync" if spec.vector == "sync" else "async"
        return gym.make_vec(
            spec.id,
            num_envs=num_envs,
            vectorization_mode=mode,
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP},
            max_episode_steps=spec.max_episode_steps,
            **spec.kwargs,
        )
    except gym.error.Error as exc:
        raise RlsubError(f"env {spec.name!r} ({spec.id}): {exc}") from None


def ale_game(spec: EnvSpec) -> str:
    """ale-py's ROM name for a gymnasium id: ALE/Pong-v5 -> pong, ALE/MsPacman-v5 -> ms_pacman."""
    name = spec.id.split("/")[-1].split("-")[0]
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _make_ale(
    spec: EnvSpec, num_envs: int, threads: int | None, same_step: bool
) -> gym.vector.VectorEnv:
    try:
        import ale_py
    except ImportError:
        raise RlsubError(f"env {spec.name!r} needs ale-py: {REQUIRES_HINT['ale_py']}") from None
    game = ale_game(spec)
    kwargs = dict(spec.kwargs)
    if threads is not None:
        kwargs["num_threads"] = int(threads)
    if same_step:
        kwargs["autoreset_mode"] = gym.vector.AutoresetMode.SAME_STEP
    kwargs.setdefault("max_num_frames_per_episode", spec.max_episode_steps * _frameskip(spec))
    try:
        return ale_py.AtariVectorEnv(game=game, num_envs=num_envs, **kwargs)
    except Exception as exc:  # a missing ROM or a bad option
        raise RlsubError(f"env {spec.name!r}: ale-py could not start {game!r}: {exc}") from None


def _frameskip(spec: EnvSpec) -> int:
    return int(spec.kwargs.get("frameskip", 4))


def make_env(spec: EnvSpec) -> gym.Env:
    """One ordinary env (for SB3 and replays)."""
    try:
        if spec.vector == "ale":
            import ale_py

            gym.register_envs(ale_py)
        return gym.make(spec.id, max_episode_steps=spec.max_episode_steps, **_single_kwargs(spec))
    except gym.error.Error as exc:
        raise RlsubError(f"env {spec.name!r} ({spec.id}): {exc}") from None


def _single_kwargs(spec: EnvSpec) -> dict[str, Any]:
    if spec.vector != "ale":
        return dict(spec.kwargs)
    keep = ("repeat_action_probability", "frameskip", "full_action_space")
    return {k: v for k, v in spec.kwargs.items() if k in keep}
