"""`rlsub eval` replays every policy file `rlsub train` writes: ES, CMA-ES (compact
rlsub files), PPO / A2C with the actor in the subspace (compact), PPO / A2C with the
whole actor-critic (SB3 zip + JSON sidecar), DQN; discrete and continuous actions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import rlsub
from rlsub.algos.evaluate import evaluate_policy_file

PG_TINY = {"total_timesteps": 128, "n_envs": 2, "eval_freq": 0}
PG_HYPER = {
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "a2c": {"n_steps": 8},
    "dqn": {"learning_starts": 32, "buffer_size": 1000, "batch_size": 32},
}


def _config(algo: str, env: str, parts: str | None = None) -> dict[str, Any]:
    train: dict[str, Any]
    if algo in ("es", "cmaes"):
        train = {"generations": 2, "population": 8, "eval_every": 2}
    else:
        train = {**PG_TINY, "hyperparams": PG_HYPER[algo]}
        if parts:
            train["parts"] = parts
    return {
        "name": f"{algo}_{env}_{parts or 'x'}",
        "env": env,
        "algorithm": algo,
        "network": {"name": "mlp", "kwargs": {"hidden": [8], "activation": "tanh"}},
        "subspace": {"projection": "dense"},
        "train": train,
    }


CASES = [
    ("es", "cartpole", None, ".pt"),
    ("cmaes", "inverted_pendulum", None, ".pt"),
    ("ppo", "cartpole", "actor", ".pt"),
    ("ppo", "cartpole", "all", ".pt"),
    ("a2c", "inverted_pendulum", "all", ".pt"),
    ("a2c", "inverted_pendulum", "actor", ".pt"),
    ("dqn", "cartpole", None, ".pt"),
]


@pytest.mark.parametrize(("algo", "env", "parts", "suffix"), CASES)
def test_eval_replays_the_file_train_wrote(
    algo: str, env: str, parts: str | None, suffix: str, tmp_path: Path
):
    rec = rlsub.train(_config(algo, env, parts), d=3, seed=0, policy_dir=tmp_path)
    assert rec.status == "done", rec.reason
    assert rec.policy_path is not None and rec.policy_path.endswith(suffix)
    out = evaluate_policy_file(rec.policy_path, episodes=2, seed=3)
    assert out["episodes"] == 2 and out["env"] == env
    assert out["eval_mean"] == pytest.approx(out["eval_mean"])  # finite
    again = evaluate_policy_file(rec.policy_path, episodes=2, seed=3)
    assert again["eval_mean"] == out["eval_mean"]  # deterministic replay


def test_cli_eval_of_a_dqn_file(cli: Any, tmp_path: Path):
    rec = rlsub.train(_config("dqn", "cartpole"), d=2, seed=1, policy_dir=tmp_path)
    proc = cli("eval", rec.policy_path, "--episodes", "2", "--json")
    r = json.loads(proc.stdout)
    assert r["episodes"] == 2 and r["d"] == 2 and r["policy"] == rec.policy_path


def test_eval_of_a_missing_sidecar_is_one_error(tmp_path: Path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(rlsub.RlsubError, match="JSON|sidecar|x.json"):
        evaluate_policy_file(str(bad))
