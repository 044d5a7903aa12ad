"""A supervised trial's state at the end of an epoch, kept in its checkpoint
(rlsub.core.checkpoint): the trainable parameters (z, or every weight when trained
directly), Adam's moments and step counts, the data-order generator and the record so
far. `rlsub.algos.supervised.fit` saves it after epochs and resumes from it; the rest
of the trial then runs exactly as it would have (tests/test_checkpoint.py).

Imports: core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from rlsub.core.checkpoint import Checkpoint


@dataclass
class EpochState:
    """Where a supervised trial stands after `epoch` epochs (0: before the first)."""

    epoch: int = 0
    samples: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    acc: float = math.nan
    err: float = math.nan
    best: float = math.nan
    loss_mean: float = math.nan


def save_epoch(
    checkpoint: Checkpoint,
    state: EpochState,
    module: torch.nn.Module,
    opt: torch.optim.Optimizer,
    order: torch.Generator,
) -> None:
    tensors = {f"param.{k}": v.detach().cpu() for k, v in module.named_parameters()}
    opt_state = opt.state_dict()["state"]
    for i, entry in opt_state.items():
        for k, v in entry.items():
            tensors[f"opt.{i}.{k}"] = v.detach().cpu() if torch.is_tensor(v) else torch.tensor(v)
    tensors["order"] = order.get_state()
    meta = {
        "epoch": state.epoch,
        "samples": state.samples,
        "curve": state.curve,
        "scores": [state.acc, state.err, state.best, state.loss_mean],
        "opt_entries": {str(i): sorted(e) for i, e in opt_state.items()},
    }
    checkpoint.save(meta, tensors)


def restore_epoch(
    loaded: tuple[dict[str, Any], dict[str, torch.Tensor]],
    module: torch.nn.Module,
    opt: torch.optim.Optimizer,
    order: torch.Generator,
) -> EpochState:
    """Put the checkpoint's parameters, Adam state and data order into place."""
    meta, tensors = loaded
    with torch.no_grad():
        for k, p in module.named_parameters():
            saved = tensors[f"param.{k}"]
            if saved.shape != p.shape:
                raise ValueError(f"checkpoint holds {k} of shape {tuple(saved.shape)}")
            p.copy_(saved.to(p.device))
    sd = opt.state_dict()
    device = next(module.parameters()).device
    sd["state"] = {
        int(i): {k: tensors[f"opt.{i}.{k}"].to(device) for k in keys}
        for i, keys in meta["opt_entries"].items()
    }
    for entry in sd["state"].values():  # Adam keeps its step count on the CPU
        if "step" in entry:
            entry["step"] = entry["step"].cpu()
    opt.load_state_dict(sd)
    order.set_state(tensors["order"])
    acc, err, best, loss_mean = (float(x) for x in meta["scores"])
    return EpochState(
        int(meta["epoch"]), int(meta["samples"]), list(meta["curve"]), acc, err, best, loss_mean
    )
