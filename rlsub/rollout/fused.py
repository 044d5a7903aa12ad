"""Whole CartPole rollouts in one compiled loop: physics and policy per lane, no wasted slots.

gymnasium's CartPole vector env steps every slot, so once a population's short
episodes have ended their slots keep being simulated (masked) until the longest
episode ends: 9-14 % of the slot steps of an ES generation were useful. Here
the CartPole-v1 physics runs inside the lane kernel (`rlsub.rollout.lanes`) and
only for slots still playing, so every simulated step is a useful one, and the
rollout makes no Python call per step.

The physics is gymnasium's `CartPoleVectorEnv.step` for one slot, in the same
float64 operations in the same order (constants read from the env instance;
Euler integration; reward 1 a step; terminated outside +-2.4 or +-12 degrees;
truncated at the env's max_episode_steps), so the returns equal those of the
vector env (tests/test_rollout.py compares them step by step). Start states come
from each slot's seed as `rlsub.rollout.slots.reset_slots` draws them
(`cartpole_start_states`).

Slots can belong to several trials at once (`group`): each group keeps its own
observation statistics, so one call can play the populations of several ES trials.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from rlsub.envs.vector import spec_of
from rlsub.rollout.lanes import act_lanes, compact_lanes
from rlsub.rollout.slots import cartpole_start_states


def supported(env: Any) -> bool:
    """True for a vector env whose spec declares the CartPole fast path (`EnvSpec.fast_path`:
    gymnasium's native CartPole vector env, Euler integration) with CartPole's standard
    reward, 1 a step (not ``sutton_barto_reward``), as the kernel pays it."""
    spec = spec_of(env)
    return (
        spec is not None
        and spec.fast_path == "cartpole"
        and not spec.kwargs.get("sutton_barto_reward", False)
    )


def physics(env: Any) -> tuple[np.ndarray, int]:
    """(constants, max_episode_steps) of a CartPole vector env, as the kernel reads them."""
    b = env.unwrapped
    consts = np.array(
        [
            b.gravity, b.masspole, b.total_mass, b.length, b.polemass_length, b.force_mag,
            b.tau, b.x_threshold, b.theta_threshold_radians,
        ],
        dtype=np.float64,
    )  # fmt: skip
    return consts, int(b.max_episode_steps)


@njit(cache=True)
def _physics_step(state, s, action, c):
    """CartPoleVectorEnv.step for slot s (float64, the same operations); True if terminated."""
    gravity, masspole, total_mass, length, pml, force_mag, tau, x_thr, th_thr = (
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8],
    )  # fmt: skip
    x, x_dot, theta, theta_dot = state[0, s], state[1, s], state[2, s], state[3, s]
    force = force_mag if action == 1 else -force_mag
    costheta = math.cos(theta)
    sintheta = math.sin(theta)
    temp = (force + pml * (theta_dot * theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * (costheta * costheta) / total_mass)
    )
    xacc = temp - pml * thetaacc * costheta / total_mass
    x = x + tau * x_dot
    x_dot = x_dot + tau * xacc
    theta = theta + tau * theta_dot
    theta_dot = theta_dot + tau * thetaacc
    state[0, s], state[1, s], state[2, s], state[3, s] = x, x_dot, theta, theta_dot
    return x < -x_thr or x > x_thr or theta < -th_thr or theta > th_thr


@njit(cache=True)
def _rollout(state, obs, done, returns, lengths, lanes, w, sizes, tanh, buf, norm, s1, s2,
             update, ai, af, low, high, consts, max_episode_steps, max_steps):  # fmt: skip
    """Play the episodes of the slots `lanes` (lane j: slot lanes[j], weights w[:, j]) from
    `state` (4, S); returns the slot steps simulated (slots cut by max_steps stay not done)."""
    n = lanes.shape[0]
    for j in range(n):
        s = lanes[j]
        for i in range(4):
            obs[s, i] = np.float32(state[i, s])
    act_lanes(
        obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, True, ai, af, low, high
    )
    slot_steps = 0
    t = 0
    while True:
        playing = 0
        for j in range(n):
            s = lanes[j]
            if done[s]:
                continue
            term = _physics_step(state, s, ai[s], consts)
            for i in range(4):
                obs[s, i] = np.float32(state[i, s])
            slot_steps += 1
            returns[s] += 1.0
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
        act_lanes(
            obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, True, ai, af, low,
            high,
        )  # fmt: skip


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
    `max_steps` steps.

    `norms` is a `rlsub.rollout.lanes.LaneNorms`; its statistics are folded in after the
    rollout. `tiles`: lane counts of consecutive blocks played one after another (one block
    per trial keeps each block's weights in cache; every lane's result is the same either
    way); None: one block. Returns (returns (S,), lengths (S,), slot_steps, capped (S,)
    bool: cut short).
    """
    from rlsub.rollout.lanes import LanePolicy

    pol = LanePolicy(module, w, dims)
    S = pol.S
    consts, max_ep = physics(env)
    state = cartpole_start_states(seeds)
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    obs = np.empty((S, 4), dtype=np.float32)
    slot_steps = 0
    start = 0
    for size in tiles or [S]:
        block = slice(start, start + size)
        lanes = np.ascontiguousarray(pol.lanes[block])  # contiguous: the lane loops vectorise
        w_block = np.ascontiguousarray(pol.w[:, block])
        slot_steps += _rollout(
            state, obs, done, returns, lengths, lanes, w_block, pol.sizes,
            pol.tanh, pol.buf, norms.kernel_args, norms.s1, norms.s2, norms.update, pol.ai,
            pol.af, pol.low, pol.high, consts, max_ep, 0 if max_steps is None else int(max_steps),
        )  # fmt: skip
        start += size
    norms.fold(lengths)
    return returns, lengths, int(slot_steps), ~done
