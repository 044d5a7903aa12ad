"""Deterministic evaluation of a saved policy file (`rlsub eval POLICY_FILE`) and the
random-policy score of an env (`rlsub random-score ENV --episodes N`).

The compact file (rlsub.core.subspace) rebuilds the exact network; its `extra`
holds what the rollout needs beside z: the env spec name and variant (or the
config that names them), the observation statistics (frozen) and how outputs
become actions. A PG trial whose subspace spans the critic too (parts: all) is
kept as the SB3 policy's state (rlsub.algos.sb3_file), rebuilt from its config and
replayed through SB3. Nothing is unpickled and no import path a file names is imported
unless trusted (rlsub.core.trust); SB3's own zip only with --trust-pickle.

Imports: algos (pg_envs, lazily: SB3 loads only for SB3 files), rollout, envs, core.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rlsub.algos.sb3_file import FORMAT as SB3_FORMAT
from rlsub.core.errors import RlsubError
from rlsub.core.subspace import Subspace, load_state
from rlsub.core.trust import check_pickle, reading
from rlsub.envs.spec import env_dims, load_env_spec
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm, reset_slots

MAX_EPISODES = 100_000  # evaluation slots step together: more would not fit in memory


def evaluate_policy_file(
    path: str, episodes: int | None = None, seed: int = 12345, trust: Iterable[str] = ()
) -> dict[str, Any]:
    """`rlsub eval FILE`: replay the policy file on fresh episodes; `trust`: modules whose
    import paths the file may name (rlsub.core.trust; `--trust MODULE`)."""
    with reading(path, trust=trust):
        return _evaluate_policy_file(path, episodes, seed)


def _evaluate_policy_file(path: str, episodes: int | None, seed: int) -> dict[str, Any]:
    """Replay a policy file `rlsub train` wrote. The file is data: nothing in it is
    unpickled, and a plug-in it names by import path is refused unless trusted
    (rlsub.core.trust); an SB3 zip (pickled) only with --trust-pickle."""
    if episodes is not None and not 0 < episodes <= MAX_EPISODES:
        raise RlsubError(f"--episodes must be in 1..{MAX_EPISODES:,}, got {episodes}")
    if str(path).endswith(".zip"):
        return evaluate_sb3_zip(path, episodes, seed)
    state = load_state(path)
    if state.get("format") == SB3_FORMAT:
        return evaluate_sb3_state(state, path, episodes, seed)
    sub, extra = Subspace.from_state(state, path)
    config = extra.get("config") or {}
    env_name = extra.get("env") or config.get("env")
    if not env_name:
        raise RlsubError(f"{path}: the policy file names no environment (a supervised model?)")
    with reading(path):
        spec = load_env_spec(env_name, extra.get("env_variant") or config.get("env_variant"))
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


def load_sb3_policy(state: dict[str, Any], path: str, episodes: int | None = None) -> Any:
    """(model, env spec, eval env of K slots) of a parts: all PG policy file: the model is
    rebuilt from the file's config (nothing it names is imported unless trusted) and
    its saved policy state loaded."""
    from rlsub.algos.pg import build_model
    from rlsub.algos.pg_envs import eval_vec_env
    from rlsub.core.config import experiment_from_dict

    try:
        extra = json.loads(state["extra_json"])
        with reading(path):
            cfg = experiment_from_dict(extra["config"], str(path))
            if cfg.algorithm not in ("ppo", "a2c", "dqn") or cfg.env is None:
                raise RlsubError(f"{path}: not a PPO / A2C / DQN policy ({cfg.algorithm!r})")
            spec = load_env_spec(cfg.env, cfg.env_variant)
        env = eval_vec_env(spec, episodes or spec.eval_episodes)
        model, _ = build_model(cfg, state["d"], int(state["seed"]), env)
        model.policy.load_state_dict(state["policy"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise RlsubError(
            f"{path}: a damaged rlsub SB3 policy file ({type(exc).__name__})"
        ) from None
    return model, spec, env


def evaluate_sb3_state(
    state: dict[str, Any], path: str, episodes: int | None = None, seed: int = 12345
) -> dict[str, Any]:
    """Replay a parts: all PG policy file (rlsub.algos.sb3_file) through SB3."""
    model, spec, env = load_sb3_policy(state, path, episodes)
    return _sb3_result(model, spec, env, path, seed)


def evaluate_sb3_zip(path: str, episodes: int | None = None, seed: int = 12345) -> dict[str, Any]:
    """Replay SB3's own zip (with its JSON sidecar), as rlsub wrote them before it wrote
    pickle-free files: loading unpickles, so only with --trust-pickle."""
    from stable_baselines3 import A2C, DQN, PPO

    from rlsub.algos.pg_envs import eval_vec_env

    zip_path = Path(path)
    sidecar = zip_path.with_suffix(".json")
    if not zip_path.is_file() or not sidecar.is_file():
        raise RlsubError(f"{path}: no such SB3 policy file with its {sidecar.name} beside it")
    check_pickle(str(path))
    extra = json.loads(sidecar.read_text())
    config = extra.get("config") or {}
    algo = extra.get("algorithm") or config.get("algorithm")
    algos: dict[str, Any] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
    if algo not in algos:
        raise RlsubError(f"{path}: unknown algorithm {algo!r} in {sidecar.name}")
    with reading(path):
        spec = load_env_spec(extra.get("env") or config["env"], extra.get("env_variant"))
    try:
        model = algos[algo].load(zip_path, device="cpu")
    except Exception as exc:  # a foreign or damaged zip
        raise RlsubError(f"{path}: not a loadable SB3 zip ({type(exc).__name__})") from None
    return _sb3_result(model, spec, eval_vec_env(spec, episodes or spec.eval_episodes), path, seed)


def _sb3_result(model: Any, spec: Any, env: Any, path: str, seed: int) -> dict[str, Any]:
    from rlsub.algos.pg_envs import evaluate

    t0 = time.perf_counter()
    mean, std = evaluate(model, env, seed)
    env.close()
    sub = model.policy.subspace if hasattr(model.policy, "subspace") else None
    return {
        "policy": str(path),
        "env": spec.name,
        "env_variant": spec.variant,
        "d": getattr(sub, "d", None),
        "D": getattr(sub, "D", None),
        "episodes": env.num_envs,
        "eval_mean": mean,
        "eval_std": std,
        "returns": None,
        "solved_score": spec.solved_score,
        "solved": bool(mean >= spec.solved_score),
        "env_steps": None,
        "wall_s": time.perf_counter() - t0,
    }


def random_score(name_or_path: str, episodes: int, seed: int = 0) -> dict[str, Any]:
    """Mean return of uniformly random actions over `episodes` episodes (one slot each).

    Every slot starts from its own seed (seed + slot) and plays exactly one
    episode; a finished slot's later rewards are masked.
    """
    if not 0 < episodes <= MAX_EPISODES:
        raise RlsubError(f"--episodes must be in 1..{MAX_EPISODES:,}, got {episodes}")
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
