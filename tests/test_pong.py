"""Atari Pong from pixels: env, network, rollouts, ES, the SB3 adapter, Ray shards.

Short games come from a copy of envs/pong.yaml with a frame cap (`short_pong`),
so every test plays at most a couple of full Pong games.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

pytest.importorskip("ale_py", reason="ale-py is not installed (pip install 'rlsub[atari]')")

from rlsub.core.config import experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.core.registry import build_network, count_parameters
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import ENV_DIR, env_dims, load_env_spec
from rlsub.envs.vector import make_vec_env
from rlsub.experiment.trial import run_trial
from rlsub.nets.batchnorm import set_batchnorm_statistics
from rlsub.nets.convnet import ConvNet
from rlsub.rollout.pairs import antithetic_policy
from rlsub.rollout.pipelined import pipelined_rollout
from rlsub.rollout.population import population_rollout

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def short_pong(tmp_path) -> Path:
    """envs/pong.yaml with games cut at 60 agent steps (truncated) and 1 eval episode."""
    data = yaml.safe_load((ENV_DIR / "pong.yaml").read_text())
    data["kwargs"]["max_num_frames_per_episode"] = 240
    data["max_episode_steps"] = 60
    data["eval_episodes"] = 1
    path = tmp_path / "short_pong.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _es_config(env: str, **train) -> dict:
    base = {
        "generations": 2,
        "population": 4,
        "max_steps_per_episode": 30,
        "sigma": 0.05,
        "lr": 0.01,
        "obs_norm": False,
        "eval_every": 100,
        "threads": 1,
        "env_threads": 1,
    }
    return {
        "name": "pong_es_tiny",
        "env": env,
        "algorithm": "es",
        "network": {"name": "es_pong"},
        "subspace": {"projection": "fastfood"},
        "train": {**base, **train},
    }


# ------------------------------------------------------------------ env
def test_observations_are_uint8_frame_stacks():
    spec = load_env_spec("pong")
    env = make_vec_env(spec, 2, threads=1)
    obs, _ = env.reset(seed=np.array([0, 1]))
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    dims = env_dims(env)
    assert dims.obs_shape == (4, 84, 84) and dims.discrete and dims.n_actions == 6
    obs, reward, term, trunc, _ = env.step(np.zeros(2, dtype=np.int64))
    assert obs.shape == (2, 4, 84, 84) and reward.shape == (2,) and term.dtype == bool
    env.close()


def test_pong_network_parameter_counts():
    kwargs = {"in_channels": 4, "n_actions": 6}  # stacked frames, Pong's minimal action set
    assert count_parameters(build_network("es_pong", kwargs)) == 1_005_974  # REFERENCE.md
    assert count_parameters(build_network("nature_cnn", kwargs)) == 1_687_206
    assert isinstance(build_network("es_pong"), ConvNet)


@pytest.mark.parametrize("net", ["es_pong", "nature_cnn"])
def test_convnet_population_forward_equals_each_member(net):
    sub = Subspace.from_spec(net, {}, 0, 40, "fastfood", 1).eval()
    for m in sub.module.modules():  # BatchNorm statistics away from their init
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    Z = torch.randn(3, 40) * 0.5
    x = torch.rand(3, 2, 4, 84, 84)
    with torch.no_grad():
        policy = sub.population_fn(sub.split(sub.theta(Z)))
        out = policy(x)
        for i in range(3):
            with sub.z_set_to(Z[i]):
                torch.testing.assert_close(out[i], sub(x[i]), rtol=1e-4, atol=1e-5)
        idx = torch.tensor([2, 0])
        torch.testing.assert_close(policy.subset(idx)(x[idx]), out[idx])


def test_antithetic_pairs_forward_equals_the_members_forward():
    """rlsub.rollout.pairs.antithetic_policy (centre + signed deltas for the FC256 weight) gives what
    population_fn gives for Z = [z + E; z - E], for the whole population and subsets."""
    sub = Subspace.from_spec("es_pong", {}, 0, 40, "fastfood", 1).eval()
    for m in sub.module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    z, E = torch.randn(40) * 0.5, torch.randn(3, 40) * 0.5
    x = torch.rand(6, 2, 4, 84, 84)
    with torch.no_grad():
        members = sub.population_fn(sub.split(sub.theta(torch.cat([z + E, z - E]))))
        pairs = antithetic_policy(sub, z, E)
        assert any(op[0] == "linear_pm" for op in pairs.prepared)  # the pair path is taken
        expected = members(x)
        torch.testing.assert_close(pairs(x), expected, rtol=1e-4, atol=1e-5)
        for idx in ([0, 3], [5, 1, 2], [4]):  # whole pairs, broken pairs, one member
            i = torch.tensor(idx)
            torch.testing.assert_close(pairs.subset(i)(x[i]), expected[i], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="antithetic_policy"):
        antithetic_policy(sub, z, E[:, :5])


def test_bfloat16_pair_deltas_stay_within_rounding_of_the_members():
    """pair_dtype bfloat16: the FC256 deltas are stored in bfloat16; the outputs differ from
    the exact members' by rounding only: under 2 % of what the deltas change."""
    sub = Subspace.from_spec("es_pong", {}, 0, 40, "fastfood", 1).eval()
    z, E = torch.randn(40) * 0.5, torch.randn(3, 40) * 2.0
    x = torch.rand(6, 2, 4, 84, 84)
    with torch.no_grad():
        expected = sub.population_fn(sub.split(sub.theta(torch.cat([z + E, z - E]))))(x)
        centre = sub.population_fn(sub.split(sub.theta(z.expand(6, 40))))(x)
        pairs = antithetic_policy(sub, z, E, delta_dtype=torch.bfloat16)
        (op,) = [op for op in pairs.prepared if op[0] == "linear_pm"]
        assert op[2].dtype == torch.bfloat16
        out = pairs(x)
        assert out.dtype == torch.float32
        effect = (expected - centre).abs().max()
        assert effect > 1e-3  # the deltas matter at this sigma
        assert (out - expected).abs().max() < 0.02 * effect
        float32 = antithetic_policy(sub, z, E, delta_dtype=torch.float32)(x)
        torch.testing.assert_close(float32, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_pipelined_pairs_and_unseeded_resets():
    """With pairs, each env of the pipeline gets whole pairs; results are mapped back to
    the members' order and equal the sequential rollout's. Unseeded resets continue each
    slot's RNG: the same from the same first seeding."""
    from rlsub.rollout.pipelined import pair_halves

    assert pair_halves(6) is None  # halves of 3 cannot hold whole pairs
    first, second = pair_halves(8)
    assert first.tolist() == [0, 1, 4, 5] and second.tolist() == [2, 3, 6, 7]
    sub = Subspace.from_spec("es_pong", {}, 0, 20, "fastfood", 1).eval()
    z, E = torch.randn(20), torch.randn(4, 20) * 2.0
    Z = torch.cat([z + E, z - E])
    spec = load_env_spec("pong")
    env = make_vec_env(spec, 8, threads=1)
    dims = env_dims(env)
    seq = population_rollout(sub, Z, env, dims, 1, 4, max_steps=100, pairs=(z, E))
    halves = (make_vec_env(spec, 4, threads=1), make_vec_env(spec, 4, threads=1))
    pipe = pipelined_rollout(sub, Z, halves, dims, 1, 4, max_steps=100, pairs=(z, E))
    assert seq.returns.min() < 0
    np.testing.assert_array_equal(pipe.returns, seq.returns)
    np.testing.assert_array_equal(pipe.lengths, seq.lengths)
    runs = []
    for _ in range(2):
        fresh = make_vec_env(spec, 8, threads=1)
        population_rollout(sub, Z, fresh, dims, 1, 9, max_steps=20, pairs=(z, E))
        runs.append(population_rollout(sub, Z, fresh, dims, 1, None, max_steps=100, pairs=(z, E)))
        fresh.close()
    np.testing.assert_array_equal(runs[0].returns, runs[1].returns)


def test_convnet_takes_uint8_pixels_and_odd_sizes():
    """uint8 frames go through rlsub.nets.frames (space-to-depth, scaled by 1/255) and give what
    the float frames give; a first convolution whose input is not a multiple of its stride
    falls back to the plain convolution."""
    sub = Subspace.from_spec("es_pong", {}, 0, 30, "fastfood", 1).eval()
    Z = torch.randn(2, 30) * 0.5
    frames = torch.randint(0, 256, (2, 3, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        policy = sub.population_fn(sub.split(sub.theta(Z)))
        assert policy.takes_uint8 and policy.prepared[0][0] == "input"
        torch.testing.assert_close(
            policy(frames), policy(frames.float() / 255), rtol=1e-4, atol=1e-5
        )
    net = ConvNet(nn.Conv2d(1, 2, 4, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    odd = Subspace(net, 5, "dense", seed=0).eval()  # 9 x 9 input: (9 - 4) / 2 + 1 = 3
    Z = torch.randn(2, 5)
    x = torch.rand(2, 1, 1, 9, 9)
    with torch.no_grad():
        out = odd.population_fn(odd.split(odd.theta(Z)))(x)
        for i in range(2):
            with odd.z_set_to(Z[i]):
                torch.testing.assert_close(out[i], odd(x[i]), rtol=1e-4, atol=1e-5)


def test_convnet_population_forward_needs_eval_mode():
    sub = Subspace.from_spec("es_pong", {}, 0, 10, "fastfood", 1)
    with pytest.raises(RlsubError, match="eval mode"):
        sub.population_fn(sub.split(sub.theta(torch.zeros(2, 10))))


# -------------------------------------------------------------- rollouts
class _Chaotic(nn.Module):
    """Pseudo-random but deterministic actions: games of different lengths."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4 * 84 * 84))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(1000.0 * x.flatten(1) @ self.w.T)


def test_finished_slot_adds_no_reward_after_autoreset():
    """Two full games in one vector env: the one that ends first (then autoreset and
    stepped, masked, for hundreds of steps) scores exactly what it scores alone."""
    torch.manual_seed(0)
    sub = Subspace(_Chaotic(), 4, "dense", seed=0)
    spec = load_env_spec("pong")
    env = make_vec_env(spec, 2, threads=1)
    dims = env_dims(env)
    # the chaotic policy's games depend on the CPU's float rounding (sin(1000 x)), so draw
    # pairs until one game ends at least 100 steps before the other
    for _ in range(6):
        Z = torch.randn(2, 4)
        both = population_rollout(sub, Z, env, dims, 1, seed=5)
        first = int(both.lengths[:, 0].argmin())
        if both.lengths[first, 0] + 100 <= both.lengths[1 - first, 0]:
            break
    assert both.lengths[first, 0] + 100 <= both.lengths[1 - first, 0], both.lengths
    assert both.capped == 0 and both.slot_steps == 2 * both.lengths.max()
    one = Z[first : first + 1]
    alone = population_rollout(sub, one, make_vec_env(spec, 1, threads=1), dims, 1, seed=5)
    assert alone.returns[0, 0] == both.returns[first, 0]
    assert alone.lengths[0, 0] == both.lengths[first, 0]
    assert -21 <= both.returns.min() and both.returns.max() < 0


def test_step_cap_cuts_every_episode():
    sub = Subspace.from_spec("es_pong", {}, 0, 20, "fastfood", 1).eval()
    env = make_vec_env(load_env_spec("pong"), 4, threads=1)
    res = population_rollout(sub, torch.randn(2, 20) * 0.1, env, env_dims(env), 2, 0, max_steps=25)
    assert res.returns.shape == (2, 2) and (res.lengths == 25).all()
    assert res.capped == 4 and res.env_steps == 100


def test_pipelined_rollout_equals_the_sequential_one():
    sub = Subspace.from_spec("es_pong", {}, 0, 20, "fastfood", 1).eval()
    Z = torch.randn(3, 20) * 2.0  # 3 individuals x 2 episodes: halves of 2 and 1
    spec = load_env_spec("pong")
    env = make_vec_env(spec, 6, threads=1)
    dims = env_dims(env)
    seq = population_rollout(sub, Z, env, dims, 2, 4, max_steps=100)
    halves = (make_vec_env(spec, 4, threads=1), make_vec_env(spec, 2, threads=1))
    pipe = pipelined_rollout(sub, Z, halves, dims, 2, 4, max_steps=100)
    assert seq.returns.min() < 0  # points were played
    np.testing.assert_array_equal(pipe.returns, seq.returns)
    np.testing.assert_array_equal(pipe.lengths, seq.lengths)
    assert (pipe.env_steps, pipe.slot_steps, pipe.capped) == (
        seq.env_steps,
        seq.slot_steps,
        seq.capped,
    )


# -------------------------------------------------------------------- ES
def test_batchnorm_statistics_from_a_reference_batch():
    net = build_network("es_pong")
    x = torch.rand(16, 4, 84, 84)
    assert set_batchnorm_statistics(net, x) and net.training  # mode left as it was
    bn = net[2]
    assert not torch.allclose(bn.running_mean, torch.zeros(16))
    net.eval()
    h = net[:3](x)  # normalised over the batch by the frozen statistics
    torch.testing.assert_close(h.mean((0, 2, 3)), torch.zeros(16), atol=1e-4, rtol=0)
    assert not set_batchnorm_statistics(build_network("nature_cnn"), x)


@pytest.mark.slow
def test_es_generations_write_a_record_through_the_cli(tmp_path, short_pong):
    cfg_path = tmp_path / "pong_es.yaml"
    cfg_path.write_text(yaml.safe_dump(_es_config(str(short_pong), bn_reference=16)))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlsub.cli",
            "train",
            str(cfg_path),
            "--d",
            "50",
            "--json",
            "--out",
            str(tmp_path / "policies"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["status"] == "done" and rec["d"] == 50 and rec["D"] == 1_005_974
    assert rec["env_steps"] == 2 * 4 * 30  # two generations of 4 capped episodes
    assert rec["info"]["capped_episodes"] == 8 and rec["info"]["max_steps_per_episode"] == 30
    assert -60 <= rec["final_eval_mean"] <= 60 and Path(rec["policy_path"]).is_file()
    assert rec["curve"][-1]["generation"] == 2 and "train_mean" in rec["curve"][-1]


@pytest.mark.slow
def test_es_pipelined_trains(short_pong):
    """The pipelined population (two envs) in the trainer; equal results: see above."""
    cfg = experiment_from_dict(
        _es_config(str(short_pong), pipeline=True, generations=2, reseed=False)
    )
    rec = run_trial(cfg, 20, 0, catch=False, progress=False)
    assert rec.status == "done" and rec.env_steps == 2 * 4 * 30
    assert rec.info["capped_episodes"] == 8
    again = run_trial(cfg, 20, 0, catch=False, progress=False)  # seeded once: deterministic
    assert again.final_eval_mean == rec.final_eval_mean and again.curve == rec.curve


def test_es_refuses_obs_norm_on_pixels(short_pong):
    cfg = experiment_from_dict(_es_config(str(short_pong), obs_norm=True))
    with pytest.raises(RlsubError, match="obs_norm must be false for pixel"):
        run_trial(cfg, 10, 0, catch=False, progress=False)


@pytest.mark.slow
def test_ray_shards_rebuild_the_same_population(short_pong):
    """Without Ray: an actor's class, run in-process, plays its members exactly as the
    in-process trainer plays them (whole antithetic pairs, pairs=(z, E) as rlsub.algos.es passes
    them), from the noise generator's state alone; seeded, then unseeded resets."""
    from rlsub.algos.es import ESState, es_ask
    from rlsub.algos.es_ray import ESShard, gather, shard_members
    from rlsub.algos.es_setup import build_setup

    assert [m.tolist() for m in shard_members(4, 3)] == [[0, 2], [1, 3]]  # at most H actors
    assert [m.tolist() for m in shard_members(8, 3)] == [[0, 1, 4, 5], [2, 6], [3, 7]]
    assert [m.tolist() for m in shard_members(5, 2)] == [[0, 1, 2], [3, 4]]  # odd: contiguous
    cfg = experiment_from_dict(_es_config(str(short_pong), max_steps_per_episode=12))
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(20) * 0.1
    state_before = gen.get_state()
    eps, Z = es_ask(ESState(z, z * 0, z * 0), 2, 0.05, gen)
    s = build_setup(cfg, 20, 0, 4)
    env, dims, sub = s.env, s.dims, s.sub
    refs = [
        population_rollout(sub, Z, env, dims, 1, s, max_steps=12, pairs=(z, 0.05 * eps))
        for s in (7, None)
    ]
    env.close()
    contiguous = [np.array([0, 1]), np.array([2, 3])]  # splits pairs: members, not pairs
    for shards, paired in ((shard_members(4, 3), True), (contiguous, False)):
        parts = [ESShard(cfg.to_dict(), 20, 0, m.tolist()) for m in shards]
        assert all((p.pairs is not None) == paired for p in parts)
        for p, m in zip(parts, shards, strict=True):  # the shard's rows of Z, exactly
            assert torch.equal(p.population(z.numpy(), state_before.numpy())[0], Z[m])
        for s, ref in zip((7, None), refs, strict=True):
            got = gather(shards, [p.rollout(z.numpy(), state_before.numpy(), s) for p in parts], 4)
            np.testing.assert_array_equal(got.returns, ref.returns)
            np.testing.assert_array_equal(got.lengths, ref.lengths)
            assert got.env_steps == ref.env_steps and got.capped == ref.capped
        for p in parts:
            p.close()


@pytest.mark.slow
def test_es_on_ray_local(short_pong, ray_local):
    """backend: ray on a local Ray (2 actors): the trainer's record equals the in-process
    one's, and the actors' returns equal the in-process rollout's generation by generation
    for a centre whose members differ (population 6: 2 + 1 pairs), seeded and unseeded.
    reseed: false (or N between seeded generations) gives the same results only while no game
    ends before the cap, as here: a finished slot is autoreset (a no-op draw from its RNG)
    if its env steps on, which depends on the other slots in that env (rlsub.algos.es_ray)."""
    from rlsub.algos.es import ESState, es_ask
    from rlsub.algos.es_ray import RayPopulation
    from rlsub.algos.es_setup import build_setup

    train = {"backend": "ray", "workers": 2, "reseed": False, "eval_every": 1}
    cfg = experiment_from_dict(_es_config(str(short_pong), **train))
    rec = run_trial(cfg, 20, 0, catch=False, progress=False)
    assert rec.status == "done" and rec.env_steps == 2 * 4 * 30
    assert rec.info["backend"] == "ray" and rec.info["capped_episodes"] == 8
    local = experiment_from_dict(_es_config(str(short_pong), **{**train, "backend": "local"}))
    ref = run_trial(local, 20, 0, catch=False, progress=False)
    assert rec.curve == ref.curve and rec.final_eval_mean == ref.final_eval_mean

    sigma, cap = 1.0, 100
    cfg = experiment_from_dict(
        _es_config(
            "pong", **train, population=6, sigma=sigma, max_steps_per_episode=cap, bn_reference=16
        )
    )
    pool = RayPopulation(cfg, 20, 0)
    s = build_setup(cfg, 20, 0, 6)
    env, dims, sub = s.env, s.dims, s.sub
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(20, generator=torch.Generator().manual_seed(4))
    try:
        for g, seed in enumerate((11, None, 12, None)):  # reseed: false, then true
            noise_state = gen.get_state()
            eps, Z = es_ask(ESState(z, z * 0, z * 0), 3, sigma, gen)
            got = pool.rollout(z, noise_state, seed)
            ref = population_rollout(
                sub, Z, env, dims, 1, seed, None, True, cap, pairs=(z, sigma * eps)
            )
            np.testing.assert_array_equal(got.returns, ref.returns, err_msg=f"generation {g}")
            np.testing.assert_array_equal(got.lengths, ref.lengths)
            assert (got.env_steps, got.slot_steps, got.capped) == (
                ref.env_steps,
                ref.slot_steps,
                ref.capped,
            )
    finally:
        pool.close()
        env.close()


# ------------------------------------------------------------------- SB3
def test_adapter_hands_over_final_observations(short_pong):
    from rlsub.algos.sb3_atari import sb3_atari_env

    env = sb3_atari_env(load_env_spec(str(short_pong)), 2, seed=0)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    last, steps = obs, 0
    while True:
        obs, reward, dones, infos = env.step(np.array([0, 2]))
        steps += 1
        if dones.any() or steps > 100:
            break
        last = obs
    assert steps == 60 and dones.all()  # the frame cap: 240 frames = 60 agent steps
    for i in range(2):
        final = infos[i]["terminal_observation"]
        assert final.shape == (4, 84, 84) and final.dtype == np.uint8
        np.testing.assert_array_equal(final[:3], last[i][1:])  # the stack moved on by one frame
        assert infos[i]["TimeLimit.truncated"] is True  # cut by the cap, not ended by the game
        assert infos[i]["episode"]["l"] == 60  # VecMonitor's episode statistics
        assert not np.array_equal(obs[i], final)  # the returned obs starts the next game
    env.close()


def test_ppo_updates_through_the_adapter(tmp_path, short_pong):
    cfg = experiment_from_dict(
        {
            "name": "pong_ppo_tiny",
            "env": str(short_pong),
            "algorithm": "ppo",
            "network": {"name": "nature_cnn"},
            "subspace": {"projection": "fastfood", "rest": "direct"},
            "train": {
                "total_timesteps": 128,
                "n_envs": 2,
                "eval_freq": 0,
                "hyperparams": {"n_steps": 32, "n_epochs": 1, "batch_size": 32},
            },
        }
    )
    rec = run_trial(cfg, 30, 0, policy_dir=tmp_path, catch=False, progress=False)
    assert rec.status == "done" and rec.env_steps == 128 and rec.D == 1_687_206
    assert Path(rec.policy_path or "").is_file()


# -------------------------------------------------------------- commands
def test_random_score(short_pong):
    from rlsub.algos.evaluate import random_score

    r = random_score(str(short_pong), 3, seed=0)
    assert r["episodes"] == 3 and r["mean_length"] == 60 and r["env_steps"] == 180
    assert -21 <= r["mean"] <= 0 and len(r["returns"]) == 3


@pytest.mark.slow
def test_bench_pong_quick_reports_interleaved_ratios(cli):
    """`rlsub bench pong --quick --json`: both ES loops, each rollout set between two raw ALE
    runs, the pairs' memory below the members' (speed is measured by the full run)."""
    r = json.loads(cli("bench", "pong", "--quick", "--json").stdout)
    assert r["rounds"] == 1 and len(r["raw_steps_s_runs"]) == 4  # 2 loops x (before, after)
    for m in r["es_modes"]:
        assert len(m["ratio_rounds"]) == 1 and 0 < m["ratio"] < 5 and m["steps_s"] > 0
    assert r["es_modes"][0]["pipelined"] and not r["es_modes"][1]["pipelined"]
    assert 0 < r["policy_pairs_mib"] < r["policy_members_mib"]
    # ES as one shard process per core, float32 then bfloat16 pairs
    assert [m["pair_dtype"] for m in r["es_shards"]] == ["float32", "bfloat16"]
    for m in r["es_shards"]:
        assert m["processes"] == min(os.cpu_count() or 1, 2)  # 4 members: at most 2 pairs
        assert len(m["ratio_rounds"]) == 1 and 0 < m["ratio"] < 5 and m["steps_s"] > 0
