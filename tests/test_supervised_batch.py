"""Batched supervised trials (rlsub.algos.supervised_batch): each trial as alone, up to rounding."""

import math

import pytest

from rlsub.algos.supervised import train
from rlsub.algos.supervised_batch import train_batch
from rlsub.core.config import load_experiment, with_overrides


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("RLSUB_DATA_DIR", raising=False)
    monkeypatch.setenv("RLSUB_CACHE", str(tmp_path / "cache"))


def _digits(**train_kw):
    return with_overrides(load_experiment("digits_fc"), train={"epochs": 3, **train_kw})


def test_batched_trials_match_their_solo_runs():
    cfg = _digits(l2=1e-4)
    jobs = [(20, 0), (60, 1), ("direct", 2)]
    batch = train_batch(cfg, jobs, progress=False)
    n_eval = 360  # digits' test split
    for (d, seed), got in zip(jobs, batch, strict=True):
        assert not isinstance(got, BaseException), got
        alone = train(cfg, d, seed, progress=False)
        assert (got.D, got.d, got.env_steps) == (alone.D, alone.d, alone.env_steps)
        assert len(got.curve) == len(alone.curve) == 3
        for a, b in zip(got.curve, alone.curve, strict=True):
            assert a["step"] == b["step"]
            assert abs(a["value"] - b["value"]) <= 2 / n_eval  # rounding: at most 2 images
        assert math.isclose(
            got.info["final_train_loss"], alone.info["final_train_loss"], rel_tol=1e-3
        )
        assert got.info["seeds"] == alone.info["seeds"]
        assert got.subspace.z.device.type == "cpu"
    # the trials really differ (own theta0, P and data order)
    assert len({r.final_eval_mean for r in batch}) == 3


def test_diverged_trials_end_as_diverged():
    """As alone (tests/test_supervised.py): lr 1e30 on the direct net turns the loss NaN."""
    cfg = _digits(lr=1e30, epochs=2)
    jobs = [("direct", 0), ("direct", 1)]
    for (d, seed), got in zip(jobs, train_batch(cfg, jobs, progress=False), strict=True):
        alone = train(cfg, d, seed, progress=False)
        assert math.isnan(got.final_eval_mean) and math.isnan(alone.final_eval_mean)
        assert "training loss" in got.info["diverged"]


def test_a_batched_digits_sweep_stores_what_one_by_one_stores(tmp_path):
    from rlsub.experiment.store import Store
    from rlsub.sweep.strategy import run_sweep

    base = with_overrides(
        _digits(epochs=2), sweep={"d_grid": [20, 60], "seeds": [0, 1], "baseline": False}
    )
    one = run_sweep(base, tmp_path / "one.sqlite", mode="grid", progress=False)
    four = run_sweep(
        with_overrides(base, sweep={"batch": 4}), tmp_path / "four.sqlite", mode="grid"
    )
    assert one["trials"]["run"] == four["trials"]["run"] == 4
    with (
        Store(tmp_path / "one.sqlite", readonly=True) as a,
        Store(tmp_path / "four.sqlite", readonly=True) as b,
    ):
        ra = {(r.d, r.seed): r for r in a.records()}
        rb = {(r.d, r.seed): r for r in b.records()}
    assert ra.keys() == rb.keys()
    for key in ra:
        assert abs(ra[key].final_eval_mean - rb[key].final_eval_mean) <= 2 / 360
        assert rb[key].info["batch"]["trials"] == 4 and rb[key].status == "done"
