"""`rlsub bench supervised`: the cost of a supervised epoch in a subspace, in CPU-seconds.

One epoch of the MNIST FC net (784-200-200-10, D = 199,210) at batch 128 on one
torch thread, timed in CPU-seconds of this process (`time.process_time`, so a
loaded machine moves the ratios little):

- a plain torch loop: the network's own parameters, Adam over all D of them,
  `zero_grad`, forward, loss, backward, step (`plain_epoch`);
- rlsub's trainer at d (1,000 by default) for the sparse, Fastfood and dense
  projections: `rlsub.algos.supervised.train_epoch`, the trainer's own epoch
  loop, on the trial's own setup.

Both draw the same minibatches (one `torch.randperm` order) from MNIST when its
files are under $RLSUB_DATA_DIR (nothing is downloaded), else from random data
of MNIST's shapes, and the output says which. The setup (building P, moving the
data) and the evaluation pass are not timed: a subspace step against a plain
step is the figure. Each round runs every loop once, one after another, and a
kind's ratio is the median over rounds of its epoch / the plain epoch of the
same round (dense, at about 30 CPU-seconds an epoch, runs in the first round
only). Target: <= 1.2 for sparse and Fastfood. A warm-up of a few steps each
comes first (numba compiles or loads its kernels there).

Also: 3 seeds of MNIST FC at d trained for one epoch as one batched job
(rlsub.algos.supervised_batch) against the 3 one after another, in CPU-seconds
(target: <= 0.6).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

KINDS = ["sparse", "fastfood", "dense"]
TARGET = 1.2


def mnist_shaped(n_train: int, n_test: int, seed: int = 0) -> Any:
    """A Dataset of MNIST's shapes with random pixels and labels (for timing only)."""
    from rlsub.data.datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    return Dataset(
        "mnist", "standard",
        torch.randn(n_train, 1, 28, 28, generator=g), torch.randint(0, 10, (n_train,), generator=g),
        torch.randn(n_test, 1, 28, 28, generator=g), torch.randint(0, 10, (n_test,), generator=g),
        (1, 28, 28), 10,
    )  # fmt: skip


def mnist_or_shapes(n_train: int | None = None) -> tuple[Any, str]:
    """MNIST from $RLSUB_DATA_DIR if its files are there, else random data of its shapes;
    (dataset, what it is). n_train: keep only the first n_train training examples."""
    from rlsub.core.errors import RlsubError
    from rlsub.data.datasets import Dataset, load_dataset

    root = os.environ.get("RLSUB_DATA_DIR")
    data, source = None, "random data of MNIST's shapes (RLSUB_DATA_DIR is not set)"
    if root:
        try:
            data, source = load_dataset("mnist", data_dir=root, progress=False), f"MNIST ({root})"
        except RlsubError as exc:
            source = f"random data of MNIST's shapes (no MNIST under RLSUB_DATA_DIR: {exc})"
    if data is None:
        data = mnist_shaped(60_000, 10_000)
    if n_train is not None:
        data = Dataset(data.name, data.variant, data.x_train[:n_train], data.y_train[:n_train],
                       data.x_test, data.y_test, data.input_shape, data.n_classes)  # fmt: skip
    return data, source


def plain_epoch(net: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, perm: Tensor,
                batch_size: int) -> Tensor:  # fmt: skip
    """The textbook loop over one epoch in the order perm; returns sum of loss * batch size."""
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = torch.zeros(())
    for i in range(0, len(perm), batch_size):
        idx = perm[i : i + batch_size]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
    return loss_sum


