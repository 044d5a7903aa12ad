"""Batched ES trials (rlsub.algos.es_batch): every trial of a batch equals its solo run."""

import numpy as np
import pytest
import torch

from rlsub.algos.es import train
from rlsub.algos.es_batch import batchable, train_batch
from rlsub.core.config import load_experiment, with_overrides


def _cfg(**train_kw):
    return with_overrides(load_experiment("cartpole_es"), train={"generations": 12, **train_kw})


def test_batched_trials_equal_their_solo_runs():
    cfg = _cfg()
    jobs = [(1, 0), (8, 1), (8, 2), ("direct", 0)]
    batch = train_batch(cfg, jobs, progress=False)
    for (d, seed), got in zip(jobs, batch, strict=True):
        assert not isinstance(got, BaseException), got
        alone = train(cfg, d, seed, progress=False)
        assert got.final_eval_mean == alone.final_eval_mean
        assert got.env_steps == alone.env_steps
        assert got.curve == alone.curve
        assert got.info == alone.info
        assert got.extra == alone.extra  # the observation statistics of its own group
        assert torch.equal(got.subspace.z, alone.subspace.z)
    # the trials stopped at different generations (solved ones leave the batch)
    assert len({r.info["generations"] for r in batch}) > 1


def test_capped_episodes_are_counted_per_trial():
    cfg = _cfg(max_steps_per_episode=30, generations=4, stop_when_solved=False)
    jobs = [(4, 0), (4, 1)]
    for (d, seed), got in zip(jobs, train_batch(cfg, jobs, progress=False), strict=True):
        alone = train(cfg, d, seed, progress=False)
        assert got.info["capped_episodes"] == alone.info["capped_episodes"]
        assert got.env_steps == alone.env_steps


@pytest.mark.parametrize(
    "config, override, reason",
    [
        ("cartpole_es", {}, None),
        ("cartpole_es", {"reseed": False}, "reseed true"),
        ("inverted_pendulum_openai_es", {}, "CartPole"),
        ("cartpole_ppo", None, "es only"),
    ],
)
def test_batchable_says_why_not(config, override, reason):
    cfg = load_experiment(config)
    if override:
        cfg = with_overrides(cfg, train=override)
    why = batchable(cfg)
    assert why is None if reason is None else reason in why


def test_lane_norm_groups_keep_their_own_statistics():
    """Two trials in one rollout: each group's statistics are its own slots' observations."""
    from rlsub.rollout.lanes import LaneNorms
    from rlsub.rollout.slots import RunningNorm

    norms = [RunningNorm((4,)), RunningNorm((4,))]
    group = np.array([0, 0, 1])
    ln = LaneNorms(norms, group, 4, update=True)
    obs = np.array([[1.0, 2, 3, 4], [3, 2, 1, 0], [10, 10, 10, 10]])
    for s, row in enumerate(obs):
        ln.s1[group[s]] += row
        ln.s2[group[s]] += row * row
    ln.fold(np.ones(3, dtype=np.int64))
    ref = [RunningNorm((4,)), RunningNorm((4,))]
    ref[0].update(obs[:2])
    ref[1].update(obs[2:])
    for a, b in zip(norms, ref, strict=True):
        np.testing.assert_allclose(a.mean, b.mean)
        np.testing.assert_allclose(a.var, b.var, atol=1e-9)
        assert a.count == b.count


def _records(path):
    from rlsub.experiment.store import Store

    with Store(path, readonly=True) as st:
        return {(r.d, r.direct, r.seed): r for r in st.records()}


def test_a_batched_sweep_stores_what_the_one_by_one_sweep_stores(tmp_path):
    from rlsub.sweep.strategy import run_sweep

    base = with_overrides(
        _cfg(), sweep={"d_grid": [2, 8], "seeds": [0, 1], "baseline": True, "batch": 1}
    )
    batched = with_overrides(base, sweep={"batch": 4})
    one = run_sweep(base, tmp_path / "one.sqlite", mode="grid", progress=False)
    four = run_sweep(batched, tmp_path / "four.sqlite", mode="grid", progress=False)
    assert one["trials"]["run"] == four["trials"]["run"] == 6
    a, b = _records(tmp_path / "one.sqlite"), _records(tmp_path / "four.sqlite")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key].final_eval_mean, a[key].env_steps, a[key].curve) == (
            b[key].final_eval_mean,
            b[key].env_steps,
            b[key].curve,
        )
        assert b[key].status == "done" and "batch" not in a[key].info
        assert b[key].info["batch"]["trials"] in (2, 4)  # 6 trials: a batch of 4, then 2
