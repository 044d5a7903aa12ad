"""`rlsub bench rollout`: policy-in-the-loop env steps/s over raw env steps/s.

For each env, the same vector env (same slot count) is stepped
  (a) with a constant action for T steps (the physical limit here), and
  (b) by `population_rollout` of a population of random subspace policies
      (batched forward, masking, observation normalisation),
and the ratio of slot steps per second is printed, measured in one run.
(b) counts every slot step it takes (finished slots are stepped but masked),
the same work as (a); the useful-step fraction is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from rlsub.cli import emit
from rlsub.envs import env_dims, load_env_spec, make_vec_env, policy_network_kwargs
from rlsub.rollout import RunningNorm, population_rollout
from rlsub.subspace import Subspace


def raw_steps_per_s(env: Any, steps: int) -> float:
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
    t = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    return env.num_envs * steps / (time.perf_counter() - t)


def policy_steps_per_s(
    env: Any, dims: Any, sub: Subspace, N: int, min_steps: int
) -> tuple[float, float]:
    norm = RunningNorm(dims.obs_shape)
    gen = torch.Generator().manual_seed(0)
    slot_steps = useful = 0
    t = time.perf_counter()
    seed = 0
    while slot_steps < min_steps:
        Z = torch.randn(N, sub.d, generator=gen) * 0.5
        res = population_rollout(sub, Z, env, dims, 1, seed, norm, update_norm=True)
        slot_steps += res.slot_steps
        useful += res.env_steps
        seed += 1
    return slot_steps / (time.perf_counter() - t), useful / slot_steps


def measure(env_name: str, slots: int, d: int, steps: int) -> dict[str, Any]:
    spec = load_env_spec(env_name)
    env = make_vec_env(spec, slots)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [20, 20], "activation": "relu"}, dims)
    sub = Subspace.from_spec("mlp", kw, 0, d, "sparse", 0)
    raw = raw_steps_per_s(env, steps)
    pol, useful = policy_steps_per_s(env, dims, sub, slots, steps * slots)
    raw2 = raw_steps_per_s(env, steps)  # again, to bracket machine noise
    env.close()
    raw_best = max(raw, raw2)
    row = {
        "env": spec.id,
        "slots": slots,
        "d": d,
        "raw_steps_s": raw_best,
        "policy_steps_s": pol,
        "ratio": pol / raw_best,
        "useful_fraction": useful,
    }
    print(
        f"  {spec.id}: raw {raw_best:,.0f} steps/s, policy {pol:,.0f} steps/s, ratio {pol / raw_best:.2f}",
        file=sys.stderr,
    )
    return row


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    quick = getattr(args, "quick", False)
    rows = [
        measure("cartpole", 256, 8, 200 if quick else 2000),
        measure("inverted_pendulum", 64, 4, 50 if quick else 500),
    ]
    targets = {"CartPole-v1": 0.7, "InvertedPendulum-v5": 0.5}
    for r in rows:
        r["target"] = targets[r["env"]]
    result = {"rows": rows}

    def human(r: dict[str, Any]) -> str:
        lines = [
            "| env | slots | raw steps/s | policy-in-the-loop steps/s | ratio | target | useful steps |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for x in r["rows"]:
            lines.append(
                f"| {x['env']} | {x['slots']} | {x['raw_steps_s']:,.0f} | {x['policy_steps_s']:,.0f} | "
                f"{x['ratio']:.2f} | >= {x['target']} | {x['useful_fraction']:.0%} |"
            )
        return "\n".join(lines)

    emit(args, result, human)
