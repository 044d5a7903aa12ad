"""The trainer protocol. A trainer is a `Trainer(config_class, train)` registered by name in
`rlsub.core.registry.TRAINERS` (or given as an import path `"pkg.module:TRAINER"`):

    train(cfg: ExperimentConfig, d: int | "direct", seed: int, progress: bool) -> TrainResult

(with `checkpoint=` too when `Trainer.checkpoints`).

Imports: core only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trainer:
    """A training algorithm as a plug-in: its hyperparameter dataclass (the config's
    `train:` section is validated against it) and its train function. `supervised`
    trainers take a `dataset:` section, the others an `env:`."""

    config_class: type
    train: Callable[..., TrainResult]
    supervised: bool = False
    # import path of a module with `batchable(cfg) -> str | None` (why not, or None) and
    # `train_batch(cfg, jobs, progress) -> list[TrainResult | BaseException]`: several
    # (d, seed) trials as one job (sweep.batch); None: trials run one by one
    batch: str | None = None
    # whether train takes `checkpoint=` (rlsub.core.checkpoint.Checkpoint): run_trial then
    # hands it one beside the policy file, and a killed trial resumes from it
    checkpoints: bool = False


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
