import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsub.core.errors import RlsubError
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import (
    RunningNorm,
    actions_from_outputs,
    cartpole_start_states,
    reset_slots,
)


def _setup(env_name="cartpole", slots=8, d=6):
    spec = load_env_spec(env_name)
    env = make_vec_env(spec, slots)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [8], "activation": "tanh"}, dims)
    sub = Subspace.from_spec("mlp", kw, theta0_seed=3, d=d, projection="dense", projection_seed=4)
    return spec, env, dims, sub


def _single_episode(spec, sub, z, dims, seed, norm=None):
    """One plain gymnasium env, one episode, the same deterministic policy."""
    env = gym.make(spec.id, max_episode_steps=spec.max_episode_steps)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    with sub.z_set_to(z), torch.no_grad():
        while not done:
            x = obs if norm is None else norm.normalize(obs)
            out = sub(torch.as_tensor(np.asarray(x), dtype=torch.float32)[None])
            action = actions_from_outputs(out, dims)[0]
            obs, r, term, trunc, _ = env.step(action)
            total += r
            done = term or trunc
    return total


def test_population_rollout_equals_individual_runs_alone():
    spec, env, dims, sub = _setup(slots=4 * 2)
    torch.manual_seed(0)
    Z = torch.randn(4, 6) * 2.0
    res = population_rollout(sub, Z, env, dims, episodes=2, seed=100)
    assert res.returns.shape == (4, 2)
    assert len(set(res.returns.ravel().tolist())) > 1  # the individuals really differ
    for i in range(4):
        alone_env = make_vec_env(spec, 2)
        alone = population_rollout(sub, Z[i : i + 1], alone_env, dims, episodes=2, seed=100)
        np.testing.assert_array_equal(alone.returns[0], res.returns[i])
        for k in range(2):  # and a plain single env started from the same seed agrees
            assert _single_episode(spec, sub, Z[i], dims, 100 + k) == res.returns[i, k]


@pytest.mark.parametrize("kernels", [False, True])
def test_finished_slots_never_add_reward(kernels):
    spec, env, dims, sub = _setup(slots=6)
    Z = torch.randn(6, 6) * 3.0
    res = population_rollout(sub, Z, env, dims, episodes=1, seed=7, kernels=kernels)
    # CartPole pays 1 per step alive: a masked slot that kept earning would exceed its length
    np.testing.assert_array_equal(res.returns, res.lengths)
    assert res.lengths.min() < res.lengths.max()  # some slots finished early and were masked
    if kernels:  # rlsub.rollout.fused steps only the slots still playing
        assert res.env_steps == res.lengths.sum() == res.slot_steps
    else:  # the native vector env steps every slot, finished ones masked
        assert res.env_steps == res.lengths.sum() < res.slot_steps


def test_fused_cartpole_physics_equals_gymnasium_step_for_step():
    """rlsub.rollout.fused's physics gives CartPoleVectorEnv's float64 states bit for bit."""
    from rlsub.rollout import fused

    spec = load_env_spec("cartpole")
    env = make_vec_env(spec, 64)
    assert fused.supported(env)
    consts, max_ep = fused.physics(env)
    assert max_ep == spec.max_episode_steps
    seeds = list(range(100, 164))
    env.reset(seed=0)
    env.unwrapped.state = cartpole_start_states(seeds)
    mine = cartpole_start_states(seeds)
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(300):
        actions = rng.integers(0, 2, 64)
        was_done = env.unwrapped.prev_done.copy()  # these slots are reset by this step
        _, _, term, _, _ = env.step(actions)
        ended = np.array([fused._physics_step(mine, s, int(actions[s]), consts) for s in range(64)])
        theirs = env.unwrapped.state
        np.testing.assert_array_equal(mine[:, ~was_done], theirs[:, ~was_done])
        np.testing.assert_array_equal(ended[~was_done], np.asarray(term)[~was_done])
        compared += int((~was_done).sum())
        mine[:, was_done] = theirs[:, was_done]  # follow gymnasium's autoreset
    assert compared > 10_000


