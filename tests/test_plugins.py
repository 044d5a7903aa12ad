"""Plug-ins by import path (rlsub.core.registry): a user's network and a user's trainer,
defined outside rlsub (tests/user_plugins.py), run through `rlsub train` with no edit
to rlsub; the compact policy file of a user network replays with `rlsub eval`. A
registered trainer goes through sweep validation, the suite plan and the report, which
ask it (not its name) for D, its budget and its rows' words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fake_trainer
import pytest
import yaml

from rlsub.algos.base import Budget, Trainer
from rlsub.core.errors import RlsubError
from rlsub.core.registry import NETWORKS, TRAINERS, Registry, build_network

HERE = Path(__file__).resolve().parent


def _rlsub(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "rlsub.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def _config(tmp_path: Path, **data) -> Path:
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump({"name": "user", "env": "cartpole", **data}))
    return path


def test_user_trainer_and_network_run_through_rlsub_train(tmp_path: Path):
    cfg = _config(
        tmp_path,
        algorithm="user_plugins:HILL_CLIMB",
        network={"name": "user_plugins:tiny_policy", "kwargs": {"hidden": 8}},
        train={"iterations": 3},
    )
    proc = _rlsub("train", str(cfg), "--d", "4", "--json", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout)
    assert rec["status"] == "done" and rec["algorithm"] == "user_plugins:HILL_CLIMB"
    assert rec["network"] == "user_plugins:tiny_policy"
    assert rec["D"] == 4 * 8 + 8 + 8 * 2 + 2 and rec["d"] == 4
    assert rec["final_eval_mean"] >= 8  # CartPole returns are at least 8 steps
    assert len(rec["curve"]) == 3 and rec["env_steps"] > 0


def test_user_network_under_es_writes_a_policy_file_that_replays(tmp_path: Path):
    cfg = _config(
        tmp_path,
        algorithm="es",
        network={"name": "user_plugins:tiny_policy", "kwargs": {"hidden": 6}},
        train={"generations": 2, "population": 8, "eval_every": 2},
    )
    proc = _rlsub("train", str(cfg), "--d", "3", "--json", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout)
    assert rec["D"] == 4 * 6 + 6 + 6 * 2 + 2 and rec["policy_path"]
    replay = _rlsub("eval", rec["policy_path"], "--episodes", "2", "--json", cwd=tmp_path)
    assert replay.returncode == 2 and "--trust user_plugins" in replay.stderr  # the file's code
    replay = _rlsub(
        "eval",
        rec["policy_path"],
        "--episodes",
        "2",
        "--json",
        "--trust",
        "user_plugins",
        cwd=tmp_path,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert json.loads(replay.stdout)["episodes"] == 2


def test_registry_names_paths_and_errors():
    assert "mlp" in NETWORKS.names() and "es" in TRAINERS.names()
    net = build_network("user_plugins:tiny_policy", {"in_dim": 3, "out_dim": 2}, seed=0)
    assert sum(p.numel() for p in net.parameters()) == 3 * 8 + 8 + 8 * 2 + 2
    reg = Registry("widget", {"a": "user_plugins:tiny_policy"})
    assert reg.resolve("a") is reg.resolve("user_plugins:tiny_policy")
    with pytest.raises(RlsubError, match="unknown widget 'b'; allowed: a"):
        reg.resolve("b")
    with pytest.raises(RlsubError, match="cannot import 'no_such_module'"):
        reg.resolve("no_such_module:x")
    with pytest.raises(RlsubError, match="has no 'nothing'"):
        reg.resolve("user_plugins:nothing")
    with pytest.raises(RlsubError, match="not a torch.nn.Module"):
        build_network("user_plugins:HillClimbConfig")


def test_bad_import_path_in_a_config_is_one_line(tmp_path: Path):
    cfg = _config(tmp_path, algorithm="user_plugins:nothing", network={"name": "mlp"})
    proc = _rlsub("train", str(cfg), "--d", "2", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no 'nothing'" in lines[0], proc.stderr


PG_HYPER = {
    "ppo": {"n_steps": 64, "batch_size": 64},
    "dqn": {"learning_starts": 64, "buffer_size": 1000, "train_freq": 4},
}


@pytest.mark.parametrize(("algo", "parts"), [("ppo", "actor"), ("dqn", "all")])
def test_user_network_as_sb3_policy_trains_and_replays(tmp_path: Path, algo: str, parts: str):
    """A user's nn.Module (by import path) is SB3's actor / Q-network in a subspace: the
    compact policy file replays with `rlsub eval`, and `rlsub info` knows its D."""
    train = {"total_timesteps": 256, "n_envs": 2, "eval_freq": 0, "parts": parts}
    cfg = _config(
        tmp_path,
        algorithm=algo,
        network={"name": "user_plugins:tiny_policy", "kwargs": {"hidden": 6}},
        subspace={"rest": "direct"},
        train={**train, "hyperparams": PG_HYPER[algo]},
    )
    proc = _rlsub("train", str(cfg), "--d", "5", "--json", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout)
    D_actor = 4 * 6 + 6 + 6 * 2 + 2
    assert rec["status"] == "done" and rec["D"] == D_actor and rec["d"] == 5
    assert rec["policy_path"].endswith(".pt")  # the compact file: seeds, d and z
    assert rec["info"]["trained_directly"] == (4 * 64 + 64 + 64 * 64 + 64 + 64 + 1) * (
        algo == "ppo"
    )  # PPO's critic (SB3's 64-64 MLP and value head) trains directly beside z
    # the file names the user's module: replaying it needs that module trusted (issue 30)
    refused = _rlsub("eval", rec["policy_path"], "--episodes", "2", cwd=tmp_path)
    assert refused.returncode == 2 and "--trust user_plugins" in refused.stderr
    replay = _rlsub(
        "eval", rec["policy_path"], "--episodes", "2", "--json", "--trust", "user_plugins",
        cwd=tmp_path,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-2000:]
    out = json.loads(replay.stdout)
    assert out["D"] == D_actor and out["d"] == 5 and out["eval_mean"] >= 8
    info = _rlsub("info", str(cfg), "--json", cwd=tmp_path)
    assert info.returncode == 0 and json.loads(info.stdout)["D"] == D_actor, info.stderr


def test_user_network_whole_actor_critic_in_the_subspace(tmp_path: Path, monkeypatch):
    """parts: all puts the user's actor and SB3's critic in one subspace; its policy file
    (SB3 state and JSON config, no pickle) replays once the user's module is trusted."""
    from rlsub.algos.evaluate import evaluate_policy_file
    from rlsub.core.trust import reading
    from rlsub.experiment.trial import train

    monkeypatch.syspath_prepend(str(HERE))
    cfg = {
        "name": "user_ppo_all",
        "env": "CartPole-v1",
        "algorithm": "a2c",
        "network": {"name": "user_plugins:tiny_policy", "kwargs": {"hidden": 6}},
        "train": {"total_timesteps": 128, "n_envs": 2, "eval_freq": 0, "parts": "all",
                  "critic_hidden": [8], "hyperparams": {"n_steps": 8}},
    }  # fmt: skip
    rec = train(cfg, d=7, seed=0, policy_dir=str(tmp_path))
    assert rec.status == "done", rec.reason
    assert rec.D == (4 * 6 + 6 + 6 * 2 + 2) + (4 * 8 + 8 + 8 + 1) and rec.d == 7
    assert rec.info["trained_directly"] == 0 and rec.policy_path.endswith(".pt")
    with reading(rec.policy_path, trust=["user_plugins"]):
        replay = evaluate_policy_file(rec.policy_path, 2)
    assert replay["D"] == rec.D and replay["episodes"] == 2


