"""Nanoseconds per slot step of a CartPole rollout through rlsub.rollout.fused: 64 slots
around a trained direct-ES policy (long episodes), 20 rollouts.

    python docs/bench/kernel_step.py
"""

import time

import numpy as np
import torch

from rlsub.algos.es import train
from rlsub.algos.es_setup import build_setup
from rlsub.core.config import load_experiment
from rlsub.rollout import fused, lanes
from rlsub.rollout.slots import RunningNorm

cfg = load_experiment("cartpole_es")
s = build_setup(cfg, "direct", 0, 1)
spec, env, dims, seeds, sub = s.spec, s.env, s.dims, s.seeds, s.sub
r = train(cfg, "direct", 1, progress=False)
z = r.subspace.z.detach().clone()
Z = z[None] + 0.05 * torch.randn(64, z.numel(), generator=torch.Generator().manual_seed(0))
norm = RunningNorm.from_state(r.extra["obs_norm"])
w0 = lanes.lane_weights(sub, Z, 1)


def run():
    norms = lanes.LaneNorms([norm], np.zeros(64, np.int64), 4, False)
    return fused.rollout(sub.module, w0.copy(), env, dims, list(range(64)), norms, None)


run()  # compile or load the cache
t, c, n = time.perf_counter(), time.process_time(), 0
for _ in range(20):
    _, lens, _, _ = run()
    n += int(lens.sum())
wall, cpu = time.perf_counter() - t, time.process_time() - c
print(
    f"{n} steps, {wall / n * 1e9:.0f} ns/step wall, {cpu / n * 1e9:.0f} ns/step CPU, "
    f"mean length {lens.mean():.0f}"
)
