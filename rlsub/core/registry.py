"""One registry per kind of plug-in: networks, trainers, datasets, env specs.

Each maps a short name to an import path `"package.module:attribute"` (resolved on
first use, so registering costs nothing) or to an object. Wherever rlsub takes a
name of a plug-in (a config's `network.name`, `algorithm`, `dataset.name`, `env`),
it also takes an import path, so a user's network or trainer plugs in without
editing rlsub:

    network: {name: "mypkg.nets:make", kwargs: {width: 64}}
    algorithm: "mypkg.trainers:MY_TRAINER"

Worker processes resolve the same strings by name (they receive configs, never
the registries' contents), so a user's module must be importable there too.

An import path named by a file being read (a policy file, a store) is refused unless
trusted (`rlsub.core.trust`).

Imports: nothing of rlsub but `core.errors` and `core.trust`.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from rlsub.core.errors import RlsubError
from rlsub.core.trust import check_import


def import_path(path: str, kind: str = "object") -> Any:
    """The object at `"package.module:attribute"` (attribute may be dotted)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RlsubError(f"{kind} {path!r}: an import path reads 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RlsubError(f"{kind} {path!r}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RlsubError(f"{kind} {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


class Registry:
    """Names of one kind of plug-in -> import paths (or objects)."""

    def __init__(self, kind: str, entries: dict[str, Any]) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries)

    def register(self, name: str, target: Any) -> None:
        """Add (or replace) `name`: an import path string or the object itself."""
        self._entries[name] = target

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> Any | None:
        """What `name` is registered as (an import path string or the object itself),
        unresolved; None if it is not registered."""
        return self._entries.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or ":" in name)

    def resolve(self, name: str) -> Any:
        """The plug-in called `name`, or at import path `name` ("pkg.module:attr")."""
        if name in self._entries:
            target = self._entries[name]
            return import_path(target, self.kind) if isinstance(target, str) else target
        if ":" in name:
            check_import(name, self.kind)  # a file being read may not name code (core.trust)
            return import_path(name, self.kind)
        raise RlsubError(
            f"unknown {self.kind} {name!r}; allowed: {', '.join(self._entries)}, "
            "or an import path 'package.module:attribute'"
        )


NETWORKS = Registry(
    "network",
    {
        "mlp": "rlsub.nets.catalog:mlp",
        "fc_mnist": "rlsub.nets.catalog:fc_mnist",
        "fc_cifar": "rlsub.nets.catalog:fc_cifar",
        "lenet_mnist": "rlsub.nets.catalog:lenet_mnist",
        "lenet_cifar": "rlsub.nets.catalog:lenet_cifar",
        "es_pong": "rlsub.nets.convnet:es_pong",
        "nature_cnn": "rlsub.nets.convnet:nature_cnn",
    },
)

TRAINERS = Registry(
    "algorithm",
    {
        "es": "rlsub.algos.es:ES",
        "cmaes": "rlsub.algos.cmaes:CMAES",
        "ppo": "rlsub.algos.pg:PPO_TRAINER",
        "a2c": "rlsub.algos.pg:A2C_TRAINER",
        "dqn": "rlsub.algos.pg:DQN_TRAINER",
        "dqn_paper": "rlsub.algos.dqn_paper:PAPER_DQN",
        "adam": "rlsub.algos.supervised:ADAM",
    },
)

DATASETS = Registry(
    "dataset",
    {
        "digits": "rlsub.data.datasets:load_digits",
        "mnist": "rlsub.data.datasets:load_mnist",
        "cifar10": "rlsub.data.datasets:load_cifar10",
    },
)

# env spec name -> YAML file name in the bundled envs/ folder, or an import path to an
# EnvSpec (or to a function returning one)
ENV_SPECS = Registry(
    "env spec",
    {
        "cartpole": "cartpole.yaml",
        "inverted_pendulum": "inverted_pendulum.yaml",
        "pong": "pong.yaml",
    },
)


def build_network(name: str, kwargs: dict[str, Any] | None = None, seed: int = 0) -> nn.Module:
    """Network `name` (or import path) with its ordinary init drawn from `seed` (global RNG untouched)."""
    builder = NETWORKS.resolve(name)
    kwargs = dict(kwargs or {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            net = builder(**kwargs)
        except (TypeError, ValueError) as exc:
            raise RlsubError(f"network {name!r}: bad arguments {kwargs}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise RlsubError(
            f"network {name!r}: the builder returned {type(net).__name__}, not a torch.nn.Module"
        )
    return net


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
