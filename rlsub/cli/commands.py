"""The commands behind `rlsub info|train|eval|random-score|sweep|suite|dint|report|curves`.

Each takes the parsed arguments, calls the library (which returns data) and prints the
result through `emit`. Nothing below `rlsub.cli` prints results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rlsub.algos.evaluate import evaluate_policy_file, random_score
from rlsub.analysis.estimate import estimate_all
from rlsub.analysis.figures import learning_curves_figure, pyplot
from rlsub.analysis.report import (
    command_line,
    format_report,
    load_record_file,
    report,
    save_figure,
)
from rlsub.analysis.text import format_group
from rlsub.cli.emit import emit
from rlsub.core.config import (
    load_experiment,
)
from rlsub.core.errors import RlsubError
from rlsub.sweep.strategy import run_sweep
from rlsub.sweep.suite import format_plan, load_suite, plan


def config_info(args: argparse.Namespace) -> None:
    """`rlsub info CONFIG`: what a config measures, its network's D and its sweep plan
    (no data read or downloaded: D comes from the dataset's known input shape)."""
    from rlsub.sweep.validate import network_D

    cfg = load_experiment(args.config)
    D = network_D(cfg, data=False)
    sw = cfg.sweep
    result = {
        "config": str(cfg.source),
        "name": cfg.name,
        "task": cfg.task,
        "algorithm": cfg.algorithm,
        "network": cfg.network.name,
        "network_kwargs": cfg.network.kwargs,
        "projection": cfg.subspace.projection,
        "D": D,
        "d_grid": sw.d_grid,
        "seeds": sw.seeds,
        "baseline": sw.baseline,
        "threshold": sw.threshold,
        "trials": len(sw.d_grid) * len(sw.seeds) + (len(sw.seeds) if sw.baseline else 0),
        "config_hash": cfg.hash,
    }

    def human(r: dict[str, Any]) -> str:
        D_text = "-" if r["D"] is None else f"{r['D']:,}"
        return (
            f"config      {r['name']} ({r['config']}, hash {r['config_hash']})\n"
            f"task        {r['task']}   algorithm {r['algorithm']}\n"
            f"network     {r['network']} {r['network_kwargs'] or ''}   D {D_text}\n"
            f"projection  {r['projection']}\n"
            f"sweep       d {r['d_grid']} x seeds {r['seeds']}"
            f"{' + baseline' if r['baseline'] else ''}: {r['trials']} trials, line "
            f"{r['threshold']:g} (rlsub sweep {r['name']})"
        )

    emit(args, result, human)


def cli_info_with_torch(args: argparse.Namespace) -> None:
    """`rlsub info CONFIG` or `rlsub info --network NAME --d N` (rlsub.cli.catalog.cli_info
    hands these over: they import torch)."""
    from rlsub.core.projections import make_projection
    from rlsub.core.registry import build_network, count_parameters
    from rlsub.nets.catalog import INFO_DEFAULTS

    if args.config is not None:
        config_info(args)
        return
    if args.network is None or args.d is None:
        raise RlsubError(
            "info: give a config (rlsub info cartpole_es), nothing (the bundled configs) "
            "or --network NAME --d N"
        )
    net = build_network(args.network, INFO_DEFAULTS.get(args.network))
    D = count_parameters(net)
    d = D if args.d == "direct" else args.d
    kind = "identity" if args.d == "direct" else args.projection
    P = make_projection(kind, D, d, seed=0, dense_limit_gib=args.dense_limit_gib)
    result = {
        "network": args.network,
        "D": D,
        "d": d,
        "projection": kind,
        "compression": D / d,
        "projection_bytes": P.nbytes,
        "theta_bytes": D * 4,
    }

    def human(r: dict[str, Any]) -> str:
        return (
            f"network     {r['network']}\n"
            f"D           {r['D']:,}\n"
            f"d           {r['d']:,}\n"
            f"D/d         {r['compression']:,.1f}\n"
            f"projection  {r['projection']}: {r['projection_bytes'] / 2**20:,.2f} MiB "
            f"(theta itself: {r['theta_bytes'] / 2**20:,.2f} MiB)"
        )

    emit(args, result, human)


def with_device(cfg: Any, device: str | None) -> Any:
    """cfg with train.device set from --device (None: as the config says)."""
    from rlsub.core.config import with_overrides
    from rlsub.core.device import ALLOWED, valid

    if device is None:
        return cfg
    if not valid(device):
        raise RlsubError(f"--device {device!r} is not a device; allowed: {ALLOWED}")
    if not hasattr(cfg.train, "device"):
        raise RlsubError(f"--device: algorithm {cfg.algorithm!r} has no train.device (CPU only)")
    return with_overrides(cfg, train={"device": device})


def cli_train(args: argparse.Namespace) -> None:
    """`rlsub train CONFIG --d D [--seed S] [--out DIR] [--device ...]`: one trial."""
    from rlsub.core.config import MAX_SEED, load_experiment
    from rlsub.core.paths import check_can_write_folder
    from rlsub.experiment.trial import run_trial

    cfg = with_device(load_experiment(args.config), args.device)
    if not 0 <= args.seed <= MAX_SEED:
        raise RlsubError(f"--seed must be in 0..2**63 - 1, got {args.seed}")
    check_can_write_folder(args.out, "--out")  # before training, not after
    rec = run_trial(
        cfg, args.d, args.seed, policy_dir=args.out, progress=not args.quiet, catch=False
    )
    result = rec.to_dict()  # the record carries its config

    def human(r: dict[str, Any]) -> str:
        solved = "" if r["solved"] is None else f"  solved={r['solved']} (>= {r['solved_score']})"
        return (
            f"{r['name']}  d={'direct' if r['direct'] else r['d']}  D={r['D']:,}  seed={r['seed']}\n"
            f"final eval {r['final_eval_mean']:.4g} +- {r['final_eval_std']:.3g}  "
            f"best {r['best_eval_mean']:.4g}{solved}\n"
            f"env steps {r['env_steps']:,}  wall {r['wall_s']:.1f} s  policy {r['policy_path']}"
        )

    emit(args, result, human)


def cli_random_score(args: argparse.Namespace) -> None:
    result = random_score(args.env, args.episodes, args.seed)

    def human(r: dict[str, Any]) -> str:
        return (
            f"{r['env']} ({r['id']}): random policy over {r['episodes']} episodes: "
            f"{r['mean']:.2f} +- {r['std']:.2f} (mean length {r['mean_length']:.0f} steps)"
        )

    emit(args, result, human)


def cli_eval(args: argparse.Namespace) -> None:
    from rlsub.core.trust import allow

    allow(args.trust, pickle=args.trust_pickle)
    result = evaluate_policy_file(args.policy, args.episodes, args.seed)

    def human(r: dict[str, Any]) -> str:
        return (
            f"{r['policy']}: {r['env']} d={r['d']} D={r['D']}\n"
            f"{r['episodes']} episodes: mean {r['eval_mean']:.2f} +- {r['eval_std']:.2f}  "
            f"solved={r['solved']} (>= {r['solved_score']})"
        )

    emit(args, result, human)


def format_summary(r: dict[str, Any]) -> str:
    """Human-readable end-of-sweep summary."""
    from rlsub.analysis.text import format_group

    t = r["trials"]
    others = f", {t['elsewhere']} run by other sweeps" if t.get("elsewhere") else ""
    lines = [
        f"sweep {r['name']} ({r['mode']}, {r['backend']}, {r['workers']} worker(s)) -> "
        f"{r['store']}",
        f"trials: {t['run']} run ({t['failed']} failed), {t['skipped']} skipped (finished "
        f"before){others}, {t['in_store']} in store for this config; {r['wall_s']:.1f} s",
    ]
    if t.get("held_elsewhere"):
        lines.append(
            f"{t['held_elsewhere']} trial(s) of this config still held by other sweeps: "
            "not in the estimate yet"
        )
    if t.get("abandoned"):
        lines.append(_abandoned_line(t["abandoned"]))
    for kind, why in (r.get("refinement") or {}).items():  # adaptive: why it ran no more
        lines.append(f"adaptive refinement of {kind} stopped: {why}")
    if r["estimate"] is not None:
        lines.append(format_group(r["estimate"]))
    return "\n".join(lines)


def _abandoned_line(n: int) -> str:
    return (
        f"{n} trial(s) abandoned: left 'running' by a sweep that is gone; a grid sweep "
        "of the config runs them again (an adaptive one only where its search needs them)"
    )


def cli_sweep(args: argparse.Namespace) -> None:
    """`rlsub sweep` (arguments parsed in rlsub.cli)."""
    from rlsub.cli.emit import emit

    cfg = with_device(load_experiment(args.config), args.device)
    result = run_sweep(
        cfg,
        args.store,
        mode=args.mode,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        progress=not args.json,
    )
    emit(args, result, format_summary)


def cli_tune(args: argparse.Namespace) -> None:
    """`rlsub tune CONFIG --k K... --seeds S... --store S --out YAML`."""
    from rlsub.core.paths import check_can_write_file
    from rlsub.sweep.tune import format_tune, tune, tuned_config_text

    cfg = load_experiment(args.config)
    out = Path(args.out)
    check_can_write_file(out, "tuned config")
    result = tune(cfg, list(args.k), list(args.seeds), args.store, progress=not args.json)
    text = tuned_config_text(cfg, result, command_line())
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    result["out"] = str(out)
    emit(args, result, lambda r: format_tune(r) + f"\nwrote {r['out']}")


def cli_suite(args: argparse.Namespace) -> None:
    """`rlsub suite FILE [--plan] [--measured ...] [sweep options]`."""
    from rlsub.cli.commands import format_summary
    from rlsub.cli.emit import emit
    from rlsub.sweep.strategy import run_sweep

    suite, cfgs = load_suite(args.suite)
    if args.plan:
        planned = plan(cfgs, args.measured or [])
        result = {
            "suite": suite.name,
            "experiments": [
                {
                    "name": p.cfg.name,
                    "task": p.cfg.task,
                    "algorithm": p.cfg.algorithm,
                    "trials": p.trials,
                    "unit": p.unit,
                    "units_per_trial": p.units_per_trial,
                    "s_per_unit": p.s_per_unit,
                    "measured_records": len(p.measured),
                    "hours": p.hours,
                }
                for p in planned
            ],
        }
        emit(args, result, lambda _r: format_plan(suite, planned))
        return
    out_dir = Path(args.store_dir)
    summaries = []
    for cfg in cfgs:
        print(
            f"rlsub suite: sweep {cfg.name} -> {out_dir / (cfg.name + '.sqlite')}", file=sys.stderr
        )
        summaries.append(
            run_sweep(
                cfg,
                out_dir / f"{cfg.name}.sqlite",
                mode=args.mode,
                workers=args.workers,
                backend=args.backend,
                address=args.address,
                progress=not args.json,
            )
        )
    emit(
        args,
        {"suite": suite.name, "sweeps": summaries},
        lambda r: "\n\n".join(format_summary(s) for s in r["sweeps"]),
    )


def cli_dint(args: argparse.Namespace) -> None:
    """`rlsub dint STORE [--rule stays_above|original] [--json]`."""
    from rlsub.cli.emit import emit
    from rlsub.experiment.queue import running_state
    from rlsub.experiment.store import Store

    with Store(args.store, readonly=True) as store:
        records = store.records()
        running = store.rows(status="running")
    groups = estimate_all(records, rule=args.rule)
    for g in groups:  # trials of the group not finished: still running, or abandoned
        g["running"], g["abandoned"] = running_state(
            [r for r in running if r["config_hash"] == g["config_hash"]]
        )
    held, gone = running_state(running)
    result = {
        "store": str(args.store),
        "rule": args.rule,
        "groups": groups,
        "running": held,
        "abandoned": gone,
    }

    def human(r: dict[str, Any]) -> str:
        parts = [format_group(g) for g in r["groups"]] or [f"{r['store']}: no finished trials"]
        if r["running"] or r["abandoned"]:
            lines = [
                f"{r['store']}: {r['running']} trial(s) still running (their sweeps are alive)"
            ]
            if r["abandoned"]:
                lines.append(_abandoned_line(r["abandoned"]))
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    emit(args, result, human)


def cli_report(args: argparse.Namespace) -> None:
    """`rlsub report STORE... [--out DIR] [--json]`."""
    from rlsub.cli.emit import emit

    result = report(args.stores, args.out, command_line(), pool=args.pool, paper=args.paper)
    emit(args, result, format_report)


def cli_curves(args: argparse.Namespace) -> None:
    """`rlsub curves RECORD.json... --out FILE.png`: learning curves of single trials."""
    from rlsub.cli.emit import emit

    records = [load_record_file(p) for p in args.records]
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".pdf"):
        raise RlsubError(f"--out {out}: give a .png or .pdf file name (both are written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    fig, xlabel = learning_curves_figure(records)
    paths = save_figure(fig, out.with_suffix(""))
    plt.close(fig)
    result = {
        "records": [str(p) for p in args.records],
        "figures": paths,
        "x": xlabel,
        "command": command_line(),
        "final": [
            {"name": r["name"], "d": r["d"], "seed": r["seed"], "final": r["final_eval_mean"]}
            for r in records
        ],
    }
    emit(args, result, lambda r: "written:\n" + "\n".join(f"  {p}" for p in r["figures"]))