def test_user_network_of_the_wrong_size_is_one_line(tmp_path: Path):
    cfg = _config(
        tmp_path,
        algorithm="ppo",
        network={"name": "user_plugins:tiny_policy", "kwargs": {"out_dim": 3}},
        train={"total_timesteps": 64, "n_envs": 1, "hyperparams": {"n_steps": 64}},
    )
    proc = _rlsub("train", str(cfg), "--d", "2", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "rlsub: error: network 'user_plugins:tiny_policy' outputs (3,) per observation; "
        "as the actor (logits or action mean) it must give (2,)"
    ], proc.stderr


# ------------------------------------------------- the outer layers ask the trainer, by name never
def _rounds(row: Any) -> float | None:
    return float(row["env_steps"]) / 100 or None  # the fake trainer plays 100 steps a trial


def _refuse_noisy(cfg: Any) -> None:
    if cfg.train.noise > 50:
        raise RlsubError(f"{cfg.source}: this plug-in refuses noise > 50")


# a trainer that answers every question, and one that answers none (not even a Trainer)
ANSWERS = Trainer(
    fake_trainer.FakeConfig,
    fake_trainer.train,
    family="es",
    check=_refuse_noisy,
    dimension=lambda cfg, data=True, progress=False: fake_trainer.D,
    budget=lambda cfg: Budget("round", 3.0),
    spent=_rounds,
    describe=lambda train: [f"crossing {train['crossing']:g}"],
)
SILENT = SimpleNamespace(config_class=fake_trainer.FakeConfig, train=fake_trainer.train)


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> None:
    import rlsub.experiment.trial

    monkeypatch.setitem(TRAINERS._entries, "answers", ANSWERS)
    monkeypatch.setitem(TRAINERS._entries, "silent", SILENT)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)


