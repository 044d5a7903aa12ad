"""Plug-ins by import path (rlsub.core.registry): a user's network and a user's trainer,
defined outside rlsub (tests/user_plugins.py), run through `rlsub train` with no edit
to rlsub; the compact policy file of a user network replays with `rlsub eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
