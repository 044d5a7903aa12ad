"""The trainer protocol. A trainer is a `Trainer(config_class, train, ...)` registered by name in
`rlsub.core.registry.TRAINERS` (or given as an import path `"pkg.module:TRAINER"`):

    train(cfg: ExperimentConfig, d: int | "direct", seed: int, progress: bool) -> TrainResult

Besides training, a trainer answers what the layers above it ask (sweep, suite,
report), so that none of them knows an algorithm by its name (SB3's habit: ask
the object). Every answer is optional, with a default that says "not known":

    check(cfg) -> None                raise RlsubError (one line) for a config its
                                      trials would refuse; no env or data touched
    dimension(cfg, data, progress)    D of its subspace, found without training (a
        -> int | None                 1-slot env, or the dataset: data=False sizes it
                                      from the dataset's known shape, reading no file);
                                      None: not known before training
    budget(cfg) -> Budget | None      a trial's training budget (unit and amount)
    spent(row) -> float | None        budget units a finished trial used, from its
                                      record (a store row: env_steps, info, config)
    describe(train) -> list[str]      what tells its table rows apart, from a record's
                                      train section (e.g. "parts: all")
    family                            its kind, for figures that set kinds side by side
                                      ("es": search in z without gradients, "pg": SB3's
                                      gradient algorithms, "supervised"; "" none)
    batchable(cfg) -> str | None      why cfg's trials cannot run as one batched job
                                      (None: they can), and
    train_batch(cfg, jobs, progress)  several (d, seed) trials as one job (sweep.batch)
        -> [TrainResult | exception]  None: trials run one by one

`lazy("pkg.module:name")` stands for a function imported on first call, for a
trainer whose batch module imports the trainer's own module. The older form
`batch="pkg.module"` (a module holding `batchable` and `train_batch`) still works.

A trainer with `checkpoints=True` also takes `checkpoint=` in train
(rlsub.core.checkpoint.Checkpoint): run_trial hands it one beside the policy file, and
a killed trial resumes from it.

Imports: core only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rlsub.core.registry import TRAINERS, import_path

if TYPE_CHECKING:
    from rlsub.core.config import ExperimentConfig
    from rlsub.core.subspace import Subspace


@dataclass(frozen=True)
class Budget:
    """A trial's training budget: `amount` (an upper bound where training may stop early)
    of `unit` (singular: "generation", "env step", "epoch", "episode")."""

    unit: str
    amount: float


class PolicyFile(Protocol):
    """What `run_trial` writes beside a record: a `Subspace` (the compact file), or another
    writer (an SB3 policy's state, rlsub.algos.sb3_file)."""

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path: ...


class LazyFunction:
    """The function at import path `path`, imported on its first call (`lazy`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._target: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._target is None:
            self._target = import_path(self.path, "trainer hook")
        return self._target(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.path!r})"


def lazy(path: str) -> Callable[..., Any]:
    """The function at import path `path` ("pkg.module:name"), imported on its first call."""
    return LazyFunction(path)


def no_check(cfg: ExperimentConfig) -> None:
    """The default `check`: nothing known to refuse before the trial."""


def unknown_dimension(cfg: ExperimentConfig, data: bool = True, progress: bool = False) -> None:
    """The default `dimension`: D is known only once the trainer has built its network."""
    return None


def unknown_budget(cfg: ExperimentConfig) -> Budget | None:
    """The default `budget`: not known."""
    return None


def unknown_spent(row: Mapping[str, Any]) -> float | None:
    """The default `spent`: not known."""
    return None


def no_description(train: Mapping[str, Any]) -> list[str]:
    """The default `describe`: nothing beyond task, algorithm, network and budget."""
    return []


def always_batchable(cfg: ExperimentConfig) -> str | None:
    """The default `batchable` of a trainer with a `train_batch`: every config."""
    return None


@dataclass(frozen=True)
class Trainer:
    """A training algorithm as a plug-in: its hyperparameter dataclass (the config's
    `train:` section is validated against it), its train function, and its answers to
    the outer layers (module docstring). `supervised` trainers take a `dataset:`
    section, the others an `env:`."""

    config_class: type
    train: Callable[..., TrainResult]
    supervised: bool = False
    family: str = ""
    check: Callable[[ExperimentConfig], None] = no_check
    dimension: Callable[..., int | None] = unknown_dimension
    budget: Callable[[ExperimentConfig], Budget | None] = unknown_budget
    spent: Callable[[Mapping[str, Any]], float | None] = unknown_spent
    describe: Callable[[Mapping[str, Any]], list[str]] = no_description
    batchable: Callable[[ExperimentConfig], str | None] | None = None
    train_batch: Callable[..., list[TrainResult | BaseException]] | None = None
    batch: str | None = None  # the older form: a module with batchable and train_batch
    # whether train takes `checkpoint=` (rlsub.core.checkpoint.Checkpoint): run_trial then
    # hands it one beside the policy file, and a killed trial resumes from it
    checkpoints: bool = False

    def __post_init__(self) -> None:
        if self.batch is not None and self.train_batch is None:
            object.__setattr__(self, "batchable", lazy(f"{self.batch}:batchable"))
            object.__setattr__(self, "train_batch", lazy(f"{self.batch}:train_batch"))
        if self.train_batch is not None and self.batchable is None:
            object.__setattr__(self, "batchable", always_batchable)


_FIELDS = (
    "supervised",
    "family",
    "check",
    "dimension",
    "budget",
    "spent",
    "describe",
    "batchable",
    "train_batch",
    "batch",
    "checkpoints",
)


def as_trainer(obj: Any, name: str) -> Trainer:
    """`obj` (what `name` resolved to) as a `Trainer`: itself, or a trainer-like object
    (config_class and train, the rest optional) taken over with the defaults."""
    if isinstance(obj, Trainer):
        return obj
    config_class, train = getattr(obj, "config_class", None), getattr(obj, "train", None)
    if not isinstance(config_class, type) or not callable(train):
        from rlsub.core.errors import RlsubError

        raise RlsubError(
            f"algorithm {name!r} is not a trainer (rlsub.Trainer(config_class, train))"
        )
    given = {k: getattr(obj, k) for k in _FIELDS if getattr(obj, k, None) is not None}
    return Trainer(config_class, train, **given)


def trainer_for(algorithm: str) -> Trainer:
    """The `Trainer` registered as `algorithm` (or at that import path)."""
    return as_trainer(TRAINERS.resolve(algorithm), algorithm)


def known_trainer(algorithm: str) -> Trainer | None:
    """The trainer registered by name as `algorithm`, or None (an import path, or a name
    not registered here): for reading stores, whose records name code that is not run
    (rlsub.core.trust)."""
    if algorithm not in TRAINERS.names():
        return None
    try:
        return trainer_for(algorithm)
    except Exception:  # a registered plug-in that does not import here
        return None


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
    # saved as the trial's policy file: the compact Subspace, or another writer (PolicyFile)
    subspace: Subspace | PolicyFile | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # saved beside z (e.g. obs stats)
    info: dict[str, Any] = field(default_factory=dict)  # anything else for the record
