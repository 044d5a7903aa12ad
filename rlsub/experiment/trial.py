"""A trial: one (config, d, seed) trained and evaluated, and its record.

Trainers (`rlsub.algos.base.Trainer`: ES, CMA-ES, SB3's PPO / A2C / DQN, supervised
Adam, the paper's DQN, or a user's plug-in) each expose

    train(cfg: ExperimentConfig, d: int | "direct", seed: int, progress: bool) -> TrainResult

and `run_trial` wraps one call: it times it, catches a divergence (NaN) or an
exception and records it as failed with its reason, writes the compact policy
file, and returns a `TrialRecord` that carries its resolved config, the git
revision and package versions. A trial is identified by (config hash, d, seed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlsub.algos.base import TrainResult, trainer_for
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import ExperimentConfig, experiment_from_dict, load_experiment
from rlsub.core.errors import RlsubError
from rlsub.core.paths import write_error
from rlsub.envs.spec import check_config_env
from rlsub.experiment.record import TrialRecord, git_revision, versions


def _new_record(cfg: ExperimentConfig, d: int | str, seed: int) -> TrialRecord:
    direct = d == "direct"
    return TrialRecord(
        config_hash=cfg.hash,
        name=cfg.name,
        task=cfg.task,
        algorithm=cfg.algorithm,
        network=cfg.network.name,
        projection="identity" if direct else cfg.subspace.projection,
        d=0 if direct else int(d),
        direct=direct,
        seed=int(seed),
        status="failed",
        config=cfg.to_dict(),
        versions=versions(),
        git_rev=git_revision(),
    )


def failed_record(
    cfg: ExperimentConfig, d: Any, seed: int, reason: str, wall_s: float = 0.0
) -> TrialRecord:
    """A 'failed' record for a trial that ended outside `run_trial` (timeout, dead worker)."""
    rec = _new_record(cfg, d, seed)
    rec.reason, rec.wall_s = reason, wall_s
    return rec


def _failed(rec: TrialRecord, exc: BaseException, wall_s: float) -> TrialRecord:
    rec.wall_s = wall_s
    rec.reason = f"{type(exc).__name__}: {exc}".strip()[:500]
    rec.info["traceback"] = "".join(traceback.format_exception(exc, limit=5))[-2000:]
    return rec


def _file_stem(cfg: ExperimentConfig, d: int | str, seed: int) -> str:
    tag = "direct" if d == "direct" else f"d{int(d)}"
    return f"{cfg.name}-{cfg.hash}-{tag}-s{int(seed)}"


def trial_checkpoint(
    cfg: ExperimentConfig, d: int | str, seed: int, policy_dir: str | Path
) -> Checkpoint:
    """The checkpoint of trial (d, seed) of cfg: `<policy_dir>/checkpoints/<trial>.ckpt`."""
    path = Path(policy_dir) / "checkpoints" / f"{_file_stem(cfg, d, seed)}.ckpt"
    key = {"config_hash": cfg.hash, "d": str(d), "seed": int(seed), "algorithm": cfg.algorithm}
    return Checkpoint(path, key)


def _finished(
    cfg: ExperimentConfig, rec: TrialRecord, res: TrainResult, policy_dir: str | Path | None
) -> TrialRecord:
    """Fill `rec` from a trainer's result; write the compact policy file."""
    rec.D, rec.d = res.D, res.d
    rec.final_eval_mean = float(res.final_eval_mean)
    rec.final_eval_std = float(res.final_eval_std)
    rec.best_eval_mean = float(res.best_eval_mean)
    rec.env_steps = int(res.env_steps)
    rec.curve = res.curve
    rec.solved_score = res.solved_score
    rec.info.update(res.info)
    if res.solved_score is not None and math.isfinite(rec.final_eval_mean):
        rec.solved = rec.final_eval_mean >= res.solved_score
    if not math.isfinite(rec.final_eval_mean):
        rec.reason = "diverged: final evaluation is not finite"
        return rec
    if policy_dir is not None and res.subspace is not None:
        path = (
            Path(policy_dir) / f"{_file_stem(cfg, 'direct' if rec.direct else rec.d, rec.seed)}.pt"
        )
        try:
            saved = res.subspace.save(path, extra={"config": rec.config, **res.extra})
        except (OSError, RuntimeError) as exc:  # a user's matter (disk full): stop, one line
            raise RlsubError(
                f"{path}: cannot write the policy file ({write_error(path, exc)})"
            ) from None
        rec.policy_path = str(saved or path)
    rec.status = "done"
    return rec