def epoch_costs(data: Any, d: int, kinds: list[str], rounds: int) -> dict[str, Any]:
    """CPU-seconds of one epoch: the plain loop and rlsub's trainer per kind (module docstring)."""
    from rlsub.algos.supervised import adam, setup, train_epoch
    from rlsub.core.config import load_experiment, with_overrides
    from rlsub.core.registry import build_network

    base = with_overrides(load_experiment("mnist_fc"), train={"epochs": 1, "device": "cpu"})
    tc = base.train
    assert tc is not None
    net = build_network("fc_mnist", seed=0)
    plain_opt = adam(net.parameters(), tc)

    def plain(p: Tensor) -> object:
        return plain_epoch(net, plain_opt, data.x_train, data.y_train, p, tc.batch_size)

    runs: dict[str, Callable[[Tensor], object]] = {"plain": plain}
    for kind in kinds:
        cfg = with_overrides(base, subspace={"projection": kind})
        ts = setup(cfg, tc, d, 0, data)
        opt = adam(ts.sub.parameters(), tc)
        runs[kind] = functools.partial(train_epoch, cfg, tc, ts, opt)
    perm = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(0))
    for run in runs.values():  # warm-up: numba compiles or loads its kernels
        run(perm[: 10 * tc.batch_size])
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name, run in runs.items():
            if name == "dense" and r > 0:
                continue
            t = time.process_time()
            run(perm)
            times[name].append(time.process_time() - t)
            print(f"  round {r + 1}: {name:8s} {times[name][-1]:6.2f} CPU-s", file=sys.stderr)
    rows = []
    for name, ts_ in times.items():
        ratios = [t / p for t, p in zip(ts_, times["plain"], strict=False)]
        rows.append({"kind": name, "epoch_cpu_s": statistics.median(ts_), "epoch_cpu_s_rounds": ts_,
                     "ratio": statistics.median(ratios), "ratio_rounds": ratios})  # fmt: skip
    steps = -(-data.n_train // tc.batch_size)
    return {"d": d, "n_train": data.n_train, "steps": steps, "batch_size": tc.batch_size,
            "rounds": rounds, "rows": rows}  # fmt: skip


def batched_ratio(device: str, d: int, data: Any, rounds: int) -> dict[str, Any]:
    """One epoch of mnist_fc for seeds 0-2 at d: batched job / one after another (median of
    alternating rounds, after a warm-up of each). On the CPU in CPU-seconds of this process;
    on a GPU in wall seconds (the GPU's work is not the process's CPU time)."""
    from rlsub.algos.supervised import fit
    from rlsub.algos.supervised_batch import fit_batch
    from rlsub.core.config import load_experiment, with_overrides

    cfg = with_overrides(load_experiment("mnist_fc"), train={"epochs": 1, "device": device})
    jobs = [(d, s) for s in (0, 1, 2)]
    gpu = torch.device(device).type == "cuda"
    clock = time.perf_counter if gpu else time.process_time

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    def solo() -> None:
        for _, seed in jobs:
            fit(cfg, cfg.train, d, seed, data)
        sync()

    def batched() -> None:
        fit_batch(cfg, cfg.train, jobs, data)
        sync()

    solo_s: list[float] = []
    batch_s: list[float] = []
    for r in range(rounds + 1):
        for f, out in ((solo, solo_s), (batched, batch_s)):
            t = clock()
            f()
            if r:  # the first round warms up
                out.append(clock() - t)
    ratios = sorted(b / a for a, b in zip(solo_s, batch_s, strict=True))
    return {"d": d, "n_train": data.n_train, "seeds": 3, "one_by_one_s": solo_s,
            "batched_s": batch_s, "clock": "wall" if gpu else "CPU", "ratio": ratios[len(ratios) // 2],
            "target": 0.6}  # fmt: skip


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    torch.set_num_threads(1)
    d = 100 if quick else 1000
    data, source = mnist_or_shapes(2_000 if quick else None)
    print(f"MNIST FC, one epoch at d = {d}, one thread: {source}", file=sys.stderr)
    epochs = epoch_costs(data, d, KINDS, rounds=1 if quick else 5)
    print("3 seeds as one batched job / one after another ...", file=sys.stderr)
    small = mnist_shaped(2_000 if quick else 60_000, 500 if quick else 10_000)
    batch = batched_ratio("cpu", d, small, rounds=1 if quick else 2)
    result: dict[str, Any] = {
        "network": "fc_mnist",
        "D": 199_210,
        "data": source,
        "threads": torch.get_num_threads(),
        "clock": "CPU-seconds of this process (time.process_time)",
        "epoch": epochs,
        "target_ratio": TARGET,
        "batched_3_seeds": batch,
    }

    def human(r: dict[str, Any]) -> str:
        e = r["epoch"]
        lines = [
            f"MNIST FC (D = {r['D']:,}), one epoch ({e['steps']} steps of {e['batch_size']}) at "
            f"d = {e['d']}, {r['threads']} thread, CPU-seconds; data: {r['data']}",
            f"rlsub's trainer / a plain torch loop, target <= {r['target_ratio']} (sparse, "
            f"Fastfood); medians of {e['rounds']} rounds (dense: 1)",
            "",
            "| loop | epoch (CPU-s) | / plain | rounds |",
            "| --- | ---: | ---: | --- |",
        ]
        for s in e["rows"]:
            lo, hi = min(s["ratio_rounds"]), max(s["ratio_rounds"])
            lines.append(f"| {s['kind']} | {s['epoch_cpu_s']:.2f} | {s['ratio']:.2f} | "
                         f"{lo:.2f}-{hi:.2f} |")  # fmt: skip
        b = r["batched_3_seeds"]
        lines += ["", (
            f"3 seeds at d = {b['d']}, one epoch of {b['n_train']:,} (random data): batched / "
            f"one by one {b['ratio']:.2f} CPU-s (target <= {b['target']}; median of "
            f"{len(b['batched_s'])} rounds)"
        )]  # fmt: skip
        return "\n".join(lines)

    return result, human
