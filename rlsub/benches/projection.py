"""`rlsub bench projection`: cost of z -> theta at the Pong ES network's D, and of a
subspace training step against a direct one on the MNIST FC net (batch 128).

On one torch thread (the numba kernels use one too), in CPU-seconds of this
process. For each kind and d: the projection's own memory, peak extra resident
memory of a forward+backward, and the median CPU times of the forward
(z -> theta0 + P z, as a training step computes it) and of forward + backward
(grad theta -> grad z). Target for Fastfood at Pong's D = 1,005,974: forward +
backward within 20 ms. The MNIST FC step is the trainer's (`Subspace.params`,
Adam on z) against the same step on the plain network (Adam on all D), timed in
alternating rounds; `rlsub bench supervised` times whole epochs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch

from rlsub.benches import PeakRSS, timeit
from rlsub.core.errors import RlsubError
from rlsub.core.projection_base import Projection
from rlsub.core.projections import make_projection
from rlsub.core.registry import build_network, count_parameters
from rlsub.core.subspace import Subspace

FASTFOOD_TARGET_MS = 20.0


def _measure(P: Projection, repeat: int) -> dict[str, Any]:
    z = torch.randn(P.d, requires_grad=True)
    g = torch.randn(P.D)
    theta0 = torch.randn(P.D)
    P.affine(theta0, z).backward(g)  # numba compiles or loads its kernels here, not below
    with PeakRSS() as mem:
        P.affine(theta0, z).backward(g)

    def fwd() -> None:
        with torch.no_grad():
            P.affine(theta0, z)

    def fwd_bwd() -> None:
        P.affine(theta0, z).backward(g)

    t_fwd = timeit(fwd, repeat=repeat, cpu=True)
    t_both = timeit(fwd_bwd, repeat=repeat, cpu=True)
    return {
        "projection_mib": P.nbytes / 2**20,
        "product_peak_mib": mem.mib,
        "forward_ms": 1e3 * t_fwd,
        "forward_backward_ms": 1e3 * t_both,
        "backward_ms": 1e3 * (t_both - t_fwd),
    }


def projection_costs(D: int, ds: list[int], kinds: list[str], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for kind in kinds:
        for d in ds:
            row: dict[str, Any] = {"kind": kind, "D": D, "d": d}
            try:
                with PeakRSS() as build_mem:
                    P = make_projection(kind, D, d, seed=0)
            except RlsubError as exc:
                row["refused"] = str(exc)
                rows.append(row)
                print(f"  {kind:8s} d={d:>6}: refused ({exc})", file=sys.stderr)
                continue
            row.update(_measure(P, repeat))
            row["build_peak_mib"] = build_mem.mib
            rows.append(row)
            print(
                f"  {kind:8s} d={d:>6}: P {row['projection_mib']:8.1f} MiB, "
                f"fwd {row['forward_ms']:7.1f} ms, bwd {row['backward_ms']:7.1f} ms",
                file=sys.stderr,
            )
    return rows


def step_ratio(kinds: list[str], d: int, repeat: int, rounds: int = 10) -> list[dict[str, Any]]:
    """The trainer's Adam step in a subspace / the same step on the plain network, MNIST FC
    784-200-200-10, batch 128, in CPU-seconds: alternating rounds (`repeat` steps each,
    median per round), the ratio the median of the rounds' ratios."""
    x = torch.randn(128, 784)
    y = torch.randint(0, 10, (128,))
    loss_fn = torch.nn.CrossEntropyLoss()
    net = build_network("fc_mnist", seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99))

    def direct() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    rows = []
    for kind in kinds:
        sub = Subspace(build_network("fc_mnist", seed=0), d, kind, seed=0)
        sub_opt = torch.optim.Adam(sub.parameters(), lr=1e-3, betas=(0.9, 0.99))

        def subspace_step(sub: Subspace = sub, sub_opt: Any = sub_opt) -> None:
            sub_opt.zero_grad(set_to_none=True)
            loss_fn(sub.call(sub.params(), x), y).backward()
            sub_opt.step()

        timeit(direct, repeat=1, warmup=3)
        timeit(subspace_step, repeat=1, warmup=3)
        pairs = [
            (
                timeit(direct, repeat=repeat, warmup=1, cpu=True),
                timeit(subspace_step, repeat=repeat, warmup=1, cpu=True),
            )
            for _ in range(rounds)
        ]
        ratios = [s / t for t, s in pairs]
        ratio = statistics.median(ratios)
        rows.append(
            {
                "kind": kind,
                "d": d,
                "D": sub.D,
                "direct_ms": 1e3 * statistics.median(t for t, _ in pairs),
                "subspace_ms": 1e3 * statistics.median(s for _, s in pairs),
                "ratio": ratio,
                "round_ratios": ratios,
            }
        )
        print(
            f"  step ratio {kind:8s} d={d}: {ratio:.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})",
            file=sys.stderr,
        )
    return rows


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    torch.set_num_threads(1)
    net = "lenet_mnist" if quick else "es_pong"
    D = count_parameters(build_network(net))
    ds = [100, 1000] if quick else [100, 1000, 6000, 20000]
    kinds = ["dense", "sparse", "fastfood"]
    repeat = 2 if quick else 5
    print(f"projection costs at D={D:,} ({net})", file=sys.stderr)
    rows = projection_costs(D, ds, kinds, repeat)
    steps = step_ratio(kinds, 1000 if not quick else 100, repeat=5 if quick else 30)
    result = {
        "network": net,
        "D": D,
        "threads": torch.get_num_threads(),
        "clock": "CPU-seconds of this process (time.process_time)",
        "fastfood_target_ms": FASTFOOD_TARGET_MS,
        "projections": rows,
        "mnist_fc_step": steps,
    }

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"z -> theta0 + P z at D = {r['D']:,} ({r['network']}), {r['threads']} thread, "
            f"CPU ms; Fastfood target: forward + backward <= {r['fastfood_target_ms']:g} ms",
            "",
            "| kind | d | P memory (MiB) | peak extra (MiB) | forward (ms) | forward + backward (ms) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in r["projections"]:
            if "refused" in row:
                lines.append(
                    f"| {row['kind']} | {row['d']:,} | refused: over the dense limit | | | |"
                )
                continue
            peak = "n/a" if row["product_peak_mib"] is None else f"{row['product_peak_mib']:.1f}"
            lines.append(
                f"| {row['kind']} | {row['d']:,} | {row['projection_mib']:.1f} | {peak} | "
                f"{row['forward_ms']:.1f} | {row['forward_backward_ms']:.1f} |"
            )
        lines += [
            "",
            "MNIST FC (D = 199,210), the trainer's Adam step at batch 128 / a plain step, CPU ms:",
            "",
            "| kind | d | direct (ms) | subspace (ms) | ratio |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for s in r["mnist_fc_step"]:
            lines.append(
                f"| {s['kind']} | {s['d']} | {s['direct_ms']:.2f} | {s['subspace_ms']:.2f} | {s['ratio']:.2f} |"
            )
        return "\n".join(lines)

    return result, human
