"""Supervised training in a random subspace: Adam on z, test accuracy per epoch.

The original's supervised runs (Li et al. 2018, section 3): the network's own
init is theta0, only z (d,) trains, with Adam (lr 1e-3, beta2 0.99) on
minibatches of 128, and the score is the final epoch's test accuracy.
`d = "direct"` trains all D parameters (P = I): the baseline that d_int90 is
measured against.

One trial, top to bottom (`train`):

1. seeds: `rlsub.core.seeding.trial_seeds(seed)`; theta0, projection and data
   order each draw from their own stream (`subspace.projection_seed` pins the
   projection's);
2. data: `rlsub.data.datasets.load_dataset` (all tensors in memory; see that module
   for local files via ``dataset.data_dir`` or ``$RLSUB_DATA_DIR``);
3. network: `Subspace.from_spec`. For ``mlp`` the inputs are flattened and
   ``in_dim`` / ``out_dim`` default to the dataset's C*H*W and class count;
   the other networks (fc_mnist, lenet_mnist, fc_cifar, lenet_cifar) take the
   images as they are, and a network that does not fit the data is refused
   with one clear error;
4. every epoch: a fresh `torch.randperm` order from a dedicated `torch.Generator` (no
   DataLoader: indexing in-memory tensors costs far less than a step), one Adam step
   per minibatch (the last may be smaller; `train.l2` adds the paper's kernel L2 to the
   loss), then an evaluation pass;
5. result: final-epoch accuracy (`final_eval_mean`), its binomial standard error
   sqrt(p (1 - p) / n) over the n evaluated examples (`final_eval_std`), the best
   epoch's accuracy, and the curve [{"step": samples seen, "value": accuracy}] per epoch.

The evaluation split is the test set, except for the ``shuffled_labels``
variant, where the original measured memorisation: there it is the training
set (with its shuffled labels); `eval_split` in the config can force either.
A loss that turns NaN or infinite ends the trial as diverged (a NaN score).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rlsub.algos.base import Budget, Trainer, TrainResult, lazy
from rlsub.algos.epoch_checkpoint import EpochState, restore_epoch, save_epoch
from rlsub.algos.supervised_networks import (
    check_config,
    check_fit,
    dimension,
    network_inputs,
    network_kwargs,
)
from rlsub.core.checkpoint import Checkpoint
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import ALLOWED as DEVICES
from rlsub.core.device import resolve as resolve_device
from rlsub.core.device import valid as device_valid
from rlsub.core.schema import check, doc
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.data.datasets import Dataset, load_dataset


@dataclass(frozen=True)
class SupervisedConfig:
    """Hyperparameters of supervised training (the ``train:`` section for ``adam``)."""

    epochs: int = doc("passes over the training set", default=10)
    batch_size: int = doc("minibatch size (the original: 128)", default=128)
    lr: float = doc("Adam learning rate (the original: 1e-3)", default=1e-3)
    beta1: float = doc("Adam beta1", default=0.9)
    beta2: float = doc("Adam beta2 (the original: 0.99)", default=0.99)
    eps: float = doc("Adam epsilon", default=1e-8)
    weight_decay: float = doc(
        "Adam's own weight decay, on the trained vector (z, or theta when direct)", default=0.0
    )
    l2: float = doc(
        "loss + l2 * sum of squared weights (tensors named *weight, not biases): the "
        "original's Keras kernel regulariser, 1e-4 in its LeNet and CIFAR runs",
        default=0.0,
    )
    eval_batch_size: int = doc("batch size of the evaluation pass (memory only)", default=1000)
    eval_split: Literal["auto", "test", "train"] = doc(
        "split scored each epoch; auto: train for shuffled_labels, else test", default="auto"
    )
    threads: int | None = doc(
        "torch intra-op threads during the trial (null: leave torch's setting); 1 suits "
        "tiny networks, whose parallel regions cost more than they save on a busy machine",
        default=None,
    )
    device: str = doc(
        "where the network, theta0, P, z and the data live (rlsub.core.device): auto, "
        "cpu, cuda, cuda:N. auto: CUDA where a GPU is present. The data go over once; "
        "the data order is drawn on the CPU, so it is the same on every device",
        default="auto",
    )

    def __post_init__(self) -> None:
        check(device_valid(self.device), f"device must be one of {DEVICES}, got {self.device!r}")
        check(self.epochs >= 1, f"train.epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        check(0 <= self.beta1 < 1, f"train.beta1 must be in [0, 1), got {self.beta1}")
        check(0 <= self.beta2 < 1, f"train.beta2 must be in [0, 1), got {self.beta2}")
        check(self.eps > 0, f"train.eps must be > 0, got {self.eps}")
        check(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        check(self.l2 >= 0, f"train.l2 must be >= 0, got {self.l2}")
        check(
            self.eval_batch_size >= 1,
            f"train.eval_batch_size must be >= 1, got {self.eval_batch_size}",
        )
        check(
            self.threads is None or self.threads >= 1,
            f"train.threads must be >= 1 or null, got {self.threads}",
        )


def weights_sq(sub: Subspace, params: dict[str, Tensor]) -> Tensor:
    """Sum of squared weight entries (names ending in 'weight'), subspace and direct ones."""
    tensors = [t for n, t in params.items() if n.endswith("weight")]
    tensors += [t for n, t in sub.module.named_parameters() if n.endswith("weight")]
    return sum((t.square().sum() for t in tensors), torch.zeros((), device=sub.theta0.device))


def evaluate(
    sub: Subspace, cfg: ExperimentConfig, x: Tensor, y: Tensor, batch_size: int
) -> tuple[float, float]:
    """Accuracy on (x: (N, C, H, W), y: (N,)) and its binomial standard error.

    theta = theta0 + P z is computed once for the whole pass.
    """
    sub.eval()
    correct = 0
    with torch.no_grad():
        params = sub.split(sub.theta())
        for i in range(0, len(y), batch_size):
            logits = sub.call(params, network_inputs(cfg, x[i : i + batch_size]))
            correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    sub.train()
    acc = correct / len(y)
    return acc, math.sqrt(acc * (1 - acc) / len(y))


def diverged_result(
    sub: Subspace, samples: int, curve: list[dict[str, float]], why: str
) -> TrainResult:
    nan = float("nan")
    return TrainResult(
        final_eval_mean=nan,
        final_eval_std=nan,
        best_eval_mean=nan,
        D=sub.D,
        d=sub.d,
        env_steps=samples,
        curve=curve,
        subspace=sub,
        info={"diverged": why},
    )


def train(
    cfg: ExperimentConfig,
    d: int | str,
    seed: int,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train `cfg`'s network on its dataset in a d-dimensional subspace (or directly);
    resumed from `checkpoint`'s last epoch where it holds one."""
    tc: SupervisedConfig = cfg.train if cfg.train is not None else SupervisedConfig()
    if tc.threads is None:
        return _train(cfg, tc, d, seed, progress, checkpoint)
    before = torch.get_num_threads()
    torch.set_num_threads(tc.threads)
    try:
        return _train(cfg, tc, d, seed, progress, checkpoint)
    finally:
        torch.set_num_threads(before)


