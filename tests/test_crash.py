"""A worker that dies mid-trial (SIGKILL) loses nothing: its trial runs again in a fresh
worker, up to MAX_ATTEMPTS, and is recorded once with its attempts counted; a trial's own
error is not retried; the trial running beside it is not touched (pool and Ray)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fake_trainer
import pytest

import rlsub.experiment.trial
from rlsub.core.config import experiment_from_dict
from rlsub.experiment.store import Store
from rlsub.sweep.executors import MAX_ATTEMPTS
from rlsub.sweep.strategy import run_sweep

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_trainer.register(monkeypatch)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)
    monkeypatch.setenv("RLSUB_FAKE_FAST_VERSIONS", "1")  # for spawned workers
    monkeypatch.setenv(  # Ray's workers import the fake trainer from tests/ too
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    )


def _sweep(tmp_path: Path, backend: str = "local", **train: Any) -> tuple[dict, dict, list]:
    """d 1 (the one that crashes or fails) beside d 2, one seed, two workers, no baseline:
    the two trials start together. Returns (summary, rows by d, started (d, seed) list)."""
    log = tmp_path / "starts.log"
    log.touch()
    sweep = {"d_grid": [1, 2], "seeds": [0], "baseline": False}
    cfg = experiment_from_dict(
        fake_trainer.config(log_file=str(log), sleep_s=2.0, sweep=sweep, **train)
    )
    out = run_sweep(cfg, tmp_path / "s.sqlite", workers=2, backend=backend)
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        rows = {r["d"]: r for r in st.rows()}
    starts = [tuple(ln.split()[:2]) for ln in log.read_text().splitlines()]
    return out, rows, starts


def test_pool_worker_killed_mid_trial_runs_again_and_the_other_is_untouched(
    fake: None, tmp_path: Path
) -> None:
    out, rows, starts = _sweep(tmp_path, crash_d=[1])
    assert out["trials"]["run"] == 2 and out["trials"]["failed"] == 0
    assert rows[1]["status"] == "done" and rows[1]["attempts"] == 2
    assert rows[1]["info"]["worker_crashes"] == 1
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert starts.count(("2", "0")) == 1  # the trial beside the crash ran once, to its end
    assert starts.count(("1", "0")) == 2


def test_pool_worker_that_keeps_dying_is_recorded_failed_once(fake: None, tmp_path: Path) -> None:
    out, rows, starts = _sweep(tmp_path, crash_d=[1], crashes=99)
    assert rows[1]["status"] == "failed" and rows[1]["attempts"] == MAX_ATTEMPTS
    assert "worker process died (killed by SIGKILL)" in rows[1]["reason"]
    assert f"gave up after {MAX_ATTEMPTS} attempts" in rows[1]["reason"]
    assert starts.count(("1", "0")) == MAX_ATTEMPTS
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert len(rows) == 2 and out["trials"]["failed"] == 1


def test_a_trials_own_error_is_not_retried(fake: None, tmp_path: Path) -> None:
    _, rows, starts = _sweep(tmp_path, fail_d=[1])
    assert rows[1]["status"] == "failed" and rows[1]["attempts"] == 1
    assert rows[1]["reason"] == "RuntimeError: boom at d=1"
    assert starts.count(("1", "0")) == 1 and rows[2]["status"] == "done"


@pytest.mark.slow
def test_ray_worker_killed_mid_trial_runs_again(fake: None, tmp_path: Path, ray_local) -> None:
    out, rows, starts = _sweep(tmp_path, backend="ray", crash_d=[1])
    assert out["trials"]["failed"] == 0
    assert rows[1]["status"] == "done" and rows[1]["attempts"] == 2
    assert "worker_crashes" in rows[1]["info"]
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert starts.count(("2", "0")) == 1
