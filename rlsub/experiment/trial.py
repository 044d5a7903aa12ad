"""A trial: one (config, d, seed) trained and evaluated, and its record.

Trainers (`rlsub.es`, `rlsub.pg`, `rlsub.supervised`) each expose

    train(cfg: ExperimentConfig, d: int | "direct", seed: int, progress: bool) -> TrainResult

and `run_trial` wraps one call: it times it, catches a divergence (NaN) or an
exception and records it as failed with its reason, writes the compact policy
file, and returns a `TrialRecord` that carries its resolved config, the git
revision and package versions. A trial is identified by (config hash, d, seed).
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Any

from rlsub.algos.base import TrainResult
from rlsub.core.config import ExperimentConfig, experiment_from_dict, load_experiment
from rlsub.core.errors import RlsubError
from rlsub.core.registry import TRAINERS
from rlsub.experiment.record import TrialRecord, git_revision, versions


def trainer_for(algorithm: str) -> Any:
    """The `Trainer` registered as `algorithm` (or at that import path)."""
    return TRAINERS.resolve(algorithm)


def run_trial(
    cfg: ExperimentConfig,
    d: int | str,
    seed: int,
    policy_dir: str | Path | None = None,
    progress: bool = True,
    catch: bool = True,
) -> TrialRecord:
    """Train and evaluate one trial; failures become records (status 'failed') when `catch`."""
    direct = d == "direct"
    rec = TrialRecord(
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
    trainer = trainer_for(cfg.algorithm)
    t0 = time.perf_counter()
    try:
        res: TrainResult = trainer.train(cfg, d, seed, progress=progress)
    except RlsubError:
        raise  # a user mistake is not a failed trial: stop with its message
    except Exception as exc:
        if not catch:
            raise
        rec.wall_s = time.perf_counter() - t0
        rec.reason = f"{type(exc).__name__}: {exc}".strip()[:500]
        rec.info["traceback"] = traceback.format_exc(limit=5)[-2000:]
        return rec
    rec.wall_s = time.perf_counter() - t0
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
        tag = "direct" if direct else f"d{rec.d}"
        path = Path(policy_dir) / f"{cfg.name}-{cfg.hash}-{tag}-s{seed}.pt"
        saved = res.subspace.save(path, extra={"config": rec.config, **res.extra})
        rec.policy_path = str(saved or path)
    rec.status = "done"
    return rec


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
    elif isinstance(config, dict):
        cfg = experiment_from_dict(config, str(config.get("name", "config")))
    else:
        cfg = load_experiment(config)
    return run_trial(cfg, d, seed, policy_dir=policy_dir, progress=progress)
