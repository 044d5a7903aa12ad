"""Per-d step sizes (rlsub.algos.step_size) and `rlsub tune` (rlsub.sweep.tune)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsub.algos.pg_config import describe
from rlsub.algos.step_size import check_scale, describe_scale, resolve_z_lr_scale, scale_at
from rlsub.core.config import experiment_from_dict, load_experiment
from rlsub.core.errors import ConfigError
from rlsub.experiment.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_per_d_scale_takes_its_entry_or_the_nearest_in_log_d() -> None:
    table = {8: "10*sqrt(D/d)", 32: "3*sqrt(D/d)", 512: 2.5}
    assert scale_at(table, 8) == "10*sqrt(D/d)" and scale_at(table, 512) == 2.5
    assert scale_at(table, 16) == "10*sqrt(D/d)"  # log-midway between 8 and 32: the smaller
    assert scale_at(table, 20) == "3*sqrt(D/d)" and scale_at(table, 4096) == 2.5
    assert scale_at({"8": 2.0}, 8) == 2.0  # keys read back from a JSON record
    assert scale_at("3*sqrt(D/d)", 99) == "3*sqrt(D/d)"  # not a mapping: as it is
    assert resolve_z_lr_scale(scale_at(table, 32), 9155, 32) == pytest.approx(
        3 * (9155 / 32) ** 0.5
    )
    check_scale(table)
    for bad in ({}, {0: 1.0}, {-4: 1.0}, {"x": 1.0}, {8: "sqrt(d)"}, {8: -1.0}):
        with pytest.raises(ValueError):
            check_scale(bad)
    assert describe_scale(table) == "z lr per d: 8: 10*sqrt(D/d), 32: 3*sqrt(D/d), 512: 2.5"
    ks = {8: "10*sqrt(D/d)", 32: "3*sqrt(D/d)"}
    assert describe_scale(ks) == "z lr K*sqrt(D/d), K per d: 8: 10, 32: 3"
    assert describe({"parts": "all", "z_lr_scale": ks})[1].startswith("z lr K*sqrt(D/d), K per d")


def test_pg_config_accepts_a_per_d_mapping_and_refuses_a_bad_one() -> None:
    data = yaml.safe_load((ROOT / "configs" / "cartpole_ppo_sqrt.yaml").read_text())
    data["train"]["z_lr_scale"] = {8: "3*sqrt(D/d)", 32: "10*sqrt(D/d)"}
    cfg = experiment_from_dict(data)
    assert cfg.train.z_lr_scale == {8: "3*sqrt(D/d)", 32: "10*sqrt(D/d)"}
    data["train"]["z_lr_scale"] = {8: "3*sqrt(d)"}
    with pytest.raises(ConfigError, match="z_lr_scale"):
        experiment_from_dict(data)


def _tiny_pg(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "cartpole_ppo_sqrt.yaml").read_text())
    data["train"].update(
        total_timesteps=128,
        n_envs=2,
        eval_freq=0,
        stop_when_solved=False,
        hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    )
    data["env"] = str(tmp_path / "cartpole_fast.yaml")
    spec = yaml.safe_load((ROOT / "envs" / "cartpole.yaml").read_text())
    spec.update(eval_episodes=2, max_episode_steps=50)
    (tmp_path / "cartpole_fast.yaml").write_text(yaml.safe_dump(spec))
    data["sweep"] = {"d_grid": [2, 4], "seeds": [0, 1]}
    data["name"] = "tiny_ppo"
    path = tmp_path / "tiny_ppo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_rlsub_tune_tries_each_k_on_tuning_seeds_and_writes_the_best_per_d(
    cli: Any, tmp_path: Path
) -> None:
    cfg_path = _tiny_pg(tmp_path)
    store, out = tmp_path / "tune.sqlite", tmp_path / "tuned.yaml"
    args = ["tune", str(cfg_path), "--k", "1", "30", "--seeds", "7", "--store", str(store)]
    proc = cli(*args, "--out", str(out), "--json")
    result = json.loads(proc.stdout)
    # one tuning config per K, every d on the tuning seed only, no baseline
    with Store(store) as s:
        rows = s.rows()
    assert sorted((r["name"], r["d"], r["seed"], bool(r["direct"])) for r in rows) == [
        ("tiny_ppo_tune_k1", 2, 7, False),
        ("tiny_ppo_tune_k1", 4, 7, False),
        ("tiny_ppo_tune_k30", 2, 7, False),
        ("tiny_ppo_tune_k30", 4, 7, False),
    ]
    score = {(r["name"], r["d"]): r["final_eval_mean"] for r in rows}
    for d in (2, 4):
        s1, s30 = score[("tiny_ppo_tune_k1", d)], score[("tiny_ppo_tune_k30", d)]
        assert result["scores"][str(d)] == {"1.0": s1, "30.0": s30}
        assert result["choice"][str(d)] == (30.0 if s30 > s1 else 1.0)
    tuned = load_experiment(out)
    assert tuned.name == "tiny_ppo_tuned" and tuned.sweep.seeds == [0, 1]
    assert tuned.train.z_lr_scale == {d: f"{result['choice'][str(d)]:g}*sqrt(D/d)" for d in (2, 4)}
    # the tuned config trains each d at its own K
    from rlsub.algos.pg import build_model
    from rlsub.algos.pg_envs import sb3_vec_env
    from rlsub.envs.spec import load_env_spec

    spec = load_env_spec(str(tuned.env), tuned.env_variant)
    for d in (2, 4):
        model, _ = build_model(tuned, d, 0, sb3_vec_env(spec, 1, 0))
        group = model.policy.optimizer.param_groups[0]
        k = result["choice"][str(d)]
        assert group["lr_scale"] == pytest.approx(k * (model.policy.subspace.D / d) ** 0.5)
    head = out.read_text().splitlines()[:6]
    assert (
        head[0].startswith("# tiny_ppo with z's step size tuned per d") and "rlsub tune" in head[2]
    )
    # a second run resumes: nothing new is trained
    again = json.loads(cli(*args, "--out", str(out), "--json").stdout)
    assert again["choice"] == result["choice"]
    with Store(store) as s:
        assert len(s.rows()) == 4


def test_rlsub_tune_refuses_reported_seeds_and_non_pg_configs(cli: Any, tmp_path: Path) -> None:
    cfg_path = _tiny_pg(tmp_path)
    base = [
        "--k",
        "1",
        "3",
        "--store",
        str(tmp_path / "t.sqlite"),
        "--out",
        str(tmp_path / "o.yaml"),
    ]
    proc = cli("tune", str(cfg_path), "--seeds", "1", "9", *base, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "tuning seeds must not be the reported ones" in proc.stderr and "[1]" in proc.stderr
    proc = cli("tune", "cartpole_es", "--seeds", "100", *base, check=False)
    assert proc.returncode == 2 and "has none" in proc.stderr
    assert not (tmp_path / "t.sqlite").exists() and not (tmp_path / "o.yaml").exists()
