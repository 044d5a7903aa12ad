"""`rlsub bench pg`: CPU time of subspace PPO over full-space SB3 PPO on CartPole.

Both train for the same number of env steps with configs/cartpole_ppo_actor.yaml's
hyperparameters (8 envs, rl-zoo3's tuned values), on one torch thread, with no
evaluation: the subspace policy (actor in a d = 16 dense subspace, critic
direct) against SB3's own ``MlpPolicy`` with the same network. One run each,
full space first, in CPU-seconds of this process (`time.process_time`: a loaded
machine moves the ratio little); the target is a ratio <= 1.3 (DESIGN.md: the
projection is recomputed once per update, not per sample).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rlsub.algos.pg import algorithm_kwargs, build_model, policy_subspace
from rlsub.algos.pg_envs import sb3_env_factory
from rlsub.core.bundled import config_path
from rlsub.core.config import load_experiment
from rlsub.envs.spec import load_env_spec

CONFIG = config_path("cartpole_ppo_actor")


def _time_learn(model: Any, steps: int) -> float:
    """CPU-seconds of model.learn(steps) (one torch thread, envs in this process)."""
    t = time.process_time()
    model.learn(total_timesteps=steps)
    return time.process_time() - t


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    steps = 10_000 if getattr(args, "quick", False) else 100_000
    d = 16
    cfg = load_experiment(CONFIG)
    spec = load_env_spec(cfg.env or "cartpole", cfg.env_variant)
    n_envs = cfg.train.n_envs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = make_vec_env(sb3_env_factory(spec), n_envs=n_envs, seed=0)
        kwargs = algorithm_kwargs("ppo", cfg.train.hyperparams)
        hidden = list(cfg.network.kwargs.get("hidden", [64, 64]))
        full = PPO(
            "MlpPolicy",
            env,
            seed=0,
            device="cpu",
            policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}},
            **kwargs,
        )
        t_full = _time_learn(full, steps)
        env = make_vec_env(sb3_env_factory(spec), n_envs=n_envs, seed=0)
        model, _ = build_model(cfg, d, 0, env)
        t_sub = _time_learn(model, steps)
    finally:
        torch.set_num_threads(threads)
    result = {
        "env": spec.id,
        "steps": steps,
        "n_envs": n_envs,
        "d": d,
        "D": policy_subspace(model).D,
        "full_s": t_full,
        "subspace_s": t_sub,
        "full_steps_per_s": steps / t_full,
        "subspace_steps_per_s": steps / t_sub,
        "clock": "CPU-seconds of this process (time.process_time)",
        "ratio": t_sub / t_full,
        "target": 1.3,
    }

    def human(r: dict[str, Any]) -> str:
        return (
            f"PPO on {r['env']}, {r['steps']:,} env steps, {r['n_envs']} envs, one thread, "
            "CPU-seconds\n"
            f"full space (SB3 MlpPolicy)      {r['full_s']:7.1f} CPU-s  "
            f"({r['full_steps_per_s']:,.0f} steps/CPU-s)\n"
            f"subspace d={r['d']} (actor D={r['D']:,})  {r['subspace_s']:7.1f} CPU-s  "
            f"({r['subspace_steps_per_s']:,.0f} steps/CPU-s)\n"
            f"ratio subspace / full           {r['ratio']:7.2f}  (target <= {r['target']})"
        )

    return result, human
