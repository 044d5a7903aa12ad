"""A trial: one (config, d, seed) trained and evaluated, and its record.

Trainers (`rlsub.es`, `rlsub.pg`, `rlsub.supervised`) each expose

    train(cfg: ExperimentConfig, d: int | "direct", seed: int, progress: bool) -> TrainResult

and `run_trial` wraps one call: it times it, catches a divergence (NaN) or an
exception and records it as failed with its reason, writes the compact policy
file, and returns a `TrialRecord` that carries its resolved config, the git
revision and package versions. A trial is identified by (config hash, d, seed).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import platform
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsub.config import ExperimentConfig
from rlsub.errors import RlsubError

TRAINERS: dict[str, str] = {
    "es": "rlsub.es",
    "cmaes": "rlsub.es",
    "ppo": "rlsub.pg",
    "a2c": "rlsub.pg",
    "dqn": "rlsub.pg",
    "adam": "rlsub.supervised",
}


@dataclass
class TrainResult:
    """What a trainer hands back. Scores: mean return (RL) or test accuracy (supervised)."""

    final_eval_mean: float
    final_eval_std: float
    best_eval_mean: float
    D: int
    d: int
    env_steps: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)  # [{"step": .., "value": ..}]
    solved_score: float | None = None  # env's solved score (RL); None for supervised
    subspace: Any = None  # rlsub.subspace.Subspace, saved as the compact policy file
    extra: dict[str, Any] = field(default_factory=dict)  # saved beside z (e.g. obs stats)
    info: dict[str, Any] = field(default_factory=dict)  # anything else for the record


@dataclass
class TrialRecord:
    config_hash: str
    name: str
    task: str
    algorithm: str
    network: str
    projection: str
    d: int  # subspace dimension; for the direct baseline d == D and direct is True
    direct: bool
    seed: int
    status: str  # "done" | "failed"
    reason: str = ""
    D: int = 0
    final_eval_mean: float = float("nan")
    final_eval_std: float = float("nan")
    best_eval_mean: float = float("nan")
    solved: bool | None = None
    solved_score: float | None = None
    env_steps: int = 0
    wall_s: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)
    policy_path: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git_rev: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def versions() -> dict[str, str]:
    """Installed package versions, read from metadata (no heavy imports)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "rlsub",
        "torch",
        "numpy",
        "gymnasium",
        "stable_baselines3",
        "mujoco",
        "ale_py",
        "cma",
    ):
        try:
            out[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def trainer_for(algorithm: str) -> Any:
    if algorithm not in TRAINERS:
        raise RlsubError(f"unknown algorithm {algorithm!r}; allowed: {', '.join(TRAINERS)}")
    return importlib.import_module(TRAINERS[algorithm])


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
        res.subspace.save(path, extra={"config": rec.config, **res.extra})
        rec.policy_path = str(path)
    rec.status = "done"
    return rec
