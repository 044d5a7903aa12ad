"""Experiment configs: YAML loaded once into frozen, typed objects.

Every field documents itself (``field(metadata={"doc": ...})``); a bad key or
value raises `ConfigError` naming the file, the key and what is allowed. The
algorithm section (`train:`) is validated by the trainer's own dataclass
(`rlsub.core.registry.TRAINERS` names each trainer), so a trainer owns its
hyperparameters and the loader stays generic.

    name: cartpole_es
    env: cartpole            # envs/cartpole.yaml (RL) -- or --
    dataset: {name: digits}  # supervised
    algorithm: es            # es | cmaes | ppo | a2c | dqn | adam
    network: {name: mlp, kwargs: {hidden: [16], activation: tanh}}
    subspace: {projection: sparse}
    train: {...}             # the algorithm's hyperparameters
    sweep: {d_grid: [1, 2, 4, 8], seeds: [0, 1, 2]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from rlsub.core.bundled import config_path
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.registry import TRAINERS
from rlsub.core.schema import MAX_INT, check, doc, from_mapping, read_yaml, to_dict

MAX_SEED = MAX_INT  # seeds are stored as SQLite integers
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}"  # no '/', no leading '.': stays in runs/


@dataclass(frozen=True)
class NetworkConfig:
    name: str = doc("network builder name (rlsub.core.registry.NETWORKS)")
    kwargs: dict[str, Any] = doc(
        "builder keyword arguments; RL input/output sizes come from the env", default_factory=dict
    )


@dataclass(frozen=True)
class SubspaceConfig:
    projection: Literal["dense", "sparse", "fastfood"] = doc(
        "kind of random projection P", default="sparse"
    )
    include: list[str] | None = doc(
        "parameter-name prefixes in the subspace (null: all)", default=None
    )
    rest: Literal["frozen", "direct"] = doc(
        "parameters outside the subspace: frozen or trained directly", default="frozen"
    )
    dense_limit_gib: float = doc("refuse a dense P larger than this", default=2.0)
    projection_seed: int | None = doc(
        "pin the projection seed (null: derived from the trial seed)", default=None
    )

    def __post_init__(self) -> None:
        check(self.dense_limit_gib > 0, f"dense_limit_gib must be > 0, got {self.dense_limit_gib}")
        check(
            self.projection_seed is None or 0 <= self.projection_seed <= MAX_SEED,
            f"projection_seed must be in 0..2**63 - 1, got {self.projection_seed}",
        )


@dataclass(frozen=True)
class DatasetConfig:
    name: Literal["digits", "mnist", "cifar10"] = doc("dataset")
    variant: Literal["standard", "shuffled_pixels", "shuffled_labels"] = doc(
        "original's variants", default="standard"
    )
    data_dir: str | None = doc(
        "local directory holding the files (else download into the cache)", default=None
    )


@dataclass(frozen=True)
class SweepConfig:
    d_grid: list[int] = doc(
        "subspace dimensions to try (grid mode; adaptive mode's bracket)",
        default_factory=lambda: [1, 2, 4, 8, 16, 32],
    )
    seeds: list[int] = doc("trial seeds at every d", default_factory=lambda: [0, 1, 2])
    baseline: bool = doc("also train the network directly (all D parameters)", default=True)
    threshold: float = doc("d_int90's fraction of the baseline", default=0.9)
    trial_timeout_s: float | None = doc("per-trial wall-clock limit (null: none)", default=None)
    precision: float = doc(
        "adaptive: add d between the last failing and the first passing d until the "
        "interpolated interval's hi / lo is at most this",
        default=1.5,
    )
    max_trials: int | None = doc(
        "adaptive: trial budget of the refinement (null: 3 x the grid's trials)", default=None
    )
    batch: int = doc(
        "trials of this config played together as one batched job by a one-worker local "
        "sweep (ES on CartPole: rlsub.algos.es_batch, each trial's result equal to its solo "
        "run); configs that cannot be batched, or with a trial_timeout_s, run one by one",
        default=1,
    )

    def __post_init__(self) -> None:
        check(
            len(self.d_grid) > 0 and all(d > 0 for d in self.d_grid),
            f"sweep.d_grid must hold positive integers, got {self.d_grid}",
        )
        check(len(self.seeds) > 0, "sweep.seeds must not be empty")
        check(
            all(0 <= s <= MAX_SEED for s in self.seeds),
            f"sweep.seeds must be integers in 0..2**63 - 1, got {self.seeds}",
        )
        check(
            self.trial_timeout_s is None or self.trial_timeout_s > 0,
            f"sweep.trial_timeout_s must be > 0 (null: none), got {self.trial_timeout_s}",
        )
        check(0 < self.threshold <= 1, f"sweep.threshold must be in (0, 1], got {self.threshold}")
        check(self.precision > 1, f"sweep.precision must be > 1, got {self.precision}")
        check(
            self.max_trials is None or self.max_trials > 0,
            f"sweep.max_trials must be > 0, got {self.max_trials}",
        )
        check(self.batch >= 1, f"sweep.batch must be >= 1, got {self.batch}")


TrainT = TypeVar("TrainT")  # the trainer's config class (its `train:` section)


@dataclass(frozen=True)
class ExperimentConfig(Generic[TrainT]):
    """One experiment. Generic in its `train:` section: a trainer may annotate
    `cfg: ExperimentConfig[PGConfig]` to have `cfg.train` typed; a bare `ExperimentConfig`
    leaves it open (any trainer's)."""

    name: str = doc("experiment name (store and file names)")
    algorithm: str = doc(
        f"training algorithm: {', '.join(TRAINERS.names())}, or an import path 'pkg.module:TRAINER'"
    )
    network: NetworkConfig = doc("network to reparameterise")
    env: str | dict[str, Any] | None = doc(
        "RL env spec: a name in envs/, a gymnasium id, a path to a YAML spec, an import "
        "path, or an inline mapping of the spec's fields ({id: Acrobot-v1, solved_score: ...})",
        default=None,
    )
    env_variant: str | None = doc("a variant of the env spec (e.g. v0 for CartPole)", default=None)
    dataset: DatasetConfig | None = doc("supervised dataset", default=None)
    subspace: SubspaceConfig = doc("projection settings", default_factory=SubspaceConfig)
    train: TrainT = doc(
        "the algorithm's hyperparameters (an instance of its trainer's config class)",
        default=None,
    )
    sweep: SweepConfig = doc("d grid and seeds", default_factory=SweepConfig)
    source: str = doc("where the config was read from (set by the loader)", default="<dict>")

    def __post_init__(self) -> None:
        check(
            re.fullmatch(NAME_PATTERN, self.name) is not None,
            f"name {self.name!r} must be 1-100 letters, digits, '_', '-', '.' or '+', starting "
            "with a letter or digit (it names files in the runs folder)",
        )

    @property
    def supervised(self) -> bool:
        return bool(getattr(TRAINERS.resolve(self.algorithm), "supervised", False))

    @property
    def task(self) -> str:
        """Short task name: the env spec or dataset (with its variant)."""
        if self.dataset is not None:
            v = "" if self.dataset.variant == "standard" else f"-{self.dataset.variant}"
            return f"{self.dataset.name}{v}"
        return env_label(self.env) + (f"-{self.env_variant}" if self.env_variant else "")

    def to_dict(self) -> dict[str, Any]:
        out = to_dict(self)
        out.pop("source")
        return out

    @property
    def hash(self) -> str:
        """Identity of a trial's settings: everything except the sweep plan, the source and
        train.device."""
        data = self.to_dict()
        data.pop("sweep")
        if isinstance(data.get("train"), dict):  # where it runs is not what it is (core.device)
            data["train"].pop("device", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def env_label(env: str | dict[str, Any] | None) -> str:
    """An env's short name for tables: an inline spec's name (else its id), a YAML
    spec's `name` (else the file's stem), or the name or id as given."""
    if isinstance(env, dict):
        return str(env.get("name") or env.get("id"))
    if env is None:
        return "None"
    path = Path(env)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            data = read_yaml(path)
        except ConfigError:
            data = None
        name = data.get("name") if isinstance(data, dict) else None
        return str(name) if isinstance(name, str) and name else path.stem
    return env


def algorithm_config_class(name: str) -> type:
    """The hyperparameter dataclass of trainer `name` (a registered name or an import path)."""
    try:
        trainer = TRAINERS.resolve(name)
    except RlsubError as exc:
        raise ConfigError(str(exc)) from None
    cls = getattr(trainer, "config_class", None)
    if not isinstance(cls, type):
        raise ConfigError(
            f"algorithm {name!r} is not a trainer (rlsub.Trainer(config_class, train))"
        )
    return cls


def experiment_from_dict(data: Any, where: str = "config") -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    data = dict(data)
    train_raw = data.pop("train", None)
    algo = data.get("algorithm")
    if algo is None:
        raise ConfigError(f"{where}: missing required key 'algorithm'")
    algo_cls = algorithm_config_class(str(algo))
    cfg = from_mapping(ExperimentConfig, data, where)
    train: Any = from_mapping(algo_cls, train_raw, f"{where}: train")
    if cfg.supervised and cfg.dataset is None:
        raise ConfigError(f"{where}: algorithm {algo!r} needs a 'dataset' section")
    if not cfg.supervised and cfg.env is None:
        raise ConfigError(f"{where}: algorithm {algo!r} needs an 'env'")
    if cfg.env is not None and cfg.dataset is not None:
        raise ConfigError(f"{where}: give either 'env' or 'dataset', not both")
    if isinstance(cfg.env, dict) and not isinstance(cfg.env.get("id"), str):
        raise ConfigError(
            f"{where}: env: an inline env spec needs 'id' (a gymnasium id); "
            "its other keys are those of an env spec file (see rlsub configs)"
        )
    return dataclasses.replace(cfg, train=train)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Load and validate a config file, or a bundled config by name (`cartpole_es`)."""
    path = config_path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = read_yaml(path)
    cfg = experiment_from_dict(data, str(path))
    return dataclasses.replace(cfg, source=str(path))


def with_overrides(cfg: ExperimentConfig, **sections: dict[str, Any]) -> ExperimentConfig:
    """A copy of cfg with some keys of some sections replaced (validated again)."""
    data = cfg.to_dict()
    for section, values in sections.items():
        if isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    new = experiment_from_dict(data, cfg.source)
    return dataclasses.replace(new, source=cfg.source)
