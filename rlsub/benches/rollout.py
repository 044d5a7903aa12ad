"""`rlsub bench rollout`: useful env steps per CPU-second of policy-in-the-loop rollouts over
raw env steps per CPU-second.

Everything runs on one thread (torch's, the numba kernels', MuJoCo's), and every
rate is per CPU-second of this process (`time.process_time`), so a loaded machine
moves the ratios little (wall-clock rates, also printed, move with the load).
For each env, the same vector env (same slot count) is stepped, in interleaved
rounds whose median ratio is printed,
  (a) with a constant action for T steps (the physical limit of that vector env), and
  (b) by `population_rollout` of a population of random subspace policies
      (batched forward, masking, observation normalisation).
The ratio is USEFUL env steps per second (steps of episodes still playing) over
(a)'s slot steps per second; the slot steps (b) simulates are counted
separately, and the useful fraction is useful / simulated. CartPole runs
through rlsub.rollout.fused (physics in the lane kernel, only the slots still
playing); the gymnasium vector env steps every slot, finished ones masked, as
the torch loop (`kernels=False`, printed for comparison) does. MuJoCo's
SyncVectorEnv steps only the slots still playing in both. One warm-up rollout
each comes first (numba compiles or loads its cache there). Useful steps per
CPU-second are the figure to compare with another stack.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm


def raw_steps_per_s(env: Any, steps: int) -> tuple[float, float]:
    """Slot steps of a constant action per CPU-second and per wall second."""
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        env.step(action)
    n = env.num_envs * steps
    return n / max(time.process_time() - c, 1e-9), n / (time.perf_counter() - t)


class PolicyLoop:
    """Population rollouts of random subspace policies, timed in chunks of >= `steps` slot steps."""

    def __init__(self, env: Any, dims: Any, sub: Subspace, N: int, kernels: bool) -> None:
        self.env, self.dims, self.sub, self.N, self.kernels = env, dims, sub, N, kernels
        self.norm = RunningNorm(dims.obs_shape)
        self.gen = torch.Generator().manual_seed(0)
        self.seed = 0
        self.slot_steps = self.useful = 0
        self.wall = self.cpu = 0.0
        self.chunk(1)  # warm-up (numba compiles or loads its cache here), not counted
        self.slot_steps = self.useful = 0
        self.wall = self.cpu = 0.0  # warm-up (numba compiles or loads its cache here)

    def chunk(self, min_steps: int) -> tuple[float, float]:
        """Useful steps per CPU-second and per wall second over rollouts totalling at least
        min_steps useful steps."""
        done = 0
        t, c = time.perf_counter(), time.process_time()
        while done < min_steps:
            Z = torch.randn(self.N, self.sub.d, generator=self.gen) * 0.5
            res = population_rollout(
                self.sub, Z, self.env, self.dims, 1, self.seed, self.norm,
                update_norm=True, kernels=self.kernels,
            )  # fmt: skip
            done += res.env_steps
            self.slot_steps += res.slot_steps
            self.useful += res.env_steps
            self.seed += 1
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        self.wall += wall
        self.cpu += cpu
        return done / max(cpu, 1e-9), done / wall


def measure(env_name: str, slots: int, d: int, steps: int, rounds: int) -> dict[str, Any]:
    """Ratios as medians over `rounds` rounds of (raw, kernels, torch loop), each >= steps/rounds.

    The three are interleaved so that each round's ratio compares runs made
    moments apart: this machine's speed drifts by up to 1.5x within a minute.
    """
    spec = load_env_spec(env_name)
    env = make_vec_env(spec, slots)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [20, 20], "activation": "relu"}, dims)
    sub = Subspace.from_spec("mlp", kw, 0, d, "sparse", 0)
    lanes, torch_loop = (
        PolicyLoop(env, dims, sub, slots, True),
        PolicyLoop(env, dims, sub, slots, False),
    )
    per = max(1, steps // rounds)
    raws, pols, tors = [], [], []  # (per CPU-second, per wall second) each round
    for _ in range(rounds):
        raws.append(raw_steps_per_s(env, per))
        pols.append(lanes.chunk(per * slots))
        tors.append(torch_loop.chunk(per * slots))
    env.close()
    r_cpu, p_cpu, t_cpu = (np.array([x[0] for x in a]) for a in (raws, pols, tors))
    raw, pol, pol_torch = (float(np.median(a)) for a in (r_cpu, p_cpu, t_cpu))
    ratio = float(np.median(p_cpu / r_cpu))
    ratio_torch = float(np.median(t_cpu / r_cpu))
    wall_ratio = float(np.median(np.array([x[1] for x in pols]) / np.array([x[1] for x in raws])))
    useful = lanes.useful / lanes.slot_steps
    row = {
        "clock": "CPU-seconds of this process (time.process_time), one thread",
        "useful_steps_cpu_s": lanes.useful / max(lanes.cpu, 1e-9),
        "slot_steps_s": lanes.slot_steps / max(lanes.wall, 1e-9),
        "torch_loop_useful_fraction": torch_loop.useful / torch_loop.slot_steps,
        "env": spec.id,
        "slots": slots,
        "d": d,
        "rounds": rounds,
        "raw_steps_cpu_s": raw,
        "policy_steps_cpu_s": pol,
        "ratio": ratio,
        "wall_ratio": wall_ratio,
        "torch_loop_steps_cpu_s": pol_torch,
        "torch_loop_ratio": ratio_torch,
        "useful_fraction": useful,
    }
    print(
        f"  {spec.id}: raw {raw:,.0f} slot steps/CPU-s, policy {pol:,.0f} useful steps/CPU-s "
        f"({useful:.0%} of the simulated), ratio {ratio:.2f} (torch loop {ratio_torch:.2f}), "
        f"medians of {rounds} rounds",
        file=sys.stderr,
    )
    return row


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    torch.set_num_threads(1)
    quick = getattr(args, "quick", False)
    rows = [
        measure("cartpole", 256, 8, 200 if quick else 4000, 2 if quick else 10),
        measure("inverted_pendulum", 64, 4, 50 if quick else 500, 2 if quick else 5),
    ]
    targets = {"CartPole-v1": 0.7, "InvertedPendulum-v5": 0.5}
    for r in rows:
        r["target"] = targets[r["env"]]
    result = {"rows": rows}

    def human(r: dict[str, Any]) -> str:
        lines = [
            "| env | slots | raw slot steps / CPU-s | policy-in-the-loop useful steps / CPU-s "
            "| ratio | target | (wall-clock ratio) | useful / simulated | torch loop ratio "
            "| torch loop useful / simulated |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for x in r["rows"]:
            lines.append(
                f"| {x['env']} | {x['slots']} | {x['raw_steps_cpu_s']:,.0f} "
                f"| {x['policy_steps_cpu_s']:,.0f} | {x['ratio']:.2f} | >= {x['target']} "
                f"| {x['wall_ratio']:.2f} | {x['useful_fraction']:.0%} "
                f"| {x['torch_loop_ratio']:.2f} | {x['torch_loop_useful_fraction']:.0%} |"
            )
        return "\n".join(lines)

    return result, human
