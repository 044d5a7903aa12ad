"""rlsub.rollout.classic and classic_fused: Acrobot-v1, Pendulum-v1 and MountainCar-v0
physics in the lane kernels equal gymnasium's step bit for bit, start states are a seeded
single env's, and whole rollouts equal the SyncVectorEnv path's (returns, lengths,
truncation, caps, observation statistics, and the RNGs left for unseeded resets)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.rollout import classic, classic_fused, lanes
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RunningNorm, reset_slots

IDS = ["Acrobot-v1", "Pendulum-v1", "MountainCar-v0"]


def _kernel_step(kind, state, obs, s, action, consts):
    if kind == classic.ACROBOT:
        return classic.acrobot_step(state, obs, s, int(action), consts)
    if kind == classic.PENDULUM:
        return classic.pendulum_step(state, obs, s, np.float32(action[0]), consts)
    return classic.mountain_car_step(state, obs, s, int(action), consts)


def _action(kind, state, s, rng):
    """Random, or pumping energy (so that Acrobot and MountainCar reach their goals and
    MountainCar hits its left wall); Pendulum: torques beyond the box (clipped)."""
    if kind == classic.PENDULUM:
        return np.array([rng.uniform(-2.5, 2.5)], dtype=np.float32)
    if rng.random() < 0.3:
        return int(rng.integers(3))
    velocity = state[3, s] if kind == classic.ACROBOT else state[1, s]
    return 2 if velocity > 0 else 0


@pytest.mark.parametrize("env_id", IDS)
def test_physics_equals_gymnasium_step_for_step(env_id):
    S, steps = 16, 400
    entry, consts, max_ep = classic.fast_path(make_vec_env(load_env_spec(env_id), 2))
    assert max_ep == gym.spec(env_id).max_episode_steps
    envs = [gym.make(env_id) for _ in range(S)]
    seeds = list(range(1000, 1000 + S))
    first = np.stack([e.reset(seed=sd)[0] for e, sd in zip(envs, seeds, strict=True)])
    state, obs, _ = classic.start_states(entry, seeds)
    np.testing.assert_array_equal(obs, first)  # Acrobot's: numpy's float32 cos and sin
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(steps):
        for s, e in enumerate(envs):
            a = _action(entry.kind, state, s, rng)
            reward, term = _kernel_step(entry.kind, state, obs, s, a, consts)
            ob, r, te, tr, _ = e.step(a)
            assert (reward, term) == (r, te)
            np.testing.assert_array_equal(obs[s], ob)
            theirs = np.asarray(e.unwrapped.state, float)  # ours: + trig kept for the next step
            np.testing.assert_array_equal(state[: len(theirs), s], theirs)
            if te or tr:  # start again from a fresh seed, both sides
                ended += te
                seed = int(rng.integers(2**31))
                e.reset(seed=seed)
                st, ob0, _ = classic.start_states(entry, [seed])
                state[:, s], obs[s] = st[:, 0], ob0[0]
    if entry.kind != classic.PENDULUM:  # the goal was reached: termination was compared
        assert ended > 0


def _setup(env_id, N, K, d=5):
    spec = load_env_spec(env_id)
    env = make_vec_env(spec, N * K)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [16, 8], "activation": "tanh"}, dims)
    sub = Subspace.from_spec("mlp", kw, theta0_seed=1, d=d, projection="sparse", projection_seed=2)
    return spec, env, dims, sub


@pytest.mark.parametrize("env_id", IDS)
def test_fused_rollouts_equal_the_gymnasium_path(env_id):
    """population_rollout through classic_fused gives what the lane kernels give on
    gymnasium's SyncVectorEnv, bit for bit: seeded, capped, then unseeded (the fused env's
    RNGs were left as seeded resets leave them)."""
    N, K = 6, 2
    spec, fused_env, dims, sub = _setup(env_id, N, K)
    gym_env = make_vec_env(spec, N * K)
    assert classic_fused.supported(fused_env)
    norms = [RunningNorm(dims.obs_shape), RunningNorm(dims.obs_shape)]
    gen = torch.Generator().manual_seed(0)
    for seed, cap in ((3, None), (11, 40), (None, None)):
        Z = torch.randn(N, 5, generator=gen) * 2.0
        fast = population_rollout(sub, Z, fused_env, dims, K, seed, norms[0], True, cap)
        seeds = None if seed is None else [seed + k for _ in range(N) for k in range(K)]
        obs = reset_slots(gym_env, seeds)
        rets, lens, slot_steps, capped = lanes.rollout(
            sub, Z, gym_env, dims, K, obs, norms[1], True, cap
        )
        np.testing.assert_array_equal(fast.returns.ravel(), rets)
        np.testing.assert_array_equal(fast.lengths.ravel(), lens)
        assert (fast.capped, fast.slot_steps, fast.env_steps) == (capped, slot_steps, lens.sum())
        np.testing.assert_array_equal(norms[0].mean, norms[1].mean)
        np.testing.assert_array_equal(norms[0].var, norms[1].var)
        assert norms[0].count == norms[1].count
        if cap is not None:
            assert capped > 0 and lens.max() == cap
        elif seed is not None:  # episodes run to their ends: truncated at the env's cap
            assert lens.max() <= spec.max_episode_steps
            assert env_id == "Acrobot-v1" or lens.max() == spec.max_episode_steps


def test_start_states_follow_each_slots_seed():
    entry = classic.FAST_PATHS["Pendulum-v1"]
    state, obs, after = classic.start_states(entry, [7, 8, 7])
    np.testing.assert_array_equal(state[:, 0], state[:, 2])
    assert not np.array_equal(state[:, 0], state[:, 1])
    env = gym.make("Pendulum-v1")
    np.testing.assert_array_equal(env.reset(seed=8)[0], obs[1])
    # the RNG left behind is the env's after that seeded reset
    assert after[8] == env.unwrapped.np_random.bit_generator.state


def test_fast_path_only_for_the_plain_envs():
    spec = load_env_spec("Acrobot-v1")
    assert classic.fast_path(make_vec_env(spec, 2)) is not None
    nips = make_vec_env(spec, 2)
    for e in nips.envs:
        e.unwrapped.book_or_nips = "nips"
    assert classic.fast_path(nips) is None  # other dynamics: through gymnasium
    clip = lambda e: gym.wrappers.ClipReward(e, -0.5, 0.5)  # noqa: E731
    wrapped = gym.make_vec("Acrobot-v1", 2, vectorization_mode="sync", wrappers=[clip])
    assert classic.fast_path(wrapped) is None  # a wrapper that changes rewards
    assert classic.fast_path(make_vec_env(load_env_spec("cartpole"), 2)) is None
    assert not classic_fused.supported(make_vec_env(load_env_spec("CartPole-v1"), 2))


def test_an_env_without_a_fast_path_still_runs():
    """The nips Acrobot goes through gymnasium's SyncVectorEnv and the lane kernels."""
    N, K = 3, 1
    _, env, dims, sub = _setup("Acrobot-v1", N, K)
    for e in env.envs:
        e.unwrapped.book_or_nips = "nips"
    assert not classic_fused.supported(env)
    res = population_rollout(sub, torch.zeros(N, 5), env, dims, K, 0)
    assert res.env_steps == res.lengths.sum() > 0


def test_a_trial_is_the_same_with_and_without_the_fast_path(monkeypatch):
    """A short ES trial on MountainCar gives the same record through classic_fused as
    through gymnasium's SyncVectorEnv (score, steps, curve)."""
    import rlsub
    from rlsub.core.config import load_experiment

    cfg = load_experiment("cartpole_es").to_dict()
    cfg = dict(cfg, env="MountainCar-v0", name="es_mountain_car")
    cfg["train"] = dict(cfg["train"], generations=2, stop_when_solved=False)
    calls = []
    rollout = classic_fused.rollout
    monkeypatch.setattr(classic_fused, "rollout", lambda *a: calls.append(1) or rollout(*a))
    fast = rlsub.train(cfg, 3, 0)
    assert len(calls) >= 3  # two generations and an evaluation went through the kernels
    monkeypatch.setattr(classic_fused, "supported", lambda env: False)
    n_fast = len(calls)
    slow = rlsub.train(cfg, 3, 0)
    assert len(calls) == n_fast  # and none of the second trial
    assert fast.status == slow.status == "done"
    assert (fast.final_eval_mean, fast.env_steps, fast.curve) == (
        slow.final_eval_mean,
        slow.env_steps,
        slow.curve,
    )
