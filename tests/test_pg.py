"""Policy gradients in a subspace (rlsub.algos.pg, rlsub.algos.pg_policies): SB3 PPO, A2C, DQN."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO

from rlsub.algos.dqn_learners import make_learner
from rlsub.algos.pg import build_model, compact_subspace, policy_subspace, train
from rlsub.algos.pg_envs import sb3_env_factory
from rlsub.algos.pg_policies import subspace_kwargs
from rlsub.core.config import experiment_from_dict, load_experiment, with_overrides
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.subspace import Subspace

ROOT = Path(__file__).resolve().parents[1]


def _cfg(name: str, **train: Any) -> Any:
    cfg = load_experiment(ROOT / "configs" / name)
    return with_overrides(cfg, train=train) if train else cfg


def _model(name: str, d: int | str = 4, seed: int = 0, n_envs: int = 2, **train: Any) -> Any:
    from stable_baselines3.common.env_util import make_vec_env

    from rlsub.envs.spec import load_env_spec

    cfg = _cfg(name, n_envs=n_envs, **train)
    spec = load_env_spec(cfg.env, cfg.env_variant)
    env = make_vec_env(sb3_env_factory(spec), n_envs=n_envs, seed=seed)
    return build_model(cfg, d, seed, env)


def _opt_params(model: Any) -> list[torch.Tensor]:
    return [p for g in model.policy.optimizer.param_groups for p in g["params"]]


# ----------------------------------------------------------- optimizer contents
def test_ppo_actor_optimizer_sees_z_and_critic_only() -> None:
    model, _ = _model("cartpole_ppo_actor.yaml", d=4)
    pol = model.policy
    critic = list(pol.mlp_extractor.value_net.parameters()) + list(pol.value_net.parameters())
    expected = {id(pol.subspace.z), *(id(p) for p in critic)}
    assert {id(p) for p in _opt_params(model)} == expected
    assert pol.subspace.z.shape == (4,)
    assert pol.subspace.D == 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2  # the actor: 4,610
    assert list(pol.action_net.parameters()) == []  # now buffers (theta0 views)


def test_z_lr_scale_applies_to_z_but_not_to_the_direct_baseline() -> None:
    for d, scale in [(4, 100.0), ("direct", 1.0)]:
        model, _ = _model("cartpole_ppo_actor.yaml", d=d, z_lr_scale=100)
        groups = model.policy.optimizer.param_groups
        assert groups[0]["params"] == [model.policy.subspace.z]
        assert groups[0]["lr_scale"] == scale, d


def test_z_lr_scale_rule_sqrt_D_over_d_for_ppo_and_dqn() -> None:
    """'K*sqrt(D/d)': z's multiplier is K sqrt(D/d) with D the subspace's parameters, so
    every d moves theta as far per step as direct training (times K)."""
    from rlsub.algos.step_size import resolve_z_lr_scale

    for name, d in [("cartpole_ppo.yaml", 16), ("cartpole_v0_dqn.yaml", 25)]:
        model, _ = _model(name, d=d, z_lr_scale="3*sqrt(D/d)")
        pol = model.policy
        D = (pol.subspace if hasattr(pol, "subspace") else pol.q_net.subspace).D
        (group,) = pol.optimizer.param_groups
        assert group["lr_scale"] == pytest.approx(3 * (D / d) ** 0.5), name
    assert resolve_z_lr_scale("sqrt(D/d)", 400, 4) == 10.0
    assert resolve_z_lr_scale("2.5 * sqrt(D/d)", 400, "direct") == 1.0
    for bad in ("sqrt(d/D)", "0*sqrt(D/d)", -1.0, float("inf"), "fast"):
        with pytest.raises(ValueError):
            resolve_z_lr_scale(bad, 400, 4)
    with pytest.raises(ConfigError, match="K\\*sqrt"):
        _cfg("cartpole_ppo.yaml", z_lr_scale="sqrt(D)")


def test_ppo_all_optimizer_sees_only_z() -> None:
    model, _ = _model("cartpole_ppo_actor.yaml", d=8, parts="all")
    assert [tuple(p.shape) for p in _opt_params(model)] == [(8,)]
    assert _opt_params(model)[0] is model.policy.subspace.z
    assert model.policy.subspace.D == 4610 + 4545  # actor + critic


def test_continuous_actor_trains_log_std_directly() -> None:
    pytest.importorskip("mujoco")
    model, _ = _model("inverted_pendulum_ppo.yaml", d=3)
    pol = model.policy
    names = {id(p): n for n, p in pol.named_parameters()}
    opt = sorted(names[id(p)] for p in _opt_params(model))
    assert "log_std" in opt and "subspace.z" in opt
    assert not any(n.startswith(("action_net", "mlp_extractor.policy_net")) for n in opt)


def test_rest_frozen_leaves_only_z_trainable() -> None:
    cfg = _cfg("cartpole_ppo_actor.yaml", n_envs=2)
    cfg = with_overrides(cfg, subspace={"rest": "frozen"})
    from stable_baselines3.common.env_util import make_vec_env

    from rlsub.envs.spec import load_env_spec

    env = make_vec_env(sb3_env_factory(load_env_spec("cartpole")), n_envs=2, seed=0)
    model, _ = build_model(cfg, 4, 0, env)
    assert [p is model.policy.subspace.z for p in _opt_params(model)] == [True]


def test_dqn_optimizer_and_target_update_copy_z() -> None:
    model, _ = _model("cartpole_v0_dqn.yaml", d=5, n_envs=1)
    q, target = model.q_net, model.q_net_target
    assert _opt_params(model) == [q.subspace.z]
    assert q.subspace.D == 562  # the original's FC 4-20-20-2
    assert torch.equal(q.subspace.theta0, target.subspace.theta0)
    assert torch.equal(q.subspace.P(torch.eye(5)), target.subspace.P(torch.eye(5)))
    assert q.subspace.z is not target.subspace.z
    obs = torch.randn(3, 4)
    with torch.no_grad():
        before = target(obs)  # fills the target's no-grad theta cache
        q.subspace.z.copy_(torch.arange(5.0))
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(None, []))
    model.tau = 1.0
    model.target_update_interval = 1
    model._n_calls = 0
    model._on_step()  # SB3's own target update (polyak_update over parameters)
    assert torch.equal(target.subspace.z, torch.arange(5.0))
    assert torch.allclose(q(obs), target(obs))
    with torch.no_grad():  # how DQN computes its targets: the cached theta must follow z
        assert torch.allclose(q(obs), target(obs)) and not torch.allclose(target(obs), before)


# ------------------------------------------------------------ one update
def test_one_update_moves_z_and_critic_not_theta0() -> None:
    model, _ = _model("cartpole_ppo_actor.yaml", d=4, hyperparams={"n_steps": 16, "batch_size": 32})
    pol = model.policy
    theta0 = pol.subspace.theta0.clone()
    z0 = pol.subspace.z.detach().clone()
    critic0 = pol.value_net.weight.detach().clone()
    obs = torch.randn(7, 4)
    logits0 = pol.get_distribution(obs).distribution.logits.detach()
    model.learn(32)  # one rollout of 2 envs x 16 steps, then n_epochs updates
    assert not torch.equal(pol.subspace.z.detach(), z0)
    assert not torch.equal(pol.value_net.weight.detach(), critic0)
    assert torch.equal(pol.subspace.theta0, theta0)
    assert torch.equal(pol.action_net.weight, pol.subspace.split(theta0)["action_net.weight"])
    logits1 = pol.get_distribution(obs).distribution.logits.detach()
    assert not torch.allclose(logits0, logits1)  # every entry point sees the new theta
    # theta = theta0 + P z, checked against an explicit forward
    theta = pol.subspace.theta().detach()
    w = pol.subspace.split(theta)
    h = torch.tanh(
        obs @ w["mlp_extractor.policy_net.0.weight"].T + w["mlp_extractor.policy_net.0.bias"]
    )
    h = torch.tanh(
        h @ w["mlp_extractor.policy_net.2.weight"].T + w["mlp_extractor.policy_net.2.bias"]
    )
    logits = h @ w["action_net.weight"].T + w["action_net.bias"]
    assert torch.allclose(torch.log_softmax(logits, -1), logits1, atol=1e-5)


def test_z_zero_reproduces_theta0_and_compact_file_matches(tmp_path: Path) -> None:
    model, sub_kwargs = _model("cartpole_ppo_actor.yaml", d=6)
    with torch.no_grad():
        model.policy.subspace.z.copy_(torch.randn(6))
    compact = compact_subspace(model, sub_kwargs)
    assert isinstance(compact, Subspace)
    compact.save(tmp_path / "p.pt")
    loaded, _ = Subspace.load(tmp_path / "p.pt")
    obs = torch.randn(9, 4)
    with torch.no_grad():
        sb3_logits = model.policy.get_distribution(obs).distribution.logits
        assert torch.allclose(torch.log_softmax(loaded(obs), -1), sb3_logits, atol=1e-5)
    assert (tmp_path / "p.pt").stat().st_size < 0.5 * 4 * policy_subspace(model).D


# --------------------------------------------------------------- save / load
@pytest.mark.parametrize("parts", ["actor", "all"])
def test_save_load_same_deterministic_actions(tmp_path: Path, parts: str) -> None:
    model, _ = _model("cartpole_ppo_actor.yaml", d=8, parts=parts, hyperparams={"n_steps": 16})
    model.learn(32)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    assert np.array_equal(a1, a2)
    assert torch.equal(loaded.policy.subspace.z, model.policy.subspace.z)
    assert torch.equal(loaded.policy.subspace.theta0, model.policy.subspace.theta0)
    state_floats = sum(v.numel() for v in loaded.policy.state_dict().values())
    assert state_floats < model.policy.subspace.D  # theta0 and P are rebuilt, not stored


# ------------------------------------------------------------------- errors
def test_unknown_hyperparameter_names_key_and_algorithm(tmp_path: Path) -> None:
    cfg = _cfg("cartpole_ppo_actor.yaml", hyperparams={"n_stepz": 8})
    with pytest.raises(RlsubError, match=r"'n_stepz' for ppo"):
        train(cfg, 4, 0, progress=False)


def test_unknown_part_and_algorithm_are_one_clear_error() -> None:
    data = yaml.safe_load((ROOT / "configs" / "cartpole_ppo_actor.yaml").read_text())
    data["train"]["parts"] = "critic"
    with pytest.raises(ConfigError, match=r"parts: 'critic' is not allowed; allowed: actor, all"):
        experiment_from_dict(data)
    data["train"]["parts"] = "actor"
    data["algorithm"] = "trpo"
    with pytest.raises(ConfigError, match=r"unknown algorithm 'trpo'"):
        experiment_from_dict(data)
    with pytest.raises(RlsubError, match=r"unknown part 'critic'"):
        subspace_kwargs(4, "mlp", {}, 0, parts="critic")


def test_dqn_on_continuous_env_is_one_clear_error() -> None:
    pytest.importorskip("mujoco")
    data = yaml.safe_load((ROOT / "configs" / "inverted_pendulum_ppo.yaml").read_text())
    data["algorithm"] = "dqn"
    data["train"]["hyperparams"] = {}
    cfg = experiment_from_dict(data)
    with pytest.raises(RlsubError, match=r"dqn needs a discrete action space"):
        train(cfg, 4, 0, progress=False)


# -------------------------------------------------------------- end to end
def _tiny_config(tmp_path: Path, steps: int = 2048) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "cartpole_ppo_actor.yaml").read_text())
    data["train"].update(total_timesteps=steps, n_envs=4, eval_freq=steps // 2)
    data["env"] = str(tmp_path / "cartpole_fast.yaml")
    spec = yaml.safe_load((ROOT / "envs" / "cartpole.yaml").read_text())
    spec.update(eval_episodes=3, max_episode_steps=100)
    (tmp_path / "cartpole_fast.yaml").write_text(yaml.safe_dump(spec))
    path = tmp_path / "tiny_ppo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_train_json_tiny_budget(cli: Any, tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path)
    proc = cli("train", str(cfg), "--d", "4", "--seed", "0", "--json", "--out", str(tmp_path))
    rec = json.loads(proc.stdout)
    assert rec["status"] == "done" and rec["d"] == 4 and rec["D"] == 4610
    assert rec["env_steps"] >= 2048
    assert [p["step"] for p in rec["curve"]][:2] == [1024, 2048]
    assert rec["policy_path"] and Path(rec["policy_path"]).stat().st_size < 20_000


def test_same_seed_same_result(tmp_path: Path) -> None:
    cfg = load_experiment(_tiny_config(tmp_path, steps=512))
    a = train(cfg, 3, 1, progress=False)
    b = train(cfg, 3, 1, progress=False)
    assert a.curve == b.curve and a.final_eval_mean == b.final_eval_mean
    assert torch.equal(a.subspace.z, b.subspace.z)


def test_stop_when_solved_ends_training_at_the_first_solved_evaluation(tmp_path: Path) -> None:
    path = _tiny_config(tmp_path, steps=2048)
    for solved, expect_stop in [(1.0, 1024), (1e9, None)]:
        spec = yaml.safe_load((tmp_path / "cartpole_fast.yaml").read_text())
        spec["solved_score"] = solved  # 1.0: any policy; 1e9: none
        (tmp_path / "cartpole_fast.yaml").write_text(yaml.safe_dump(spec))
        cfg = with_overrides(load_experiment(path), train={"stop_when_solved": True})
        res = train(cfg, 3, 0, progress=False)
        assert res.info["stopped_when_solved_at"] == expect_stop
        assert res.env_steps == (expect_stop or 2048)
        assert res.curve[0]["step"] == 1024


def test_stop_when_solved_needs_evaluations() -> None:
    with pytest.raises(ConfigError, match=r"stop_when_solved needs eval_freq > 0"):
        _cfg("cartpole_ppo_actor.yaml", eval_freq=0, stop_when_solved=True)


@pytest.mark.slow
def test_ppo_small_d_learns_cartpole() -> None:
    cfg = _cfg("cartpole_ppo_actor.yaml", total_timesteps=30_000, eval_freq=0)
    res = train(cfg, 8, 0, progress=False)
    assert res.final_eval_mean > 200  # random policy: about 22; measured 500 (seed 0)


@pytest.mark.slow
def test_bench_pg_quick_reports_ratio(cli: Any) -> None:
    proc = cli("bench", "pg", "--quick", "--json")
    r = json.loads(proc.stdout)
    assert r["steps"] == 10_000 and r["D"] == 4610
    assert 0 < r["ratio"] < 5  # the target (<= 1.3) is measured on the full run


def test_paper_dqn_buffer_schedule_and_score_rule(tmp_path: Path) -> None:
    """rlsub.algos.dqn_paper: the buffer keeps every 5th transition and every terminal
    one; a run is scored by the mean of its last `window` training episodes; the target
    z trails the online z by the soft update."""
    from rlsub.algos.dqn_paper import Replay
    from rlsub.algos.dqn_paper import train as train_paper_dqn

    buf = Replay(8, 2, every=5)
    for k in range(12):
        buf.offer([k, k], 0, 1.0, [k, k], done=k == 7)
    assert buf.n == 4 and sorted(buf.s[: buf.n, 0].tolist()) == [0, 5, 7, 10]
    cfg = experiment_from_dict(
        {
            "name": "dqn_paper_tiny",
            "env": "cartpole",
            "env_variant": "v0",
            "algorithm": "dqn_paper",
            "network": {"name": "mlp", "kwargs": {"hidden": [8], "activation": "relu"}},
            "subspace": {"projection": "dense"},
            "train": {"max_episodes": 6, "window": 4, "eval_episodes": 2, "batch_size": 4},
        }
    )
    r = train_paper_dqn(cfg, 5, 0)
    assert r.info["episodes"] == 6 and len(r.curve) == 6
    # the curve holds the mean of the last 4 episodes' returns after each episode: undo
    # the running window to get every episode's return (CartPole: 1 per step)
    returns: list[float] = []
    for i, c in enumerate(r.curve):
        n = min(i + 1, 4)
        prev = r.curve[i - 1]["value"] * min(i, 4) if i else 0.0
        dropped = returns[i - 4] if i >= 4 else 0.0
        returns.append(c["value"] * n - prev + dropped)
    assert sum(returns) == pytest.approx(r.env_steps)
    assert r.final_eval_mean == pytest.approx(np.mean(returns[-4:]))
    s = np.zeros((4, 4), np.float32)
    batch = (s, np.zeros(4, np.int64), np.ones(4, np.float32), s, np.zeros(4, np.float32))
    literal = dataclasses.replace(cfg.train, target_update_rate=0.01, l2=0.01, lr=1e-30)
    for fast in (False, True):
        sub = Subspace.from_spec("mlp", {"in_dim": 4, "out_dim": 2, "hidden": [8]}, 0, 3)
        learner = make_learner(sub, literal, fast=fast)
        ones = {k: torch.ones(3) if k.startswith("z") else v for k, v in learner.state().items()}
        learner.load({**ones, "z_target": torch.zeros(3)})
        learner.update(batch)  # lr ~0: z stays at 1, the target moves 1 % of the way
        assert torch.allclose(learner.state()["z_target"], torch.full((3,), 0.01))
        # the default is what the paper's code ran: the target is the online z, exactly
        learner = make_learner(sub, cfg.train, fast=fast)
        learner.update(batch)
        st = learner.state()
        assert torch.equal(st["z_target"], st["z"]) and not torch.equal(st["z"], torch.zeros(3))


@pytest.mark.parametrize("d", [5, "direct"])
@pytest.mark.parametrize("projection", ["dense", "sparse"])
def test_paper_dqn_numpy_learner_agrees_with_autograd(d: Any, projection: str) -> None:
    """The hand-written numpy update of a ReLU MLP (forward, backward, P^T g, clipping,
    TF RMSProp, target) follows the autograd learner step for step to float rounding."""
    cfg = load_experiment("cartpole_v0_dqn_paper")
    tc = dataclasses.replace(cfg.train, lr=1e-2, target_update_rate=0.1, l2=0.01)
    rng = np.random.default_rng(0)
    kw = {"in_dim": 4, "out_dim": 2, "hidden": [16, 16], "activation": "relu"}
    learners = []
    for fast in (False, True):
        sub = Subspace.from_spec("mlp", {**kw, "init": "he_normal"}, 1, d, projection, 2)
        learners.append(make_learner(sub, tc, fast=fast))
    assert [type(x).__name__ for x in learners] == ["TorchLearner", "NumpyMLPLearner"]
    for _ in range(20):
        s, s2 = rng.normal(size=(2, 32, 4)).astype(np.float32)
        a = rng.integers(0, 2, 32)
        r = np.ones(32, np.float32)
        done = (rng.random(32) < 0.2).astype(np.float32)
        for learner in learners:
            learner.update((s, a, r, s2, done))
        assert learners[0].act(s[0]) == learners[1].act(s[0])
    ref, fast_state = learners[0].state(), learners[1].state()
    for k in ref:
        assert torch.allclose(ref[k], fast_state[k], rtol=1e-4, atol=1e-6), k


def test_paper_dqn_tf_rmsprop_and_per_variable_clipping() -> None:
    """TF1's RMSProp: the mean square starts at 1 and momentum accumulates the steps; in
    direct training each weight and bias has its gradient clipped on its own."""
    from rlsub.algos.dqn_learners import NumpyMLPLearner, TFRMSProp, TorchLearner

    p = torch.nn.Parameter(torch.zeros(2))
    opt = TFRMSProp([p], lr=0.1, momentum=0.5)
    p.grad = torch.tensor([2.0, -1.0])
    opt.step()
    ms1 = 0.9 + 0.1 * p.grad**2  # from 1, not 0
    step1 = 0.1 * p.grad / ms1.sqrt()
    assert torch.allclose(p.detach(), -step1)
    opt.step()
    ms2 = 0.9 * ms1 + 0.1 * p.grad**2
    step2 = 0.5 * step1 + 0.1 * p.grad / ms2.sqrt()
    assert torch.allclose(p.detach(), -step1 - step2)

    # a huge TD error: each clipped variable's step is lr x clipped g / sqrt(0.9 + 0.1 g^2)
    tc = dataclasses.replace(load_experiment("cartpole_v0_dqn_paper").train, momentum=0.0)
    kw = {"in_dim": 4, "out_dim": 2, "hidden": [8], "activation": "relu"}
    s = np.ones((4, 4), np.float32)
    batch = (s, np.zeros(4, np.int64), np.full(4, 1e6, np.float32), s, np.ones(4, np.float32))
    for cls in (TorchLearner, NumpyMLPLearner):
        for d in ("direct", 3):
            sub = Subspace.from_spec("mlp", kw, 0, d, "dense", 0)
            learner = cls(sub, tc)
            learner.update(batch)
            ms = learner.state()["opt.ms"]
            g = ((ms - 0.9) / 0.1).sqrt()  # |g| per coordinate, after clipping
            parts = torch.split(g, sub.sizes) if d == "direct" else [g]
            assert all(float(part.norm()) == pytest.approx(5.0, rel=1e-4) for part in parts)


def test_mlp_he_normal_init_is_the_papers_keras_init() -> None:
    """init: he_normal: weights truncated at 2 std of sqrt(2 / fan_in), biases 0, seeded."""
    from rlsub.core.registry import build_network

    kw = {"in_dim": 400, "out_dim": 2, "hidden": [400], "init": "he_normal"}
    net = build_network("mlp", kw, seed=3)
    w = net[0].weight.detach()
    std = (2 / 400) ** 0.5
    assert float(w.abs().max()) <= 2 * std
    # a normal truncated at 2 std keeps 0.774 of its variance
    assert float(w.std()) == pytest.approx(std * 0.774**0.5, rel=0.02)
    assert all(
        float(m.bias.detach().abs().max()) == 0 for m in net if isinstance(m, torch.nn.Linear)
    )
    assert torch.equal(build_network("mlp", kw, seed=3)[0].weight, net[0].weight)
    with pytest.raises(RlsubError, match="he_normal"):
        build_network("mlp", {**kw, "init": "glorot"}, seed=0)