def _plugin_cfg(algorithm: str, **train: Any) -> Any:
    from rlsub.core.config import experiment_from_dict

    data = fake_trainer.config(**train)
    data.update(name=algorithm, algorithm=algorithm)
    data["sweep"].update(d_grid=[1, 2, 4, 8, 16, 32, 64], seeds=[0, 1])
    return experiment_from_dict(data)


def test_plugin_trainers_through_validate_suite_plan_and_report(answering: None, tmp_path: Path):
    """sweep, suite and report learn D, the budget, the row's words and the family from the
    trainer itself (rlsub.algos.base.Trainer); one that says nothing still goes through."""
    from rlsub.analysis.estimate import estimate_all
    from rlsub.analysis.figures import comparisons
    from rlsub.analysis.report import load_records, report
    from rlsub.core.config import with_overrides
    from rlsub.core.errors import ConfigError
    from rlsub.experiment.trial import batch_reason
    from rlsub.sweep.strategy import run_sweep
    from rlsub.sweep.suite import SuiteConfig, SuiteEntry, format_plan, plan
    from rlsub.sweep.validate import validate

    answers, silent = _plugin_cfg("answers"), _plugin_cfg("silent")
    assert validate(answers, "grid", "local", 1) == fake_trainer.D
    assert validate(silent, "grid", "local", 1) is None  # D unknown: the request is checked
    with pytest.raises(RlsubError, match="this plug-in refuses noise > 50"):
        validate(_plugin_cfg("answers", noise=60.0), "grid", "local", 1)
    with pytest.raises(ConfigError, match="d = 1000 too large"):
        validate(with_overrides(answers, sweep={"d_grid": [1, 1000]}), "grid", "local", 1)
    assert batch_reason(silent) == "algorithm 'silent' has no batched trainer"

    stores = []
    for cfg in (answers, silent):
        stores.append(tmp_path / f"{cfg.name}.sqlite")
        run_sweep(cfg, stores[-1], mode="grid")
    said, unsaid = plan([answers, silent], stores)
    assert (said.unit, said.units_per_trial, said.trials) == ("round", 3.0, 16)
    assert len(said.measured) == 16 and said.hours is not None and said.hours > 0
    assert (unsaid.unit, unsaid.units_per_trial, unsaid.hours) == ("", None, None)
    text = format_plan(SuiteConfig("plugins", [SuiteEntry("x")]), [said, unsaid])
    assert "| 3 rounds |" in text and "| not stated by the trainer |" in text

    out = report(stores, tmp_path / "plots", "rlsub report")
    labels = sorted(r["label"] for r in out["rows"])
    assert labels[0].startswith("fake / answers / mlp / crossing 8 / ")
    assert labels[1].startswith("fake / silent / mlp / ")
    groups = estimate_all(load_records(stores))
    assert comparisons(groups) == []  # no "pg" family beside the "es" one


def test_trainer_batch_hooks_callables_or_the_older_module_path():
    """`batch="pkg.module"` (a module with batchable and train_batch) still works: its
    functions are imported when first called."""
    old = Trainer(fake_trainer.FakeConfig, fake_trainer.train, batch="rlsub.algos.supervised_batch")
    assert old.batchable is not None and old.train_batch is not None
    assert old.batchable(SimpleNamespace(dataset=None)) == "no dataset section"
    none = Trainer(fake_trainer.FakeConfig, fake_trainer.train)
    assert none.batchable is None and none.train_batch is None
    given = Trainer(fake_trainer.FakeConfig, fake_trainer.train, train_batch=lambda *a: [])
    assert given.batchable is not None and given.batchable(None) is None  # every config
