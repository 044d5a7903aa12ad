"""Deterministic evaluation of a saved policy file (`rlsub eval POLICY_FILE`) and the
random-policy score of an env (`rlsub random-score ENV --episodes N`).

The compact file (rlsub.subspace) rebuilds the exact network; its `extra`
holds what the rollout needs beside z: the env spec name and variant, the
observation statistics (frozen) and how outputs become actions.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rlsub.core.errors import RlsubError
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm, reset_slots


def evaluate_policy_file(
    path: str, episodes: int | None = None, seed: int = 12345
) -> dict[str, Any]:
    sub, extra = Subspace.load(path)
    if not extra.get("env"):
        raise RlsubError(f"{path}: the policy file names no environment (a supervised model?)")
    if episodes is not None and episodes <= 0:
        raise RlsubError(f"--episodes must be > 0, got {episodes}")
    spec = load_env_spec(extra["env"], extra.get("env_variant"))
    K = episodes or spec.eval_episodes
    env = make_vec_env(spec, K)
    dims = env_dims(env)
    norm = RunningNorm.from_state(extra["obs_norm"]) if extra.get("obs_norm") else None
    sub.eval()
    t0 = time.perf_counter()
    res = population_rollout(sub, sub.z.detach()[None], env, dims, K, seed, norm)
    env.close()
    returns = res.returns[0]
    return {
        "policy": str(path),
        "env": spec.name,
        "env_variant": spec.variant,
        "d": sub.d,
        "D": sub.D,
        "episodes": K,
        "eval_mean": float(returns.mean()),
        "eval_std": float(returns.std()),
        "returns": returns.tolist(),
        "solved_score": spec.solved_score,
        "solved": bool(returns.mean() >= spec.solved_score),
        "env_steps": res.env_steps,
        "wall_s": time.perf_counter() - t0,
    }


def random_score(name_or_path: str, episodes: int, seed: int = 0) -> dict[str, Any]:
    """Mean return of uniformly random actions over `episodes` episodes (one slot each).

    Every slot starts from its own seed (seed + slot) and plays exactly one
    episode; a finished slot's later rewards are masked.
    """
    if episodes <= 0:
        raise RlsubError(f"--episodes must be > 0, got {episodes}")
    spec = load_env_spec(name_or_path)
    env = make_vec_env(spec, episodes)
    space = env.single_action_space
    space.seed(seed)
    t0 = time.perf_counter()
    reset_slots(env, [seed + k for k in range(episodes)])
    done = np.zeros(episodes, dtype=bool)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    while not done.all():
        actions = np.stack([np.asarray(space.sample()) for _ in range(episodes)])
        _, reward, term, trunc, _ = env.step(actions)
        returns += np.where(done, 0.0, reward)
        lengths += ~done
        done |= np.asarray(term) | np.asarray(trunc)
    env.close()
    return {
        "env": spec.name,
        "id": spec.id,
        "episodes": episodes,
        "seed": seed,
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "returns": returns.tolist(),
        "mean_length": float(lengths.mean()),
        "env_steps": int(lengths.sum()),
        "wall_s": time.perf_counter() - t0,
    }
