"""Whole Acrobot-v1, Pendulum-v1 and MountainCar-v0 rollouts in one compiled loop, as
`rlsub.rollout.fused` plays CartPole: physics (`rlsub.rollout.classic`) and policy per lane,
only the slots still playing, no Python per step.

Without it these envs run as gymnasium's SyncVectorEnv: a Python `step` per slot per step
(`rlsub.rollout.slots.SlotStepper`), 20-40 us each. Here a slot step is the lane kernel's
policy plus the env's float64 physics, and the results equal the SyncVectorEnv path's bit
for bit (returns, lengths, capped episodes, observation statistics: tests/test_classic.py),
because the physics equals gymnasium's step and the policy, book-keeping and compaction
are the same lane kernels in the same order.

Start states come from each slot's seed as a single env seeded with it draws them
(`classic.start_states`), and the vector env's sub-envs are left with the RNGs a seeded
reset leaves (`classic.seed_envs`), so unseeded rollouts later (reseed: false or N, which
run through gymnasium) continue as they would have. `rollout` takes the arguments of
`rlsub.rollout.fused.rollout`: groups of slots (several trials) and tiles work the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from rlsub.rollout.classic import (
    ACROBOT,
    PENDULUM,
    acrobot_step,
    fast_path,
    mountain_car_step,
    pendulum_step,
    seed_envs,
    start_states,
)
from rlsub.rollout.lanes import act_lanes, compact_lanes


def supported(env: Any) -> bool:
    """True for a SyncVectorEnv of a plain Acrobot-v1, Pendulum-v1 or MountainCar-v0
    (`rlsub.rollout.classic.fast_path`)."""
    return fast_path(env) is not None


@njit(cache=True, error_model="numpy")
def _rollout(kind, state, obs, done, returns, lengths, lanes, w, sizes, tanh, buf, norm, s1,
             s2, update, discrete, ai, af, low, high, consts, max_episode_steps, max_steps):  # fmt: skip
    """Play the episodes of the slots `lanes` (lane j: slot lanes[j], weights w[:, j]) from
    `state` (n_state, S) and observations `obs` (S, n_obs); returns the slot steps simulated
    (slots cut by max_steps stay not done)."""
    n = lanes.shape[0]
    act_lanes(obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, discrete, ai, af, low,
         high)  # fmt: skip
    slot_steps = 0
    t = 0
    while True:
        playing = 0
        for j in range(n):
            s = lanes[j]
            if done[s]:
                continue
            if kind == ACROBOT:
                reward, term = acrobot_step(state, obs, s, ai[s], consts)
            elif kind == PENDULUM:
                reward, term = pendulum_step(state, obs, s, af[s, 0], consts)
            else:
                reward, term = mountain_car_step(state, obs, s, ai[s], consts)
            slot_steps += 1
            returns[s] += reward
            lengths[s] += 1
            if term or lengths[s] >= max_episode_steps:
                done[s] = True
            else:
                playing += 1
        t += 1
        if playing == 0 or (max_steps > 0 and t >= max_steps):
            return slot_steps
        if 2 * playing <= n:
            n = compact_lanes(w, lanes, done, n)
        act_lanes(obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, discrete, ai, af,
             low, high)  # fmt: skip


def rollout(
    module: Any,
    w: np.ndarray,
    env: Any,
    dims: Any,
    seeds: list[int],
    norms: Any,
    max_steps: int | None,
    tiles: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Play slot s (lane weights w[:, s], start seed seeds[s]) to its episode's end, or to
    `max_steps` steps; `env` (a `supported` one) is not stepped, only its RNGs are seeded.

    `norms` is a `rlsub.rollout.lanes.LaneNorms`; its statistics are folded in after the
    rollout. `tiles`: lane counts of consecutive blocks played one after another; None: one
    block. Returns (returns (S,), lengths (S,), slot_steps, capped (S,) bool: cut short).
    """
    from rlsub.rollout.lanes import LanePolicy

    found = fast_path(env)
    if found is None:
        raise ValueError("classic_fused.rollout: not a plain Acrobot, Pendulum or MountainCar")
    entry, consts, max_ep = found
    pol = LanePolicy(module, w, dims)
    S = pol.S
    state, obs, after = start_states(entry, seeds)
    seed_envs(env, seeds, after)
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    slot_steps = 0
    start = 0
    for size in tiles or [S]:
        block = slice(start, start + size)
        lanes = np.ascontiguousarray(pol.lanes[block])  # contiguous: the lane loops vectorise
        w_block = np.ascontiguousarray(pol.w[:, block])
        slot_steps += _rollout(
            entry.kind, state, obs, done, returns, lengths, lanes, w_block, pol.sizes,
            pol.tanh, pol.buf, norms.kernel_args, norms.s1, norms.s2, norms.update,
            pol.discrete, pol.ai, pol.af, pol.low, pol.high, consts, max_ep,
            0 if max_steps is None else int(max_steps),
        )  # fmt: skip
        start += size
    norms.fold(lengths)
    return returns, lengths, int(slot_steps), ~done