def _train(
    cfg: ExperimentConfig,
    tc: SupervisedConfig,
    d: int | str,
    seed: int,
    progress: bool,
    checkpoint: Checkpoint | None,
) -> TrainResult:
    check_config(cfg)
    assert cfg.dataset is not None
    data = load_dataset(
        cfg.dataset.name, cfg.dataset.variant, cfg.dataset.data_dir, progress=progress
    )
    return fit(cfg, tc, d, seed, data, progress, checkpoint)


@dataclass
class TrialSetup:
    """What one trial needs before its first step (`setup`)."""

    sub: Subspace
    seeds: dict[str, int]
    device: torch.device
    split: str
    x_train: Tensor
    y_train: Tensor
    x_eval: Tensor
    y_eval: Tensor


def setup(
    cfg: ExperimentConfig, tc: SupervisedConfig, d: int | str, seed: int, data: Dataset
) -> TrialSetup:
    """Seeds, the Subspace on the trial's device, and the data there (moved over once)."""
    overrides = {}
    if cfg.subspace.projection_seed is not None:
        overrides["projection"] = cfg.subspace.projection_seed
    seeds = trial_seeds(seed, overrides)
    sub = Subspace.from_spec(
        cfg.network.name,
        network_kwargs(cfg, data),
        seeds["theta0"],
        d,
        cfg.subspace.projection,
        seeds["projection"],
        include=cfg.subspace.include,
        rest=cfg.subspace.rest,
        dense_limit_gib=cfg.subspace.dense_limit_gib,
    )
    check_fit(cfg, sub, data)
    device = resolve_device(tc.device, f"{cfg.source}: train.device")
    sub.to(device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    split = tc.eval_split
    if split == "auto":
        split = "train" if data.variant == "shuffled_labels" else "test"
    if split == "test":
        x_eval, y_eval = data.x_test.to(device), data.y_test.to(device)
    else:
        x_eval, y_eval = x_train, y_train
    return TrialSetup(sub, seeds, device, split, x_train, y_train, x_eval, y_eval)


def adam(params: Any, tc: SupervisedConfig) -> torch.optim.Adam:
    return torch.optim.Adam(
        params, lr=tc.lr, betas=(tc.beta1, tc.beta2), eps=tc.eps, weight_decay=tc.weight_decay
    )


def train_epoch(
    cfg: ExperimentConfig,
    tc: SupervisedConfig,
    ts: TrialSetup,
    opt: torch.optim.Optimizer,
    perm: Tensor,
    bar: Any = None,
) -> Tensor:
    """One pass over the training set in the order `perm`, one Adam step per minibatch (the
    last may be smaller); returns the sum over minibatches of loss * size (0-d, on the
    trial's device). `rlsub bench supervised` times exactly this."""
    sub = ts.sub
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), device=ts.device)
    for i in range(0, len(perm), tc.batch_size):
        idx = perm[i : i + tc.batch_size]
        xb, yb = network_inputs(cfg, ts.x_train[idx]), ts.y_train[idx]
        opt.zero_grad(set_to_none=True)
        params = sub.params()  # theta = theta0 + P z, once per step
        loss = loss_fn(sub.call(params, xb), yb)
        if tc.l2 > 0:
            loss = loss + tc.l2 * weights_sq(sub, params)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        if bar is not None:
            bar.update(1)
    return loss_sum


