"""`rlsub bench sweep`: adaptive sweep against the full grid on CartPole ES.

Runs ``configs/cartpole_es.yaml`` twice from scratch, each into its own
fresh store: once in adaptive mode, once over the full grid (in-process, one
worker). Prints both d_int estimates (d_int90 and d_int100), the number of
trials each ran (with and without the shared baseline), their ratio and wall
times. Target: adaptive within one grid step of the grid's estimate with at
most 40 % of the grid's trials. ``--quick`` keeps the grid but runs two seeds
and half the ES generations.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlsub.core.bundled import config_path
from rlsub.core.config import ExperimentConfig, load_experiment, with_overrides
from rlsub.core.errors import RlsubError
from rlsub.sweep.strategy import run_sweep

CONFIG = config_path("cartpole_es")
TARGET_RATIO = 0.4
KINDS = ("d_int90", "d_int100")


def grid_steps_apart(grid: list[int], a: int | None, b: int | None) -> int | None:
    """How many grid steps separate two d_int values (None = beyond the grid's top)."""
    pts = sorted(set(grid))

    def pos(x: int | None) -> float:
        if x is None:
            return len(pts)
        return float(min(range(len(pts)), key=lambda i: abs(pts[i] - x)))

    if a is None and b is None:
        return 0
    return int(abs(pos(a) - pos(b)))


def compare(cfg: ExperimentConfig, root: Path, progress: bool = False) -> dict[str, Any]:
    """Adaptive then grid sweep of `cfg` into fresh stores under `root`; the comparison."""
    runs = {}
    for mode in ("adaptive", "grid"):
        path = root / f"{cfg.name}-{mode}.sqlite"
        if path.exists():
            raise RlsubError(f"{path}: exists; the bench needs fresh stores")
        print(f"bench sweep: {mode} ...", file=sys.stderr)
        runs[mode] = run_sweep(cfg, path, mode=mode, progress=progress)
    n_base = len(cfg.sweep.seeds) if cfg.sweep.baseline else 0
    out: dict[str, Any] = {
        "config": cfg.source,
        "d_grid": cfg.sweep.d_grid,
        "seeds": cfg.sweep.seeds,
    }
    for mode, r in runs.items():
        est = r["estimate"] or {}
        out[mode] = {
            "store": r["store"],
            "trials": r["trials"]["run"],
            "subspace_trials": r["trials"]["run"] - n_base,
            "failed": r["trials"]["failed"],
            "wall_s": r["wall_s"],
            **{k: (est.get(k) or {}).get("d_int") for k in KINDS},
            **{f"{k}_headline": (est.get(k) or {}).get("headline") for k in KINDS},
            **{f"{k}_note": (est.get(k) or {}).get("note") for k in KINDS},
            "baseline_mean": (est.get("baseline") or {}).get("mean"),
            "curve": {p["d"]: p["mean"] for p in est.get("curve", [])},
        }
    a, g = out["adaptive"], out["grid"]
    out["trial_ratio"] = a["trials"] / max(1, g["trials"])
    out["subspace_trial_ratio"] = a["subspace_trials"] / max(1, g["subspace_trials"])
    out["wall_ratio"] = a["wall_s"] / max(1e-9, g["wall_s"])
    out["steps_apart"] = {
        k: grid_steps_apart(cfg.sweep.d_grid, a[k], g[k])
        for k in KINDS
        if g[k] is not None or a[k] is not None
    }
    out["within_one_step"] = all(v is not None and v <= 1 for v in out["steps_apart"].values())
    # with no crossing anywhere in the grid the comparison says nothing: no verdict
    out["informative"] = any(g[k] is not None for k in KINDS)
    out["meets_target"] = (
        out["within_one_step"] and out["trial_ratio"] <= TARGET_RATIO
        if out["informative"]
        else None
    )
    return out


def _human(r: dict[str, Any]) -> str:
    lines = [f"adaptive vs grid on {r['config']}  (d grid {r['d_grid']}, seeds {r['seeds']})"]
    lines.append(f"{'':10s}{'trials':>8s}{'subspace':>10s}{'wall s':>9s}  d_int90  d_int100")
    for mode in ("adaptive", "grid"):
        m = r[mode]
        lines.append(
            f"{mode:10s}{m['trials']:>8d}{m['subspace_trials']:>10d}{m['wall_s']:>9.1f}  "
            f"{m['d_int90']!s:>7s}  {m['d_int100']!s:>8s}"
        )
    g = r["grid"]
    curve = ", ".join(f"{d}: {m:.4g}" for d, m in g["curve"].items())
    lines.append(f"grid curve (mean score by d): {curve}; baseline {g['baseline_mean']}")
    verdict = {True: "met", False: "NOT met", None: "no verdict (no crossing within the grid)"}
    lines.append(
        f"ratio adaptive/grid: trials {r['trial_ratio']:.2f} (subspace only "
        f"{r['subspace_trial_ratio']:.2f}), wall {r['wall_ratio']:.2f}; grid steps apart "
        f"{r['steps_apart']}; target (within one step, <= {TARGET_RATIO:.0%} of the trials): "
        f"{verdict[r['meets_target']]}"
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """`rlsub bench sweep [--quick] [--json]`."""
    if not CONFIG.is_file():
        raise RlsubError(f"bench sweep needs {CONFIG}")
    cfg = load_experiment(CONFIG)
    if args.quick:
        cfg = with_overrides(
            cfg,
            train={"generations": max(2, cfg.train.generations // 2)},
            sweep={"seeds": cfg.sweep.seeds[:2]},
        )
    with tempfile.TemporaryDirectory(prefix="rlsub-bench-sweep-") as tmp:
        result = compare(cfg, Path(tmp), progress=not args.json)
    result["quick"] = bool(args.quick)
    return result, _human
