"""Several supervised trials of one config as one batched job: `train_batch(cfg, jobs)`.

Each trial (d, seed) keeps what `rlsub.algos.supervised.fit` gives it alone:
theta0, P and its data order from its own seed streams, its own z (and Adam
moments), curve and record. Every step the T trials' minibatches, each drawn in
its own trial's order (x: (T, B, ...)), go through ONE batched forward and
backward: the network's population forward (`rlsub.core.population`: batched
matmuls for MLPs, grouped convolutions for ConvNets, else vmap), with each
trial's theta = theta0 + P z from its own projection. The trials' losses are
summed (their parameters are disjoint, so each z gets exactly its own
gradient) and one Adam steps them all (Adam works element by element: the same
as one Adam per trial). Evaluations run batched too.

What differs from the solo runs: float rounding only. The batched matmuls sum
in another order than the solo forward, so trajectories drift apart in the last
bits (tests/test_supervised_batch.py measures how far). On a GPU this turns T
small kernels per layer into one; on a CPU it saves little (docs/BENCHMARKS.md).
A trial whose training loss turns non-finite ends as diverged, as alone; the
others go on.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rlsub.algos.base import TrainResult
from rlsub.algos.supervised import (
    SupervisedConfig,
    TrialSetup,
    adam,
    diverged_result,
    setup,
    trial_result,
    weights_sq,
)
from rlsub.algos.supervised_networks import network_inputs
from rlsub.core.config import ExperimentConfig
from rlsub.core.population import PopulationPolicy
from rlsub.data.datasets import Dataset, load_dataset


def batchable(cfg: ExperimentConfig) -> str | None:
    """None: any supervised config's trials can share a job (same data, network, budget)."""
    return None if cfg.dataset is not None else "no dataset section"


def _forward(trials: list[TrialSetup], x: Tensor) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Logits (T, B, C) of every trial's network on its own inputs x (T, B, ...), and each
    trial's subspace tensors (for the l2 term)."""
    splits = [ts.sub.split(ts.sub.theta()) for ts in trials]
    fulls = [
        ts.sub.complete_params({k: v[None] for k, v in p.items()})
        for ts, p in zip(trials, splits, strict=True)
    ]
    stacked = {name: torch.cat([f[name] for f in fulls]) for name in fulls[0]}
    return PopulationPolicy(trials[0].sub.module, stacked)(x), splits


def _evaluate(cfg: ExperimentConfig, trials: list[TrialSetup], batch_size: int) -> list[float]:
    """Accuracy of every trial on the (shared) evaluation split, in one batched pass."""
    x, y = trials[0].x_eval, trials[0].y_eval
    correct = torch.zeros(len(trials), dtype=torch.long, device=x.device)
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb = network_inputs(cfg, x[i : i + batch_size])
            logits, _ = _forward(trials, xb[None].expand(len(trials), *xb.shape))
            correct += (logits.argmax(-1) == y[i : i + batch_size]).sum(1)
    return [int(c) / len(y) for c in correct.cpu()]


def train_batch(
    cfg: ExperimentConfig, jobs: list[tuple[Any, int]], progress: bool = True
) -> list[TrainResult | BaseException]:
    """Supervised trials (d, seed) of cfg in one batched job; per job its TrainResult."""
    tc: SupervisedConfig = cfg.train if cfg.train is not None else SupervisedConfig()
    assert cfg.dataset is not None
    data = load_dataset(
        cfg.dataset.name, cfg.dataset.variant, cfg.dataset.data_dir, progress=progress
    )
    if tc.threads is None:
        return fit_batch(cfg, tc, jobs, data, progress)
    before = torch.get_num_threads()  # restored after the batch, as `supervised.train` does
    torch.set_num_threads(tc.threads)
    try:
        return fit_batch(cfg, tc, jobs, data, progress)
    finally:
        torch.set_num_threads(before)


def fit_batch(
    cfg: ExperimentConfig,
    tc: SupervisedConfig,
    jobs: list[tuple[Any, int]],
    data: Dataset,
    progress: bool = False,
) -> list[TrainResult | BaseException]:
    """`train_batch` on `data` already in memory."""
    trials = [setup(cfg, tc, d, seed, data) for d, seed in jobs]
    device = trials[0].device
    orders = [torch.Generator().manual_seed(ts.seeds["data"]) for ts in trials]
    opt = adam([p for ts in trials for p in ts.sub.parameters()], tc)
    loss_fn = nn.CrossEntropyLoss()
    n, bs = data.n_train, tc.batch_size
    T = len(trials)
    results: list[TrainResult | BaseException | None] = [None] * T
    curves: list[list[dict[str, float]]] = [[] for _ in range(T)]
    best = [math.nan] * T
    live = list(range(T))
    samples = 0
    bar = tqdm(
        total=tc.epochs * -(-n // bs),
        desc=f"{cfg.name} batch of {T}",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with bar:
        for epoch in range(tc.epochs):
            perms = [torch.randperm(n, generator=g).to(device) for g in orders]  # every order drawn
            loss_sum = torch.zeros(T, device=device)
            for i in range(0, n, bs):
                xb = torch.stack(
                    [network_inputs(cfg, trials[t].x_train[perms[t][i : i + bs]]) for t in live]
                )
                yb = torch.stack([trials[t].y_train[perms[t][i : i + bs]] for t in live])
                opt.zero_grad(set_to_none=True)
                logits, splits = _forward([trials[t] for t in live], xb)
                losses = torch.stack([loss_fn(logits[j], yb[j]) for j in range(len(live))])
                if tc.l2 > 0:
                    losses = losses + tc.l2 * torch.stack(
                        [weights_sq(trials[t].sub, p) for t, p in zip(live, splits, strict=True)]
                    )
                losses.sum().backward()
                opt.step()
                loss_sum[live] += losses.detach() * yb.shape[1]
                samples += yb.shape[1]
                bar.update(1)
            means = (loss_sum / n).tolist()
            for t in [t for t in live if not math.isfinite(means[t])]:
                why = f"training loss {means[t]} at epoch {epoch}"
                results[t] = diverged_result(trials[t].sub.to("cpu"), samples, curves[t], why)
            live = [t for t in live if math.isfinite(means[t])]
            if not live:
                break
            for t, acc in zip(
                live, _evaluate(cfg, [trials[t] for t in live], tc.eval_batch_size), strict=True
            ):
                best[t] = acc if math.isnan(best[t]) else max(best[t], acc)
                curves[t].append({"step": float(samples), "value": acc})
            bar.set_postfix(trials=len(live))
    for t in live:
        acc = curves[t][-1]["value"]
        err = math.sqrt(acc * (1 - acc) / len(trials[t].y_eval))
        results[t] = trial_result(trials[t], tc, (acc, err, best[t]), samples, curves[t], means[t])
    return [r if r is not None else RuntimeError("no result") for r in results]
