"""`rlsub bench supervised`: cost of supervised training in a subspace.

Subspace Adam step / direct Adam step on the MNIST FC net (784-200-200-10,
D = 199,210) at batch 128, for the dense, sparse and Fastfood projections at
d = 750 (the paper's MNIST FC intrinsic dimension), measured in one run with
`rlsub.benches.projection.step_ratio` (alternating rounds, median ratio), beside the cost of drawing one
minibatch from MNIST-sized in-memory tensors (the trainer's data loading:
`torch.randperm` order, index, flatten), which should be a small fraction of
a step. Also: 3 seeds of MNIST FC at d trained for one epoch as one batched job
(rlsub.algos.supervised_batch) against the 3 one after another, in alternating
rounds (target: <= 0.6), on MNIST-shaped random data (the time of an epoch
depends only on the shapes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from rlsub.benches import timeit
from rlsub.benches.projection import step_ratio

KINDS = ["dense", "sparse", "fastfood"]


def batch_cost(n: int = 60_000, batch_size: int = 128, repeat: int = 50) -> float:
    """Median seconds to gather one minibatch: x (n, 1, 28, 28) float32 -> (batch_size, 784)."""
    x = torch.randn(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    idx = perm[:batch_size]

    def gather() -> None:
        x[idx].flatten(1)
        y[idx]

    return timeit(gather, repeat=repeat, warmup=3)


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


def batched_ratio(device: str, d: int, data: Any, rounds: int) -> dict[str, Any]:
    """One epoch of mnist_fc for seeds 0-2 at d: batched job / one after another (median of
    alternating rounds, after a warm-up of each)."""
    from rlsub.algos.supervised import fit
    from rlsub.algos.supervised_batch import fit_batch
    from rlsub.core.config import load_experiment, with_overrides

    cfg = with_overrides(load_experiment("mnist_fc"), train={"epochs": 1, "device": device})
    jobs = [(d, s) for s in (0, 1, 2)]

    def sync() -> None:
        if torch.device(device).type == "cuda":
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
            t = time.perf_counter()
            f()
            if r:  # the first round warms up
                out.append(time.perf_counter() - t)
    ratios = sorted(b / a for a, b in zip(solo_s, batch_s, strict=True))
    return {"d": d, "n_train": data.n_train, "seeds": 3, "one_by_one_s": solo_s,
            "batched_s": batch_s, "ratio": ratios[len(ratios) // 2], "target": 0.6}  # fmt: skip


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    if quick:  # for tests: small and on one thread (steady on a shared machine)
        torch.set_num_threads(1)
    d = 100 if quick else 750
    repeat = 5 if quick else 20
    print(f"MNIST FC Adam step at batch 128, d={d}: subspace / direct", file=sys.stderr)
    rows = step_ratio(KINDS, d, repeat=repeat, rounds=3 if quick else 10)
    gather_ms = 1e3 * batch_cost(n=6_000 if quick else 60_000, repeat=repeat)
    print("3 seeds as one batched job / one after another ...", file=sys.stderr)
    data = mnist_shaped(2_000 if quick else 60_000, 500 if quick else 10_000)
    batch = batched_ratio("cpu", d, data, rounds=1 if quick else 3)
    result: dict[str, Any] = {
        "network": "fc_mnist",
        "D": rows[0]["D"],
        "d": d,
        "batch_size": 128,
        "threads": torch.get_num_threads(),
        "steps": rows,
        "batch_gather_ms": gather_ms,
        "target_ratio": 1.5,
        "batched_3_seeds": batch,
    }

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"MNIST FC (D = {r['D']:,}), Adam step at batch {r['batch_size']}, "
            f"d = {r['d']}, {r['threads']} threads; target ratio <= {r['target_ratio']}",
            "",
            "| kind | direct (ms) | subspace (ms) | ratio (median of rounds) | rounds |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for s in r["steps"]:
            lo, hi = min(s["round_ratios"]), max(s["round_ratios"])
            lines.append(
                f"| {s['kind']} | {s['direct_ms']:.2f} | {s['subspace_ms']:.2f} | "
                f"{s['ratio']:.2f} | {lo:.2f}-{hi:.2f} |"
            )
        lines += ["", f"minibatch gather from in-memory tensors: {r['batch_gather_ms']:.3f} ms"]
        b = r["batched_3_seeds"]
        lines.append(
            f"3 seeds at d = {b['d']}, one epoch of {b['n_train']:,}: batched / one by one "
            f"{b['ratio']:.2f} (target <= {b['target']}; medians of {len(b['batched_s'])} rounds)"
        )
        return "\n".join(lines)

    return result, human
