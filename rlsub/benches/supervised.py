"""`rlsub bench supervised`: cost of supervised training in a subspace.

Subspace Adam step / direct Adam step on the MNIST FC net (784-200-200-10,
D = 199,210) at batch 128, for the dense, sparse and Fastfood projections at
d = 750 (the paper's MNIST FC intrinsic dimension), measured in one run with
`rlsub.benches.projection.step_ratio` (alternating rounds, median ratio), beside the cost of drawing one
minibatch from MNIST-sized in-memory tensors (the trainer's data loading:
`torch.randperm` order, index, flatten), which should be a small fraction of
a step.
"""

from __future__ import annotations

import argparse
import sys
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


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    if quick:  # for tests: small and on one thread (steady on a shared machine)
        torch.set_num_threads(1)
    d = 100 if quick else 750
    repeat = 5 if quick else 20
    print(f"MNIST FC Adam step at batch 128, d={d}: subspace / direct", file=sys.stderr)
    rows = step_ratio(KINDS, d, repeat=repeat, rounds=3 if quick else 10)
    gather_ms = 1e3 * batch_cost(n=6_000 if quick else 60_000, repeat=repeat)
    result: dict[str, Any] = {
        "network": "fc_mnist",
        "D": rows[0]["D"],
        "d": d,
        "batch_size": 128,
        "threads": torch.get_num_threads(),
        "steps": rows,
        "batch_gather_ms": gather_ms,
        "target_ratio": 1.5,
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
        return "\n".join(lines)

    return result, human
