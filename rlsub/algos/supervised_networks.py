"""Supervised networks and their data: which inputs a network takes (flat for `mlp`, the
images as they are for the others), its sizes filled from the dataset, a network that
does not fit the dataset refused in one line, and D of the trial's subspace found
without training (`dimension`, rlsub.algos.base).

Imports: data, core.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlsub.core.config import ExperimentConfig
from rlsub.core.errors import RlsubError
from rlsub.core.subspace import Subspace
from rlsub.data.datasets import Dataset, load_dataset, shape_only

FLAT_NETWORKS = ("mlp",)  # networks that take flat (N, C*H*W) inputs


def network_kwargs(cfg: ExperimentConfig, data: Dataset) -> dict[str, Any]:
    """The network's builder kwargs, with in_dim / out_dim filled from the data for `mlp`."""
    kwargs = dict(cfg.network.kwargs)
    if cfg.network.name in FLAT_NETWORKS:
        kwargs = {"in_dim": data.input_dim, "out_dim": data.n_classes, **kwargs}
    return kwargs


def network_inputs(cfg: ExperimentConfig, x: Tensor) -> Tensor:
    """x: (B, C, H, W) -> what the network takes: (B, C*H*W) for flat networks, else as is."""
    return x.flatten(1) if cfg.network.name in FLAT_NETWORKS else x


def check_fit(cfg: ExperimentConfig, sub: Subspace, data: Dataset) -> None:
    """Refuse, in one line, a network whose input or output does not fit the dataset."""
    what = f"network {cfg.network.name!r} does not fit dataset {data.name!r}"
    sub.eval()  # no BatchNorm statistics from this probe
    try:
        with torch.no_grad():
            out = sub(network_inputs(cfg, data.x_train[:2]))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RlsubError(f"{what} (inputs {tuple(data.input_shape)}): {first}") from None
    finally:
        sub.train()
    if out.shape != (min(2, data.n_train), data.n_classes):
        raise RlsubError(
            f"{what}: it outputs {tuple(out.shape[1:])} per example, "
            f"the dataset has {data.n_classes} classes"
        )


def check_config(cfg: ExperimentConfig) -> None:
    if cfg.dataset is None:
        raise RlsubError(f"{cfg.source}: algorithm {cfg.algorithm!r} needs a 'dataset' section")


def dimension(cfg: ExperimentConfig, data: bool = True, progress: bool = False) -> int:
    """D of the trial's subspace, its network checked against the dataset (`check_fit`);
    `data=False`: sized from the dataset's known input shape, no file read or downloaded."""
    check_config(cfg)
    assert cfg.dataset is not None
    ds = cfg.dataset
    found = (
        load_dataset(ds.name, ds.variant, ds.data_dir, progress=progress)
        if data
        else shape_only(ds.name, ds.variant)
    )
    sub = Subspace.from_spec(
        cfg.network.name,
        network_kwargs(cfg, found),
        0,
        "direct",
        include=cfg.subspace.include,
        rest=cfg.subspace.rest,
    )
    check_fit(cfg, sub, found)
    return sub.D