def run_trial(
    cfg: ExperimentConfig,
    d: int | str,
    seed: int,
    policy_dir: str | Path | None = None,
    progress: bool = True,
    catch: bool = True,
) -> TrialRecord:
    """Train and evaluate one trial; failures become records (status 'failed') when `catch`.
    A trainer that checkpoints (`Trainer.checkpoints`) keeps its checkpoint beside the
    policy file while it runs: a killed trial run again resumes from it."""
    check_config_env(cfg.env, cfg.source)
    rec = _new_record(cfg, d, seed)
    trainer = trainer_for(cfg.algorithm)
    kwargs: dict[str, Any] = {"progress": progress}
    ckpt = None
    if getattr(trainer, "checkpoints", False) and policy_dir is not None:
        ckpt = kwargs["checkpoint"] = trial_checkpoint(cfg, d, seed, policy_dir)
    t0 = time.perf_counter()
    try:
        with torch_threads_kept():  # a trainer's thread setting ends with its trial
            res: TrainResult = trainer.train(cfg, d, seed, **kwargs)
    except RlsubError:
        raise  # a user mistake is not a failed trial: stop with its message
    except Exception as exc:
        if not catch:
            raise
        if ckpt is not None:
            ckpt.remove()  # the trial's own error is its result: a rerun does not resume it
        return _failed(rec, exc, time.perf_counter() - t0)
    rec.wall_s = time.perf_counter() - t0
    rec = _finished(cfg, rec, res, policy_dir)
    if ckpt is not None:
        ckpt.remove()
    return rec


def batch_reason(cfg: ExperimentConfig) -> str | None:
    """None when cfg's trials can run as one batched job (`run_batch`), else why not."""
    trainer = trainer_for(cfg.algorithm)
    if trainer.train_batch is None or trainer.batchable is None:
        return f"algorithm {cfg.algorithm!r} has no batched trainer"
    return trainer.batchable(cfg)


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Restore torch's intra-op thread count after a trial (trainers set their own), so
    the next trial of an in-process sweep starts from the same setting."""
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_batch(
    cfg: ExperimentConfig,
    jobs: list[tuple[Any, int]],
    policy_dir: str | Path | None = None,
    progress: bool = False,
) -> list[TrialRecord]:
    """Trials (d, seed) of cfg as one batched job (check `batch_reason` first): one record
    each, as `run_trial` would write it. wall_s is the batch's wall time divided among its
    trials; info["batch"] holds the batch's size and whole wall time."""
    trainer = trainer_for(cfg.algorithm)
    if trainer.train_batch is None:
        raise RlsubError(f"algorithm {cfg.algorithm!r} has no batched trainer")
    t0 = time.perf_counter()
    with torch_threads_kept():
        results = trainer.train_batch(cfg, jobs, progress)
    wall = time.perf_counter() - t0
    records = []
    for (d, seed), res in zip(jobs, results, strict=True):
        rec = _new_record(cfg, d, seed)
        rec.info["batch"] = {"trials": len(jobs), "wall_s": wall}
        if isinstance(res, BaseException):
            records.append(_failed(rec, res, wall / len(jobs)))
        else:
            rec.wall_s = wall / len(jobs)
            records.append(_finished(cfg, rec, res, policy_dir))
    return records


def train(
    config: str | Path | dict[str, Any] | ExperimentConfig,
    d: int | str,
    seed: int = 0,
    policy_dir: str | Path | None = None,
    progress: bool = False,
) -> TrialRecord:
    """Train one trial from Python: `config` is a bundled config's name (`"cartpole_es"`),
    a YAML path, a config dict (as the YAML would hold it) or an `ExperimentConfig`.
    A user mistake raises `RlsubError`; a failing trainer gives a record with status
    'failed' and its reason. `policy_dir`: where to write the compact policy file."""
    if isinstance(config, ExperimentConfig):
        cfg = config
    elif isinstance(config, dict):  # errors name it: "config 'my_ppo': train.lr: ..."
        where = f"config {config.get('name', '?')!r}"
        cfg = dataclasses.replace(experiment_from_dict(config, where), source=where)
    else:
        cfg = load_experiment(config)
    return run_trial(cfg, d, seed, policy_dir=policy_dir, progress=progress)
