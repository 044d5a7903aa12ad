"""Supervised training in a subspace: config validation, tiny learning runs on the
bundled digits, the MNIST path on generated files, and the CLI end to end.

Nothing here reads /work/shared/data or the network.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from test_datasets import N_TEST, N_TRAIN, write_mnist

from rlsub.algos.supervised import SupervisedConfig, evaluate, network_kwargs, train, weights_sq
from rlsub.core.config import experiment_from_dict, load_experiment, with_overrides
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.registry import build_network
from rlsub.core.subspace import Subspace
from rlsub.data.datasets import load_dataset
from rlsub.experiment.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "digits_fc.yaml"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("RLSUB_DATA_DIR", raising=False)
    monkeypatch.setenv("RLSUB_CACHE", str(tmp_path / "cache"))


def _digits(**train):
    cfg = load_experiment(DIGITS)
    return with_overrides(cfg, train=train) if train else cfg


def _mnist_cfg(data_dir: Path, network: str = "fc_mnist", **train) -> dict:
    return {
        "name": f"tiny_{network}",
        "algorithm": "adam",
        "dataset": {"name": "mnist", "data_dir": str(data_dir)},
        "network": {"name": network},
        "subspace": {"projection": "sparse"},
        "train": {"epochs": 2, "batch_size": 8, "threads": 1, **train},
    }


# ------------------------------------------------------------------ config
def test_config_validation_is_one_clear_error():
    assert SupervisedConfig().batch_size == 128 and SupervisedConfig().beta2 == 0.99
    with pytest.raises(ConfigError, match="train.epochs must be >= 1, got 0"):
        SupervisedConfig(epochs=0)
    data = yaml.safe_load(DIGITS.read_text())
    for train_section, needle in [
        ({"epochs": 0}, "train.epochs must be >= 1"),
        ({"beta2": 1.0}, "train.beta2 must be in [0, 1)"),
        ({"momentum": 0.9}, "unknown key 'momentum'"),
        ({"eval_split": "val"}, "'val' is not allowed"),
    ]:
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace(")", r"\)")):
            experiment_from_dict({**data, "train": train_section}, "digits_fc.yaml")


def test_committed_configs_load():
    for name in ("digits_fc", "mnist_fc", "mnist_lenet", "cifar10_fc", "cifar10_lenet"):
        cfg = load_experiment(ROOT / "configs" / f"{name}.yaml")
        assert cfg.supervised and cfg.dataset is not None and cfg.dataset.data_dir is None
        assert cfg.train.epochs >= 1 and len(cfg.sweep.d_grid) >= 5


# ------------------------------------------------------------------ digits
def test_digits_small_d_beats_chance_by_far():
    cfg = _digits()
    rec = train(cfg, 50, 0, progress=False)
    assert rec.D == 8970 and rec.d == 50 and rec.solved_score is None
    assert rec.final_eval_mean > 0.4, rec  # chance is 0.1
    assert rec.best_eval_mean >= rec.final_eval_mean
    assert len(rec.curve) == cfg.train.epochs
    assert rec.curve[-1]["value"] == rec.final_eval_mean
    assert rec.env_steps == cfg.train.epochs * 1437 == rec.curve[-1]["step"]
    assert 0 < rec.final_eval_std < 0.03  # binomial standard error over 360 test images
    assert rec.info["eval_split"] == "test" and rec.info["n_eval"] == 360


def test_same_seed_same_result_and_seeds_matter():
    cfg = _digits(epochs=3)
    a = train(cfg, 20, seed=1, progress=False)
    b = train(cfg, 20, seed=1, progress=False)
    c = train(cfg, 20, seed=2, progress=False)
    assert a.curve == b.curve and torch.equal(a.subspace.z, b.subspace.z)
    assert not torch.equal(a.subspace.z, c.subspace.z)


def test_pinned_projection_seed():
    cfg = _digits(epochs=1)
    cfg = dataclasses.replace(cfg, subspace=dataclasses.replace(cfg.subspace, projection_seed=7))
    a = train(cfg, 10, seed=1, progress=False)
    b = train(cfg, 10, seed=2, progress=False)
    assert a.info["seeds"]["projection"] == b.info["seeds"]["projection"] == 7
    assert a.info["seeds"]["theta0"] != b.info["seeds"]["theta0"]


def test_direct_baseline_trains_all_parameters():
    res = train(_digits(epochs=5), "direct", seed=0, progress=False)
    assert res.d == res.D == 8970
    assert res.final_eval_mean > 0.85


def test_shuffled_labels_scores_memorisation_on_the_training_set():
    cfg = _digits(epochs=1)
    cfg = dataclasses.replace(
        cfg, dataset=dataclasses.replace(cfg.dataset, variant="shuffled_labels")
    )
    res = train(cfg, 10, seed=0, progress=False)
    assert res.info["eval_split"] == "train" and res.info["n_eval"] == 1437


def test_l2_penalises_the_weights_not_the_biases():
    cfg = _digits(epochs=2, l2=1e-2)
    data = load_dataset("digits")
    kwargs = network_kwargs(cfg, data)
    sub = Subspace.from_spec("mlp", kwargs, theta0_seed=3, d=10, projection="dense")
    net = build_network("mlp", kwargs, seed=3)
    expected = sum(
        float(p.detach().square().sum()) for n, p in net.named_parameters() if "weight" in n
    )
    with torch.no_grad():
        got = float(weights_sq(sub, sub.split(sub.theta())))
    assert got == pytest.approx(expected, rel=1e-5)
    with_l2 = train(cfg, 20, seed=0, progress=False)
    without = train(_digits(epochs=2), 20, seed=0, progress=False)
    assert with_l2.info["final_train_loss"] > without.info["final_train_loss"]


def test_divergence_is_a_failed_record():
    rec = run_trial(_digits(epochs=2, lr=1e30), "direct", 0, progress=False)
    assert rec.status == "failed" and "diverged" in rec.reason


def test_network_that_does_not_fit_the_data():
    cfg = _digits(epochs=1)
    wrong_input = dataclasses.replace(
        cfg, network=dataclasses.replace(cfg.network, name="fc_mnist", kwargs={})
    )
    with pytest.raises(RlsubError, match="network 'fc_mnist' does not fit dataset 'digits'"):
        train(wrong_input, 10, 0, progress=False)
    kwargs = {**cfg.network.kwargs, "out_dim": 5}
    wrong_output = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, kwargs=kwargs))
    with pytest.raises(RlsubError, match=r"outputs \(5,\) per example, the dataset has 10 classes"):
        train(wrong_output, 10, 0, progress=False)


# ------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("network", ["fc_mnist", "lenet_mnist"])
def test_mnist_networks_on_generated_files(tmp_path, monkeypatch, network):
    files = write_mnist(tmp_path / "mnist")
    # the canonical checksums are those of the real files: point the table at ours
    monkeypatch.setattr("rlsub.data.datasets.MNIST_FILES", files)
    cfg = experiment_from_dict(_mnist_cfg(tmp_path, network))
    rec = run_trial(cfg, 20, 0, progress=False, catch=False)
    assert rec.status == "done" and rec.d == 20
    assert rec.D == {"fc_mnist": 199_210, "lenet_mnist": 44_426}[network]
    assert rec.env_steps == 2 * N_TRAIN and len(rec.curve) == 2
    assert 0 <= rec.final_eval_mean <= 1 and rec.info["n_eval"] == N_TEST


@pytest.mark.parametrize("network", ["fc_mnist", "lenet_mnist", "fc_cifar", "lenet_cifar"])
def test_image_networks_take_the_papers_he_normal_init(network):
    """init he_normal (the paper's Keras init): every kernel, convolutions included, is a
    normal of std sqrt(2 / fan_in) truncated at 2 std, every bias 0; the default is
    PyTorch's own init, so configs without the option keep their networks (and theta0)."""
    he = build_network(network, {"init": "he_normal"}, seed=3)
    layers = [m for m in he.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    assert any(isinstance(m, torch.nn.Conv2d) for m in layers) == ("lenet" in network)
    for m in layers:
        w, fan_in = m.weight.detach(), m.weight[0].numel()
        std = (2 / fan_in) ** 0.5
        assert float(w.abs().max()) <= 2 * std
        if w.numel() >= 1000:  # a normal truncated at 2 std keeps 0.774 of its variance
            assert float(w.std()) == pytest.approx(std * 0.774**0.5, rel=0.05)
        assert float(m.bias.detach().abs().max()) == 0
    default = build_network(network, {}, seed=3)
    torch_init = build_network(network, {"init": "torch"}, seed=3)
    assert torch.equal(next(default.parameters()), next(torch_init.parameters()))
    assert not torch.equal(next(default.parameters()), next(he.parameters()))
    with pytest.raises(RlsubError, match=f"{network} init must be 'torch' or 'he_normal'"):
        build_network(network, {"init": "glorot"}, seed=0)


# --------------------------------------------------------------------- CLI
def test_cli_train_prints_one_json_object(cli, tmp_path):
    proc = cli("train", str(DIGITS), "--d", "20", "--seed", "0", "--json", "--out", str(tmp_path))
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["status"] == "done" and rec["d"] == 20 and rec["D"] == 8970
    assert 0.1 < rec["final_eval_mean"] <= 1
    # the compact policy file rebuilds the exact network: same test accuracy
    sub, _ = Subspace.load(rec["policy_path"])
    ds = load_dataset("digits")
    acc, _ = evaluate(sub, load_experiment(DIGITS), ds.x_test, ds.y_test, 1000)
    assert acc == pytest.approx(rec["final_eval_mean"])


def test_cli_bad_dataset_name(cli, tmp_path):
    data = yaml.safe_load(DIGITS.read_text())
    data["dataset"] = {"name": "svhn"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = cli("train", str(path), "--d", "5", "--json", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "dataset.name: 'svhn' is not allowed; allowed: digits, mnist, cifar10" in lines[0]


@pytest.mark.slow
def test_cli_bench_quick_json(cli):
    proc = cli("bench", "supervised", "--quick", "--json")
    result = json.loads(proc.stdout)
    rows = result["epoch"]["rows"]
    assert [row["kind"] for row in rows] == ["plain", "sparse", "fastfood", "dense"]
    assert result["D"] == 199_210 and all(row["ratio"] > 0 for row in rows)
    assert rows[0]["ratio"] == 1.0 and result["threads"] == 1
    assert "MNIST" in result["data"]  # MNIST's files, or random data of its shapes
    b = result["batched_3_seeds"]
    assert b["seeds"] == 3 and b["ratio"] > 0 and len(b["batched_s"]) == len(b["one_by_one_s"])
