"""gymnasium's Acrobot-v1, Pendulum-v1 and MountainCar-v0 as numba physics for the lane
kernels, and their start states: what `rlsub.rollout.classic_fused` plays.

Each `*_step` is the env's `step` for one slot in the same float64 operations in the same
order (constants read from the env instance, or computed from them by the same Python
expressions), so the states, observations, rewards and ends equal gymnasium's bit for bit
(tests/test_classic.py steps them side by side). Where that takes care:

- Acrobot: RK4 over the 5-vector (angles, velocities, torque) as gymnasium's `rk4`
  (k1 + 2 k2 + 2 k3 + k4, left to right), `wrap` as its two while loops, `bound` as
  min(max()); the start state is float32 (gymnasium casts it), the state float64 after
  the first step; the first observation takes numpy's float32 cos/sin, which differ from
  libm's, so it is computed with numpy as gymnasium does (`start_states`).
- Pendulum: `angle_normalize` with Python's float modulo (numpy's scalar modulo is the
  same); the torque is float32, so `u**2`, `0.001 * u**2` and `3.0 / (m l^2) * u` are
  float32 operations, as numpy 2 evaluates them on a float32 scalar; `np.clip` as
  compare-and-select (NaN passes through, as in numpy).
- numpy's `x**2` on a scalar calls libm's pow, which is not always x * x (about 1 in 1,200
  inputs differ in the last bit); LLVM folds pow(x, 2.0) into x * x when it sees the
  constant, so the exponent is handed in at run time (`consts[0]`) and pow is called.
- MountainCar: `math.cos` as gymnasium calls it; both clips; the velocity zeroed at the
  left wall.

The kernels compile without fast-math (as rlsub.rollout.lanes: the same bits on any
x86-64 CPU). Which env has a fast path is declared here, keyed by gymnasium id
(`FAST_PATHS`), and `fast_path` accepts only a SyncVectorEnv of that id whose sub-envs
are the plain class with its standard settings, behind gymnasium's own wrappers.

Imports: numpy, numba, gymnasium. Knows nothing of policies or ES.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.acrobot import AcrobotEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit
from numba import njit

ACROBOT, PENDULUM, MOUNTAIN_CAR = 0, 1, 2
TWO = 2.0  # consts[0]: the exponent of numpy's scalar x**2, handed to pow at run time


# ---------------------------------------------------------------- Acrobot-v1


def _acrobot_consts(b: Any) -> np.ndarray:
    """Acrobot's constants, and its constant subexpressions in gymnasium's order."""
    m1, m2, l1, lc1, lc2 = (
        b.LINK_MASS_1,
        b.LINK_MASS_2,
        b.LINK_LENGTH_1,
        b.LINK_COM_POS_1,
        b.LINK_COM_POS_2,
    )
    I1 = I2 = b.LINK_MOI
    g, pi = 9.8, math.pi  # _dsdt's own g, numpy's pi
    t = b.AVAIL_TORQUE
    return np.array(
        [
            TWO, m2, I1, I2, b.dt, b.MAX_VEL_1, b.MAX_VEL_2, float(t[0]), float(t[1]),
            float(t[2]),
            m1 * lc1**2,  # 10: d1's first term
            l1**2 + lc2**2,  # 11
            2 * l1 * lc2,  # 12
            lc2**2,  # 13: d2
            l1 * lc2,  # 14
            m2 * lc2 * g,  # 15: phi2
            pi / 2.0,  # 16
            -m2 * l1 * lc2,  # 17: phi1
            2 * m2 * l1 * lc2,  # 18
            (m1 * lc1 + m2 * l1) * g,  # 19
            pi / 2,  # 20
            m2 * l1 * lc2,  # 21: ddtheta2 (book)
            m2 * lc2**2 + I2,  # 22
        ],
        dtype=np.float64,
    )  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _acrobot_dsdt(theta1, theta2, dtheta1, dtheta2, a, c, cos2, sin2):
    """AcrobotEnv._dsdt (the book's dynamics) given cos2, sin2 = cos(theta2), sin(theta2)
    (gymnasium calls them 2 and 3 times: pure, the same values): (dtheta1, dtheta2,
    ddtheta1, ddtheta2)."""
    two, m2, I1, I2 = c[0], c[1], c[2], c[3]
    d1 = c[10] + m2 * (c[11] + c[12] * cos2) + I1 + I2
    d2 = m2 * (c[13] + c[14] * cos2) + I2
    phi2 = c[15] * math.cos(theta1 + theta2 - c[16])
    phi1 = (
        c[17] * dtheta2**two * sin2
        - c[18] * dtheta2 * dtheta1 * sin2
        + c[19] * math.cos(theta1 - c[20])
        + phi2
    )
    ddtheta2 = (a + d2 / d1 * phi1 - c[21] * dtheta1**two * sin2 - phi2) / (c[22] - d2**two / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return dtheta1, dtheta2, ddtheta1, ddtheta2


@njit(cache=True, inline="always", error_model="numpy")
def _wrap(x, m, M):
    diff = M - m
    while x > M:
        x = x - diff
    while x < m:
        x = x + diff
    return x


@njit(cache=True, inline="always", error_model="numpy")
def _bound(x, m, M):
    """Python's min(max(x, m), M)."""
    x = m if m > x else x
    return M if M < x else x


@njit(cache=True, inline="always", error_model="numpy")
def _acrobot_stage(y0, y1, y2, y3, h, k0, k1, k2, k3, a, c):
    """_dsdt at y + h k (an RK4 stage)."""
    t1 = y1 + h * k1
    return _acrobot_dsdt(
        y0 + h * k0, t1, y2 + h * k2, y3 + h * k3, a, c, math.cos(t1), math.sin(t1)
    )


@njit(cache=True, error_model="numpy")
def acrobot_step(state, obs, s, action, c):
    """AcrobotEnv.step for slot s (state (6, S) float64: the 4 of gymnasium's, then cos and
    sin of theta2, which the next step's first stage needs; obs (S, 6) float32):
    (reward, terminated)."""
    y0, y1, y2, y3 = state[0, s], state[1, s], state[2, s], state[3, s]
    a = c[7 + action]
    dt = c[4]  # rk4's t[1] - t[0] = dt - 0
    dt2 = dt / 2.0
    k10, k11, k12, k13 = _acrobot_dsdt(y0, y1, y2, y3, a, c, state[4, s], state[5, s])
    k20, k21, k22, k23 = _acrobot_stage(y0, y1, y2, y3, dt2, k10, k11, k12, k13, a, c)
    k30, k31, k32, k33 = _acrobot_stage(y0, y1, y2, y3, dt2, k20, k21, k22, k23, a, c)
    k40, k41, k42, k43 = _acrobot_stage(y0, y1, y2, y3, dt, k30, k31, k32, k33, a, c)
    h = dt / 6.0
    n0 = y0 + h * (k10 + 2 * k20 + 2 * k30 + k40)
    n1 = y1 + h * (k11 + 2 * k21 + 2 * k31 + k41)
    n2 = y2 + h * (k12 + 2 * k22 + 2 * k32 + k42)
    n3 = y3 + h * (k13 + 2 * k23 + 2 * k33 + k43)
    n0 = _wrap(n0, -math.pi, math.pi)
    n1 = _wrap(n1, -math.pi, math.pi)
    n2 = _bound(n2, -c[5], c[5])
    n3 = _bound(n3, -c[6], c[6])
    state[0, s], state[1, s], state[2, s], state[3, s] = n0, n1, n2, n3
    cos0 = math.cos(n0)
    terminated = -cos0 - math.cos(n1 + n0) > 1.0
    obs[s, 0] = np.float32(cos0)
    obs[s, 1] = np.float32(math.sin(n0))
    cos1, sin1 = math.cos(n1), math.sin(n1)
    state[4, s], state[5, s] = cos1, sin1
    obs[s, 2] = np.float32(cos1)
    obs[s, 3] = np.float32(sin1)
    obs[s, 4] = np.float32(n2)
    obs[s, 5] = np.float32(n3)
    return (0.0 if terminated else -1.0), terminated


def _acrobot_start(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """AcrobotEnv.reset's draw (float32 state) and its first observation (numpy float32 cos)."""
    st = rng.uniform(low=-0.1, high=0.1, size=(4,)).astype(np.float32)
    ob = np.array(
        [np.cos(st[0]), np.sin(st[0]), np.cos(st[1]), np.sin(st[1]), st[2], st[3]],
        dtype=np.float32,
    )
    theta2 = float(st[1])  # the first step's float64 cos and sin (libm, as numba's)
    return np.array([*st.astype(np.float64), math.cos(theta2), math.sin(theta2)]), ob


def _acrobot_standard(b: Any) -> bool:
    return b.book_or_nips == "book" and b.torque_noise_max == 0 and len(b.AVAIL_TORQUE) == 3


# ---------------------------------------------------------------- Pendulum-v1


def _pendulum_consts(b: Any) -> np.ndarray:
    g, m, l = b.g, b.m, b.l  # noqa: E741 (gymnasium's names)
    return np.array(
        [TWO, b.max_speed, b.max_torque, b.dt, 3 * g / (2 * l), 3.0 / (m * l**2)],
        dtype=np.float64,
    )


@njit(cache=True, inline="always", error_model="numpy")
def _clip(x, lo, hi):
    """np.clip of a scalar (NaN passes through)."""
    return lo if x < lo else (hi if x > hi else x)


@njit(cache=True, error_model="numpy")
def pendulum_step(state, obs, s, u, c):
    """PendulumEnv.step for slot s with torque u (float32): (reward, terminated=False).
    state (3, S): theta, its velocity, and sin(theta) (computed for the observation, used
    by the next step)."""
    two, max_speed, dt = c[0], c[1], c[3]
    th, thdot, sin_th = state[0, s], state[1, s], state[2, s]
    u = _clip(u, np.float32(-c[2]), np.float32(c[2]))
    an = ((th + np.pi) % (2 * np.pi)) - np.pi
    costs = an**two + 0.1 * thdot**two + np.float64(np.float32(0.001) * u ** np.float32(two))
    newthdot = thdot + (c[4] * sin_th + np.float64(np.float32(c[5]) * u)) * dt
    newthdot = _clip(newthdot, -max_speed, max_speed)
    newth = th + newthdot * dt
    sin_new = math.sin(newth)
    state[0, s], state[1, s], state[2, s] = newth, newthdot, sin_new
    obs[s, 0] = np.float32(math.cos(newth))
    obs[s, 1] = np.float32(sin_new)
    obs[s, 2] = np.float32(newthdot)
    return -costs, False


def _pendulum_start(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PendulumEnv.reset's draw (no options: +-(pi, 1)) and its first observation."""
    high = np.array([np.pi, 1.0])
    st = rng.uniform(low=-high, high=high)
    ob = np.array([np.cos(st[0]), np.sin(st[0]), st[1]], dtype=np.float32)
    return np.array([st[0], st[1], math.sin(st[0])]), ob  # + sin(theta) for the first step


def _pendulum_standard(b: Any) -> bool:
    return True  # g, m, l, dt, max_speed and max_torque are read from the instance


# ---------------------------------------------------------------- MountainCar-v0


def _mountain_car_consts(b: Any) -> np.ndarray:
    return np.array(
        [
            TWO, b.force, b.gravity, b.max_speed, b.min_position, b.max_position,
            b.goal_position, b.goal_velocity,
        ],
        dtype=np.float64,
    )  # fmt: skip


@njit(cache=True, error_model="numpy")
def mountain_car_step(state, obs, s, action, c):
    """MountainCarEnv.step for slot s: (reward, terminated)."""
    force, gravity, max_speed, min_pos, max_pos = c[1], c[2], c[3], c[4], c[5]
    position, velocity = state[0, s], state[1, s]
    velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)
    velocity = _clip(velocity, -max_speed, max_speed)
    position += velocity
    position = _clip(position, min_pos, max_pos)
    if position == min_pos and velocity < 0:
        velocity = 0.0
    terminated = position >= c[6] and velocity >= c[7]
    state[0, s], state[1, s] = position, velocity
    obs[s, 0] = np.float32(position)
    obs[s, 1] = np.float32(velocity)
    return -1.0, terminated


def _mountain_car_start(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MountainCarEnv.reset's draw (no options: position in [-0.6, -0.4], velocity 0)."""
    st = np.array([rng.uniform(low=-0.6, high=-0.4), 0])
    return st.astype(np.float64), np.array(st, dtype=np.float32)


def _mountain_car_standard(b: Any) -> bool:
    return True  # every constant is read from the instance


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class ClassicEnv:
    """A gymnasium env with a compiled path: its kernel `kind`, class, state size, and how to
    read its constants, draw a start state from an RNG, and check its settings."""

    kind: int
    env_class: type
    n_state: int
    consts: Callable[[Any], np.ndarray]
    start: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
    standard: Callable[[Any], bool]


FAST_PATHS: dict[str, ClassicEnv] = {
    "Acrobot-v1": ClassicEnv(
        ACROBOT, AcrobotEnv, 6, _acrobot_consts, _acrobot_start, _acrobot_standard
    ),
    "Pendulum-v1": ClassicEnv(
        PENDULUM, PendulumEnv, 3, _pendulum_consts, _pendulum_start, _pendulum_standard
    ),
    "MountainCar-v0": ClassicEnv(
        MOUNTAIN_CAR, MountainCarEnv, 2, _mountain_car_consts, _mountain_car_start,
        _mountain_car_standard,
    ),
}  # fmt: skip
_PLAIN_WRAPPERS = (TimeLimit, OrderEnforcing, PassiveEnvChecker)


def fast_path(env: Any) -> tuple[ClassicEnv, np.ndarray, int] | None:
    """(entry, constants, max_episode_steps) when `env` is a SyncVectorEnv of an id in
    FAST_PATHS whose sub-envs are that plain class with standard settings, no render mode,
    and only gymnasium's TimeLimit / OrderEnforcing / PassiveEnvChecker around it; else None."""
    if not isinstance(env, gym.vector.SyncVectorEnv):
        return None
    first = env.envs[0]
    entry = FAST_PATHS.get(getattr(first.spec, "id", None) or "")
    if entry is None:
        return None
    limit = None
    inner = first
    while isinstance(inner, gym.Wrapper):
        if type(inner) not in _PLAIN_WRAPPERS:
            return None
        if type(inner) is TimeLimit:
            limit = int(inner._max_episode_steps)
        inner = inner.env
    base = inner
    if type(base) is not entry.env_class or limit is None or base.render_mode is not None:
        return None
    if not entry.standard(base):
        return None
    return entry, entry.consts(base), limit


def start_states(
    entry: ClassicEnv, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray, dict[int, Any]]:
    """Slot s's start state as a single env reset with seed seeds[s] draws it.

    Returns (state (n_state, S) float64, obs (S, n_obs) float32, the RNG state each seed's
    generator is left in, by seed: `seed_envs` puts it into the vector env's sub-envs).
    """
    first: dict[int, int] = {}
    for seed in seeds:
        first.setdefault(int(seed), len(first))
    states, obs, after = [], [], {}
    for seed in first:
        rng = np.random.default_rng(seed)  # gymnasium's seeding.np_random(seed)
        st, ob = entry.start(rng)
        states.append(st)
        obs.append(ob)
        after[seed] = rng.bit_generator.state
    idx = [first[int(seed)] for seed in seeds]
    state = np.ascontiguousarray(np.stack(states)[idx].T, dtype=np.float64)
    return state, np.ascontiguousarray(np.stack(obs)[idx], dtype=np.float32), after


def seed_envs(env: Any, seeds: list[int], after: dict[int, Any]) -> None:
    """Leave every sub-env's RNG as `env.reset(seed=seeds)` leaves it (seeded, one start
    drawn), so that later unseeded resets follow from these seeds alone: about 1 us a slot,
    where the reset itself takes 15-25 us."""
    bases = _BASES.get(env)
    if bases is None:
        bases = _BASES[env] = [sub.unwrapped for sub in env.envs]
    for base, seed in zip(bases, seeds, strict=True):
        base.np_random.bit_generator.state = after[int(seed)]
        base._np_random_seed = int(seed)


_BASES: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