def test_obs_stats_frozen_during_evaluation():
    spec, env, dims, sub = _setup(slots=3)
    norm = RunningNorm(dims.obs_shape)
    Z = torch.zeros(3, 6)
    population_rollout(sub, Z, env, dims, 1, 0, norm, update_norm=True)
    assert norm.count > 1
    before = norm.state()
    population_rollout(sub, Z, env, dims, 1, 5, norm, update_norm=False)
    assert norm.state() == before


def test_running_norm_matches_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4))
    norm = RunningNorm((4,))
    for chunk in np.array_split(x, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean, x.mean(0), rtol=1e-3)
    np.testing.assert_allclose(norm.var, x.var(0), rtol=1e-3)


def test_inverted_pendulum_population_rollout_matches_single_env():
    spec, env, dims, sub = _setup("inverted_pendulum", slots=3)
    assert not dims.discrete and dims.n_actions == 1
    Z = torch.randn(3, 6)
    res = population_rollout(sub, Z, env, dims, episodes=1, seed=11)
    for i in range(3):
        assert _single_episode(spec, sub, Z[i], dims, 11) == pytest.approx(res.returns[i, 0])


def test_unknown_env_and_variant_are_clear_errors():
    with pytest.raises(RlsubError, match="unknown env 'pacman'"):
        load_env_spec("pacman")
    with pytest.raises(RlsubError, match="unknown variant 'v9'"):
        load_env_spec("cartpole", "v9")
    assert load_env_spec("cartpole", "v0").max_episode_steps == 200


@pytest.mark.parametrize(
    "env_name, activation, projection, include, max_steps",
    [
        ("cartpole", "tanh", "sparse", None, None),
        ("cartpole", "relu", "dense", ["4"], None),  # only the last layer in the subspace
        ("cartpole", "relu", "fastfood", None, 15),  # capped episodes
        ("inverted_pendulum", "tanh", "sparse", None, None),  # box actions
    ],
)
def test_lane_kernels_equal_the_torch_loop(env_name, activation, projection, include, max_steps):
    """rlsub.rollout.lanes (compiled, one lane per slot) gives the torch loop's results and statistics."""
    from rlsub.rollout import lanes

    spec = load_env_spec(env_name)
    N, K = 12, 2
    env = make_vec_env(spec, N * K)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [16, 8], "activation": activation}, dims)
    sub = Subspace.from_spec("mlp", kw, 1, 5, projection, 2, include=include)
    assert lanes.supported(sub, dims)
    norms = [RunningNorm(dims.obs_shape), RunningNorm(dims.obs_shape)]
    gen = torch.Generator().manual_seed(0)
    for rollout in range(3):  # the statistics of one rollout normalise the next
        Z = torch.randn(N, 5, generator=gen) * 2.0
        kernel, loop = (
            population_rollout(
                sub, Z, env, dims, K, 10 * rollout, norm, update_norm=True,
                max_steps=max_steps, kernels=kernels,
            )
            for kernels, norm in zip((True, False), norms, strict=True)
        )  # fmt: skip
        np.testing.assert_array_equal(kernel.returns, loop.returns)
        np.testing.assert_array_equal(kernel.lengths, loop.lengths)
        assert (kernel.env_steps, kernel.capped) == (loop.env_steps, loop.capped)
        # CartPole runs in rlsub.rollout.fused: only the slots still playing are simulated;
        # MuJoCo's SyncVectorEnv steps only those in both loops
        assert kernel.slot_steps == kernel.env_steps <= loop.slot_steps
        # Box actions differ in the last float32 bits (sums in another order), and MuJoCo
        # carries that into later observations: same episodes, statistics to 1e-3.
        rtol, atol = (5e-5, 1e-7) if dims.discrete else (1e-3, 1e-4)
        np.testing.assert_allclose(norms[0].mean, norms[1].mean, rtol=rtol, atol=atol)
        np.testing.assert_allclose(norms[0].var, norms[1].var, rtol=rtol, atol=atol)
        assert norms[0].count == norms[1].count
    assert loop.lengths.min() < loop.lengths.max()  # slots finished at different steps
    if max_steps is not None:
        assert loop.capped > 0