def fit(
    cfg: ExperimentConfig,
    tc: SupervisedConfig,
    d: int | str,
    seed: int,
    data: Dataset,
    progress: bool = False,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Steps 3-5 of a trial (module docstring) on `data` already in memory; with a
    `checkpoint`, resumed from its last epoch and checkpointed after epochs."""
    ts = setup(cfg, tc, d, seed, data)
    sub, device = ts.sub, ts.device
    opt = adam(sub.parameters(), tc)
    order = torch.Generator().manual_seed(ts.seeds["data"])
    n, bs = data.n_train, tc.batch_size
    state = EpochState()
    loaded = checkpoint.load() if checkpoint is not None else None
    if loaded is not None:
        state = restore_epoch(loaded, sub, opt, order)
    samples, curve, loss_mean = state.samples, state.curve, state.loss_mean
    acc, err, best = state.acc, state.err, state.best
    steps = -(-n // bs)
    bar = tqdm(
        total=tc.epochs * steps,
        initial=state.epoch * steps,
        desc=f"{cfg.name} d={d} seed={seed}",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with bar:
        for epoch in range(state.epoch, tc.epochs):
            perm = torch.randperm(n, generator=order).to(device)  # drawn on the CPU
            loss_mean = float(train_epoch(cfg, tc, ts, opt, perm, bar)) / n
            samples += n
            if not math.isfinite(loss_mean):
                return diverged_result(
                    sub.to("cpu"), samples, curve, f"training loss {loss_mean} at epoch {epoch}"
                )
            acc, err = evaluate(sub, cfg, ts.x_eval, ts.y_eval, tc.eval_batch_size)
            best = acc if math.isnan(best) else max(best, acc)
            curve.append({"step": float(samples), "value": acc})
            bar.set_postfix(loss=f"{loss_mean:.3f}", acc=f"{acc:.3f}")
            if checkpoint is not None and epoch + 1 < tc.epochs and checkpoint.due():
                done = EpochState(epoch + 1, samples, curve, acc, err, best, loss_mean)
                save_epoch(checkpoint, done, sub, opt, order)
    res = trial_result(ts, tc, (acc, err, best), samples, curve, loss_mean)
    if state.epoch:  # its wall time counts from there
        res.info["resumed_at_epoch"] = state.epoch
    return res


def trial_result(
    ts: TrialSetup,
    tc: SupervisedConfig,
    scores: tuple[float, float, float],
    samples: int,
    curve: list[dict[str, float]],
    loss_mean: float,
) -> TrainResult:
    """The TrainResult of a finished trial; scores = (final accuracy, its error, best)."""
    sub = ts.sub.to("cpu")  # the policy file and the caller get CPU tensors
    return TrainResult(
        final_eval_mean=scores[0],
        final_eval_std=scores[1],
        best_eval_mean=scores[2],
        D=sub.D,
        d=sub.d,
        env_steps=samples,
        curve=curve,
        solved_score=None,
        subspace=sub,
        info={
            "eval_split": ts.split,
            "eval_std": "binomial standard error sqrt(p(1-p)/n)",
            "n_eval": len(ts.y_eval),
            "n_train": len(ts.y_train),
            "epochs": tc.epochs,
            "threads": torch.get_num_threads(),
            "device": str(ts.device),
            "final_train_loss": loss_mean,
            "seeds": {k: ts.seeds[k] for k in ("theta0", "projection", "data")},
        },
    )


# ------------------------------------------------- what the layers above ask (algos.base)
def budget(cfg: ExperimentConfig) -> Budget:
    return Budget("epoch", float(cfg.train.epochs))


def spent(row: Mapping[str, Any]) -> float | None:
    """Epochs a finished trial trained (its record's info, else its config)."""
    train = (row.get("config") or {}).get("train") or {}
    epochs = (row.get("info") or {}).get("epochs", train.get("epochs"))
    return float(epochs) if epochs else None


def describe(train: Mapping[str, Any]) -> list[str]:  # penalties tell rows apart
    return [f"{k} {train[k]:g}" for k in ("l2", "weight_decay") if train.get(k)]


ADAM = Trainer(
    SupervisedConfig,
    train,
    describe=describe,
    supervised=True,
    family="supervised",
    check=check_config,
    dimension=dimension,
    budget=budget,
    spent=spent,
    batchable=lazy("rlsub.algos.supervised_batch:batchable"),
    train_batch=lazy("rlsub.algos.supervised_batch:train_batch"),
    checkpoints=True,
)
