"""Experiment configs: YAML loaded once into frozen, typed objects.

Every field documents itself (``field(metadata={"doc": ...})``); a bad key or
value raises `ConfigError` naming the file, the key and what is allowed. The
algorithm section (`train:`) is validated by the trainer's own dataclass
(`ALGORITHMS` maps an algorithm name to it), so a trainer owns its
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
import importlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from rlsub.errors import ConfigError

T = TypeVar("T")

# algorithm name -> "module:ConfigClass" of its hyperparameters (imported lazily)
ALGORITHMS: dict[str, str] = {
    "es": "rlsub.es:ESConfig",
    "cmaes": "rlsub.es:CMAESConfig",
    "ppo": "rlsub.pg:PGConfig",
    "a2c": "rlsub.pg:PGConfig",
    "dqn": "rlsub.pg:PGConfig",
    "adam": "rlsub.supervised:SupervisedConfig",
}
SUPERVISED_ALGORITHMS = ("adam",)


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation."""
    return field(metadata={"doc": text}, **kwargs)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{where}: {value!r} is not allowed; allowed: {', '.join(map(str, args))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)  # type: ignore[arg-type]
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {_type_name(tp)}")


def from_mapping(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, one clear error per bad key or value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass (possibly nested) -> plain JSON-able data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check(cond: bool, message: str) -> None:
    """Validation helper for __post_init__: raise ConfigError(message) unless cond."""
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class NetworkConfig:
    name: str = doc("network builder name (rlsub.networks.BUILDERS)")
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

    def __post_init__(self) -> None:
        check(
            len(self.d_grid) > 0 and all(d > 0 for d in self.d_grid),
            f"sweep.d_grid must hold positive integers, got {self.d_grid}",
        )
        check(len(self.seeds) > 0, "sweep.seeds must not be empty")
        check(0 < self.threshold <= 1, f"sweep.threshold must be in (0, 1], got {self.threshold}")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = doc("experiment name (store and file names)")
    algorithm: str = doc(f"training algorithm: {', '.join(ALGORITHMS)}")
    network: NetworkConfig = doc("network to reparameterise")
    env: str | None = doc("RL env spec: a name in envs/ or a path to a YAML spec", default=None)
    env_variant: str | None = doc("a variant of the env spec (e.g. v0 for CartPole)", default=None)
    dataset: DatasetConfig | None = doc("supervised dataset", default=None)
    subspace: SubspaceConfig = doc("projection settings", default_factory=SubspaceConfig)
    train: Any = doc(
        "the algorithm's hyperparameters (validated by its config class)", default=None
    )
    sweep: SweepConfig = doc("d grid and seeds", default_factory=SweepConfig)
    source: str = doc("where the config was read from (set by the loader)", default="<dict>")

    @property
    def supervised(self) -> bool:
        return self.algorithm in SUPERVISED_ALGORITHMS

    @property
    def task(self) -> str:
        """Short task name: the env spec or dataset (with its variant)."""
        if self.dataset is not None:
            v = "" if self.dataset.variant == "standard" else f"-{self.dataset.variant}"
            return f"{self.dataset.name}{v}"
        return f"{self.env}" + (f"-{self.env_variant}" if self.env_variant else "")

    def to_dict(self) -> dict[str, Any]:
        out = to_dict(self)
        out.pop("source")
        return out

    @property
    def hash(self) -> str:
        """Identity of a trial's settings: everything except the sweep plan and the source."""
        data = self.to_dict()
        data.pop("sweep")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def algorithm_config_class(name: str) -> type:
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    module, cls = ALGORITHMS[name].split(":")
    return getattr(importlib.import_module(module), cls)


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
    return dataclasses.replace(cfg, train=train)


def read_yaml(path: Path) -> Any:
    """The parsed YAML file at `path` (which exists); one-line ConfigError if it does not parse."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Load and validate configs/NAME.yaml."""
    path = Path(path)
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