@pytest.mark.slow
def test_bench_rollout_quick_reports_both_loops(cli):
    """`rlsub bench rollout --quick --json`: a row per env with both loops' ratios (speed is
    measured by the full run, not here)."""
    import json

    r = json.loads(cli("bench", "rollout", "--quick", "--json").stdout)
    rows = {row["env"]: row for row in r["rows"]}
    assert set(rows) == {"CartPole-v1", "InvertedPendulum-v5"}
    for row in rows.values():
        assert (
            row["raw_steps_cpu_s"] > 0 and row["policy_steps_cpu_s"] > 0 and row["wall_ratio"] > 0
        )
        assert row["clock"].startswith("CPU-seconds")
        assert 0 < row["ratio"] < 5 and 0 < row["torch_loop_ratio"] < 5
        assert row["rounds"] == 2
    cp = rows["CartPole-v1"]
    assert cp["useful_fraction"] == 1  # rlsub.rollout.fused steps only the slots playing
    assert cp["torch_loop_useful_fraction"] < 1  # the native vector env steps masked slots
    assert cp["useful_steps_cpu_s"] > 0
    assert rows["InvertedPendulum-v5"]["useful_fraction"] == 1  # only playing slots stepped


def test_kernel_tanh_is_within_one_ulp_of_the_correctly_rounded_tanh():
    from numba import njit

    from rlsub.rollout import lanes

    @njit
    def many(x):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = lanes._tanh(x[i])
        return out

    x = np.concatenate([np.linspace(-12, 12, 200001), -np.geomspace(1e-9, 12, 2001)])
    x = x.astype(np.float32)
    got = many(x)
    exact = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulp = np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact)).astype(np.float64)
    assert ulp.max() <= 1.0
    assert (got == exact).mean() > 0.95
    assert np.all(np.abs(got) <= 1.0) and np.all(np.sign(got) == np.sign(x))


def test_fast_paths_follow_the_spec_not_the_env_class():
    """A CartPole vector env made outside `make_vec_env`, or from a spec that pays
    another reward, is not the fused kernel's (rlsub.envs.vector.fast_path)."""
    from dataclasses import replace

    from rlsub.envs.vector import fast_path
    from rlsub.rollout import fused

    spec = load_env_spec("cartpole")
    env = make_vec_env(spec, 4)
    assert fast_path(env) == "cartpole" and fused.supported(env)
    bare = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="vector_entry_point")
    assert fast_path(bare) is None and not fused.supported(bare)
    sutton = replace(spec, kwargs={"sutton_barto_reward": True})
    other = make_vec_env(sutton, 4)
    assert fast_path(other) == "cartpole" and not fused.supported(other)
    seeds = [3, 4, 5, 3]
    np.testing.assert_array_equal(  # its slots still start from their own seeds
        reset_slots(other, seeds), cartpole_start_states(seeds).T.astype(np.float32)
    )


def test_running_norm_is_sb3s_running_mean_std():
    """RunningNorm keeps SB3's statistics (RunningMeanStd) bit for bit, plus its clip."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    rng = np.random.default_rng(0)
    mine, sb3 = RunningNorm((3,), clip=2.0), RunningMeanStd(shape=(3,))
    for n in (5, 0, 17, 1):
        x = rng.normal(size=(n, 3)) * 4.0
        mine.update(x)
        if n:
            sb3.update(x)
    mine.update_moments(np.ones(3), np.full(3, 0.5), 40)
    sb3.update_from_moments(np.ones(3), np.full(3, 0.5), 40)
    assert isinstance(mine, RunningMeanStd) and mine.count == sb3.count
    np.testing.assert_array_equal(mine.mean, sb3.mean)
    np.testing.assert_array_equal(mine.var, sb3.var)
    assert np.abs(mine.normalize(rng.normal(size=(50, 3)) * 100)).max() == 2.0
