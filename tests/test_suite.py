"""`rlsub suite`: the full-benchmark file, its plan (cost from measured stores) and its run."""

import json
from pathlib import Path

import pytest
import yaml

from rlsub.sweep.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]


def test_full_benchmark_file_loads_every_config() -> None:
    suite, cfgs = load_suite(ROOT / "configs" / "full_benchmark.yaml")
    names = {c.name for c in cfgs}
    assert {"cartpole_es", "inverted_pendulum_es", "pong_es", "mnist_fc", "cifar10_lenet"} <= names
    mnist = next(c for c in cfgs if c.name == "mnist_fc")
    assert mnist.train.epochs == 100  # the original's budget overrides the config's


@pytest.mark.slow
def test_run_then_plan_from_the_measured_store(cli, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "experiments": [
                    {
                        "config": str(ROOT / "configs" / "digits_fc.yaml"),
                        "train": {"epochs": 1},
                        "sweep": {"d_grid": [10], "seeds": [0], "baseline": False},
                    },
                    {"config": str(ROOT / "configs" / "cartpole_ppo.yaml")},
                ],
            }
        )
    )
    # run only the digits entry: a suite with just that one
    one = tmp_path / "one.yaml"
    data = yaml.safe_load(suite.read_text())
    data["experiments"] = data["experiments"][:1]
    one.write_text(yaml.safe_dump(data))
    out = cli("suite", str(one), "--store-dir", str(tmp_path / "runs"), "--json").stdout
    sweeps = json.loads(out)["sweeps"]
    assert sweeps[0]["trials"]["in_store"] == 1
    store = tmp_path / "runs" / "digits_fc.sqlite"
    assert store.is_file()

    plan = json.loads(
        cli("suite", str(suite), "--plan", "--measured", str(store), "--json").stdout
    )["experiments"]
    digits, ppo = plan
    assert digits["trials"] == 1 and digits["unit"] == "epoch"
    assert digits["measured_records"] == 1 and digits["s_per_unit"] > 0 and digits["hours"] > 0
    ppo_sweep = yaml.safe_load((ROOT / "configs" / "cartpole_ppo.yaml").read_text())["sweep"]
    n_trials = (len(ppo_sweep["d_grid"]) + 1) * len(ppo_sweep["seeds"])  # + the baseline
    assert ppo["trials"] == n_trials and ppo["unit"] == "env step"
    assert ppo["measured_records"] == 0 and ppo["hours"] is None  # never guessed
    human = cli("suite", str(suite), "--plan", "--measured", str(store)).stdout
    assert "not measured" in human and "digits_fc" in human

    # a record of rlsub train --json counts as a measurement too (a long single run)
    rec = tmp_path / "ppo.json"
    rec.write_text(
        json.dumps(
            {
                "task": "cartpole",
                "algorithm": "ppo",
                "network": "mlp",
                "env_steps": 1000,
                "wall_s": 2.0,
                "curve": [{"step": 1000, "value": 100.0}],
            }
        )
    )
    plan = json.loads(cli("suite", str(suite), "--plan", "--measured", str(rec), "--json").stdout)[
        "experiments"
    ]
    assert plan[1]["measured_records"] == 1 and plan[1]["s_per_unit"] == pytest.approx(0.002)


def test_bad_suite_is_one_clear_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "experiments": [{"config": "configs/nope.yaml"}]}))
    for args, needle in [
        (["suite", str(bad), "--plan"], "configs/nope.yaml"),
        (["suite", str(tmp_path / "missing.yaml"), "--plan"], "not found"),
        (
            [
                "suite",
                str(ROOT / "configs" / "full_benchmark.yaml"),
                "--plan",
                "--measured",
                str(tmp_path / "none.sqlite"),
            ],
            "none.sqlite",
        ),
    ]:
        proc = cli(*args, check=False)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr
