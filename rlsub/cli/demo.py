"""`rlsub demo`: the README's main job in one command.

Runs an adaptive sweep for each demo config (CartPole and InvertedPendulum with ES,
the digits set with Adam), each into its own store under ``--out`` (e.g.
``runs/demo/cartpole_es.sqlite``), then writes the cross-task difficulty report
(tables and figures) into the same folder and prints the table. Rerunning reuses
the stores: finished trials are skipped, so an interrupted demo resumes.

``RLSUB_DEMO_CONFIGS`` (comma-separated config paths) replaces the config list
(the tests use it with tiny configs). A config file that is absent is skipped with
a message on stderr.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from rlsub.core.bundled import config_path
from rlsub.core.errors import RlsubError

DEMO_CONFIGS = (
    "configs/cartpole_es.yaml",
    "configs/inverted_pendulum_es.yaml",
    "configs/digits_fc.yaml",
)
ENV_VAR = "RLSUB_DEMO_CONFIGS"


def demo_configs() -> list[str]:
    """The demo's config paths: `RLSUB_DEMO_CONFIGS` when set, else `DEMO_CONFIGS`."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return [p.strip() for p in env.split(",") if p.strip()]
    return list(DEMO_CONFIGS)


def _resolve(path: str) -> Path | None:
    """The config file, relative to the working directory or to the repository."""
    p = Path(path)
    if p.is_file():
        return p
    found = config_path(path)
    return found if found.is_file() else None


def run_demo(out: str | Path, progress: bool = True, command: str = "rlsub demo") -> dict[str, Any]:
    """Sweep every demo config (adaptive, resumable), then report into `out`."""
    from rlsub.analysis.report import report
    from rlsub.core.config import load_experiment
    from rlsub.sweep.strategy import run_sweep

    out = Path(out)
    sweeps, stores, skipped = [], [], []
    found = []
    for path in demo_configs():
        resolved = _resolve(path)
        if resolved is None:
            print(f"rlsub demo: skipping {path} (config not found)", file=sys.stderr)
            skipped.append(path)
        else:
            found.append(resolved)
    cfgs = [load_experiment(p) for p in found]  # every config checked before any sweep
    for cfg in cfgs:
        store = out / f"{cfg.name}.sqlite"
        if progress:
            print(f"rlsub demo: sweep {cfg.name} -> {store}", file=sys.stderr)
        summary = run_sweep(cfg, store, mode="adaptive", progress=progress)
        sweeps.append(summary)
        stores.append(store)
    if not stores:
        raise RlsubError(f"demo: none of the configs exists ({', '.join(demo_configs())})")
    result = report(stores, out, command)
    result.update(sweeps=sweeps, skipped=skipped)
    return result


def format_demo(r: dict[str, Any]) -> str:
    """The difficulty table, skipped configs and the written files."""
    from rlsub.analysis.report import format_report

    text = format_report(r)
    if r["skipped"]:
        text += "\nskipped (config not found): " + ", ".join(r["skipped"])
    wall = sum(s["wall_s"] for s in r["sweeps"])
    return text + f"\nsweeps took {wall:.0f} s; rerun to resume or reuse the stores"


def cli_demo(args: argparse.Namespace) -> None:
    """`rlsub demo [--out DIR] [--json]`."""
    from rlsub.analysis.report import command_line
    from rlsub.cli.emit import emit

    argv = sys.argv if Path(sys.argv[0]).name in ("rlsub", "cli.py") else ["rlsub", "demo"]
    if argv is not sys.argv and args.out != "runs/demo":
        argv = [*argv, "--out", str(args.out)]
    command = command_line(argv)
    if os.environ.get(ENV_VAR, "").strip():
        command = f"{ENV_VAR}={shlex.quote(os.environ[ENV_VAR])} {command}"
    result = run_demo(args.out, progress=not args.json, command=command)
    emit(args, result, format_demo)
