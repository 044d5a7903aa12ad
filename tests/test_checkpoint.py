"""Long trials checkpoint (rlsub.core.checkpoint): a killed ES or CMA-ES trial resumes from its
last checkpoint and ends bit-identical to an uninterrupted run; a checkpoint file is data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from rlsub.algos.es import train as es_train
from rlsub.core import checkpoint as ckpt_module
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import load_experiment, with_overrides
from rlsub.experiment.trial import run_trial, trial_checkpoint

ENV_DIR = Path(__file__).resolve().parents[1] / "rlsub" / "bundled" / "envs"


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the trainer catches it."""


def _kill_after_saves(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make every checkpoint due, and end the process (Killed) right after the n-th save."""
    saved: list[int] = []
    real_save = Checkpoint.save

    def save(self: Checkpoint, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        real_save(self, meta, tensors)
        saved.append(meta.get("generation", meta.get("epoch", meta.get("episode"))))
        if len(saved) == n:
            raise Killed

    monkeypatch.setattr(Checkpoint, "save", save)
    monkeypatch.setenv("RLSUB_CHECKPOINT_S", "0")
    return saved


def _same(a: Any, b: Any) -> None:
    assert a.final_eval_mean == b.final_eval_mean and a.final_eval_std == b.final_eval_std
    assert a.best_eval_mean == b.best_eval_mean and a.env_steps == b.env_steps
    assert a.curve == b.curve
    assert a.extra == b.extra  # observation statistics included
    assert {k: v for k, v in a.info.items() if k != "resumed_at_generation"} == b.info
    assert torch.equal(a.subspace.z, b.subspace.z)


@pytest.mark.parametrize(
    "config, d, train",
    [
        ("cartpole_es", 4, {"generations": 9, "stop_when_solved": False, "eval_every": 2}),
        ("cartpole_es", 2, {"generations": 8, "max_steps_per_episode": 40, "reseed": 3}),
        ("inverted_pendulum_es", 3, {"generations": 7, "eval_every": 2}),  # CMA-ES: replayed
    ],
)
def test_killed_trial_resumes_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, d: int, train: dict
) -> None:
    cfg = with_overrides(load_experiment(config), train=train)
    whole = es_train(cfg, d, 1, progress=False)
    saved = _kill_after_saves(monkeypatch, 2)
    ck = trial_checkpoint(cfg, d, 1, tmp_path)
    with pytest.raises(Killed):
        es_train(cfg, d, 1, progress=False, checkpoint=ck)
    assert ck.path.is_file() and len(saved) == 2
    reseed = train.get("reseed", True)
    assert reseed is True or all(g % reseed == 0 for g in saved)  # only where slots are seeded
    monkeypatch.setattr(Checkpoint, "save", lambda *a: None)  # the rerun writes none
    resumed = es_train(cfg, d, 1, progress=False, checkpoint=ck)
    assert resumed.info["resumed_at_generation"] == saved[-1] > 0
    _same(resumed, whole)


def test_reseed_false_writes_no_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots that continue their own RNG cannot be restored: no checkpoint, no false promise."""
    cfg = with_overrides(load_experiment("cartpole_es"), train={"generations": 5, "reseed": False})
    saved = _kill_after_saves(monkeypatch, 1)
    ck = trial_checkpoint(cfg, 2, 0, tmp_path)
    es_train(cfg, 2, 0, progress=False, checkpoint=ck)
    assert saved == [] and not ck.path.exists()


def test_run_trial_removes_its_checkpoint_and_ignores_a_foreign_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLSUB_CHECKPOINT_S", "0")
    cfg = with_overrides(load_experiment("cartpole_es"), train={"generations": 4})
    other = with_overrides(cfg, train={"sigma": 0.03})
    ck = trial_checkpoint(cfg, 2, 0, tmp_path)
    theirs = trial_checkpoint(other, 2, 0, tmp_path)
    theirs.save({"generation": 3}, {"x": torch.zeros(1)})
    os.replace(theirs.path, ck.path)  # a file of another trial where this one looks
    assert ck.load() is None
    rec = run_trial(cfg, 2, 0, policy_dir=tmp_path, progress=False)
    assert rec.status == "done" and "resumed_at_generation" not in rec.info
    assert not ck.path.exists() and list((tmp_path / "checkpoints").iterdir()) == []
    assert rec.final_eval_mean == run_trial(cfg, 2, 0, progress=False).final_eval_mean


def test_checkpoint_file_runs_no_code(tmp_path: Path, capsys: Any) -> None:
    """A pickle that would run a command when unpickled is refused (weights_only)."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    ck = Checkpoint(tmp_path / "x.ckpt", {"k": 1})
    torch.save(
        {"header": json.dumps({"format": 1, "key": {"k": 1}}), "tensors": Payload()}, ck.path
    )
    assert ck.load() is None
    assert not marker.exists()
    assert "unreadable" in capsys.readouterr().err
    ck.path.write_bytes(b"not a checkpoint")
    assert ck.load() is None


def test_checkpoint_interval_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLSUB_CHECKPOINT_S", "often")
    with pytest.raises(ValueError, match="RLSUB_CHECKPOINT_S"):
        ckpt_module.default_every_s()


def _pong_config(tmp_path: Path) -> Path:
    """Pong from pixels, games cut at 60 agent steps, 6 generations, slots seeded every 2."""
    env = yaml.safe_load((ENV_DIR / "pong.yaml").read_text())
    env["kwargs"]["max_num_frames_per_episode"] = 240
    env["max_episode_steps"] = 60
    env["eval_episodes"] = 1
    (tmp_path / "short_pong.yaml").write_text(yaml.safe_dump(env))
    cfg = {
        "name": "pong_es_resume",
        "env": str(tmp_path / "short_pong.yaml"),
        "algorithm": "es",
        "network": {"name": "es_pong"},
        "subspace": {"projection": "fastfood"},
        "train": {
            "generations": 6, "population": 4, "max_steps_per_episode": 30, "sigma": 0.05,
            "obs_norm": False, "eval_every": 2, "threads": 1, "env_threads": 1, "reseed": 2,
            "stop_when_solved": False,
        },
    }  # fmt: skip
    path = tmp_path / "pong_es_resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rlsub_train(cfg: Path, out: Path, **popen: Any) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rlsub", "train", str(cfg), "--d", "40", "--out", str(out)]
    env = {**os.environ, "RLSUB_CHECKPOINT_S": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*cmd, "--json", "--quiet"], env=env, text=True, **popen)


def _pong_record(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_pong_es_killed_mid_trial_resumes_bit_identical(tmp_path: Path) -> None:
    """`rlsub train` on Pong from pixels, SIGKILLed once a checkpoint exists, run again:
    the same record and the same z as a run never killed."""
    cfg = _pong_config(tmp_path)
    whole = _pong_record(_rlsub_train(cfg, tmp_path / "whole", stdout=subprocess.PIPE))
    out = tmp_path / "killed"
    proc = _rlsub_train(cfg, out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = out / "checkpoints"
    deadline = time.monotonic() + 300
    while not (folder.is_dir() and any(folder.glob("*.ckpt"))):
        assert proc.poll() is None, "the trial ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (path,) = folder.glob("*.ckpt")
    at = json.loads(torch.load(path, weights_only=True)["header"])["meta"]["generation"]
    assert 0 < at < 6
    again = _pong_record(_rlsub_train(cfg, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    assert again["info"].pop("resumed_at_generation") >= at
    for k in ("final_eval_mean", "final_eval_std", "best_eval_mean", "env_steps", "curve"):
        assert again[k] == whole[k], k
    assert {k: v for k, v in again["info"].items() if k != "traceback"} == whole["info"]
    z_whole = torch.load(whole["policy_path"], weights_only=True)["z"]
    z_again = torch.load(again["policy_path"], weights_only=True)["z"]
    assert torch.equal(z_whole, z_again)
    assert not any(folder.glob("*.ckpt"))  # removed once the record is written


@pytest.mark.parametrize("d", [40, "direct"])
def test_killed_supervised_trial_resumes_at_its_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, d: Any
) -> None:
    from rlsub.algos.supervised import train as sup_train

    cfg = with_overrides(load_experiment("digits_fc"), train={"epochs": 4})
    whole = sup_train(cfg, d, 2, progress=False)
    saved = _kill_after_saves(monkeypatch, 2)
    ck = trial_checkpoint(cfg, d, 2, tmp_path)
    with pytest.raises(Killed):
        sup_train(cfg, d, 2, progress=False, checkpoint=ck)
    assert saved == [1, 2]
    monkeypatch.setattr(Checkpoint, "save", lambda *a: None)
    resumed = sup_train(cfg, d, 2, progress=False, checkpoint=ck)
    assert resumed.info.pop("resumed_at_epoch") == 2
    assert resumed.curve == whole.curve and resumed.env_steps == whole.env_steps
    assert resumed.final_eval_mean == whole.final_eval_mean
    assert resumed.info == whole.info
    for (k, a), (_, b) in zip(
        resumed.subspace.named_parameters(), whole.subspace.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), k


def test_killed_dqn_paper_run_resumes_at_its_episode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper's DQN (replay buffer, RMSProp, target net, epsilon, last-100 window) resumes
    from the end of its last saved episode and ends as the run never killed."""
    from rlsub.algos.dqn_paper import train as dqn_train

    train = {"max_episodes": 30, "window": 10, "eval_episodes": 2, "buffer_size": 200}
    cfg = with_overrides(load_experiment("cartpole_v0_dqn_paper"), train=train)
    whole = dqn_train(cfg, 10, 0)
    saved = _kill_after_saves(monkeypatch, 12)
    ck = trial_checkpoint(cfg, 10, 0, tmp_path)
    with pytest.raises(Killed):
        dqn_train(cfg, 10, 0, checkpoint=ck)
    monkeypatch.setattr(Checkpoint, "save", lambda *a: None)
    resumed = dqn_train(cfg, 10, 0, checkpoint=ck)
    assert resumed.info.pop("resumed_at_episode") == saved[-1] == 12
    for k in ("train_wall_s",):
        resumed.info.pop(k), whole.info.pop(k)
    assert resumed.info == whole.info and resumed.curve == whole.curve
    assert resumed.final_eval_mean == whole.final_eval_mean
    assert torch.equal(resumed.subspace.z, whole.subspace.z)
