"""Cross-task difficulty tables and plots from results stores, and `rlsub report`.

Everything here is a pure function from trial records / estimates (`rlsub.estimate`)
to rows, strings or matplotlib figures; only `write_report` and `cli_report` touch
files. Tables: Markdown, CSV and LaTeX, one row per experiment (config hash), with
the original paper's value (REFERENCE.md, Li et al. 2018 Table 1) beside ours.
Figures (PNG and PDF, Agg backend):

1. ``curves``: performance against d per experiment, with the baseline, the
   threshold (90 %) line, the solved line (RL) and d_int90 with its interval;
2. ``difficulty``: every experiment's d_int90 on one log-d chart, paper values
   as hollow markers;
3. ``es_vs_pg_TASK``: ES against policy gradients on one task, when both ran;
4. ``projections_TASK_NETWORK``: projection kinds compared, when several ran.

Difficulty is d_int90 relative to a reference task: MNIST FC when it was
measured, the digits set otherwise (the table says which).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shlex
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rlsub.errors import RlsubError
from rlsub.trial import TrialRecord

# The paper's values (REFERENCE.md), keyed by (task, network); network None: any.
PAPER: dict[tuple[str, str | None], tuple[float, str]] = {
    ("mnist", "fc_mnist"): (750, "d_int90"),
    ("mnist", "lenet_mnist"): (290, "d_int90"),
    ("cifar10", "fc_cifar"): (9000, "d_int90"),
    ("cifar10", "lenet_cifar"): (2900, "d_int90"),
    ("cartpole", None): (25, "DQN, CartPole-v0, 90 % of 195"),
    ("inverted_pendulum", None): (4, "ES, d_int100"),
    ("pong", None): (6000, "ES, d_int100"),
}
PG_ALGORITHMS = ("ppo", "a2c", "dqn")
FORMATS = ("png", "pdf")
COLUMNS = [
    "task",
    "network",
    "algorithm",
    "projection",
    "D",
    "d_int90",
    "d_int90_lo",
    "d_int90_hi",
    "d_int100",
    "d_int100_lo",
    "d_int100_hi",
    "compression",
    "difficulty",
    "paper_d_int",
    "paper_rule",
    "seeds",
    "d_min",
    "d_max",
    "budget",
    "wall_s",
    "name",
    "config_hash",
]


# ------------------------------------------------------------------- inputs
def load_records(stores: Sequence[str | Path]) -> list[TrialRecord]:
    """Finished records of every store; one `RlsubError` for a missing or empty one."""
    from rlsub.store import Store

    if not stores:
        raise RlsubError("report: no results store given")
    out: list[TrialRecord] = []
    for path in stores:
        with Store(path, readonly=True) as store:
            recs = store.records()
        if not recs:
            raise RlsubError(f"{path}: no finished trials in this results store")
        out.extend(recs)
    return out


def paper_value(task: str, network: str) -> tuple[float, str] | None:
    """The paper's d_int for (task, network), or None (e.g. digits)."""
    base = task.split("-")[0]
    return PAPER.get((base, network)) or PAPER.get((base, None))


def is_supervised(recs: Iterable[TrialRecord]) -> bool:
    return any((r.config or {}).get("dataset") for r in recs)


def _budget(recs: list[TrialRecord], supervised: bool) -> str:
    sub = [r for r in recs if not r.direct]
    if supervised:
        epochs = next((r.config.get("train", {}).get("epochs") for r in recs if r.config), None)
        return f"{epochs} epochs" if epochs is not None else "-"
    steps = [r.env_steps for r in sub if r.status == "done"]
    return f"{sum(steps) / len(steps):.3g} env steps/trial" if steps else "-"


# --------------------------------------------------------------------- rows
def _est(g: dict[str, Any], kind: str) -> tuple[int | None, int | None, int | None, str]:
    e = g.get(kind)
    if e is None:
        return None, None, None, ""
    lo, hi = e["interval"] or (None, None)
    return e["d_int"], lo, hi, e["note"]


def reference_group(groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """MNIST FC when measured (d_int90 found), else digits, else None."""
    for task, net in (("mnist", "fc_mnist"), ("digits", None)):
        for g in groups:
            e = g.get("d_int90") or {}
            if g["task"] == task and net in (None, g["network"]) and e.get("d_int"):
                return g
    return None


def build_rows(
    records: list[TrialRecord], groups: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """One row per estimate group (columns `COLUMNS`) and the reference-task sentence."""
    by_hash: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        by_hash[r.config_hash].append(r)
    ref = reference_group(groups)
    ref_d = ref["d_int90"]["d_int"] if ref else None
    ref_text = (
        f"difficulty = d_int90 / d_int90 of {ref['task']} {ref['network']} ({ref_d})"
        if ref
        else "difficulty: no reference task (MNIST FC or digits) with a d_int90 in these stores"
    )
    rows = []
    for g in groups:
        recs = by_hash[g["config_hash"]]
        sub = [r for r in recs if not r.direct]
        d90, lo90, hi90, note90 = _est(g, "d_int90")
        d100, lo100, hi100, note100 = _est(g, "d_int100")
        paper = paper_value(g["task"], g["network"])
        ds = sorted({r.d for r in sub})
        rows.append(
            {
                "task": g["task"],
                "network": g["network"],
                "algorithm": g["algorithm"],
                "projection": g["projection"],
                "D": g["D"],
                "d_int90": d90,
                "d_int90_lo": lo90,
                "d_int90_hi": hi90,
                "d_int90_note": note90,
                "d_int100": d100,
                "d_int100_lo": lo100,
                "d_int100_hi": hi100,
                "d_int100_note": note100,
                "compression": g["D"] / d90 if d90 else None,
                "difficulty": d90 / ref_d if d90 and ref_d else None,
                "paper_d_int": paper[0] if paper else None,
                "paper_rule": paper[1] if paper else "",
                "seeds": len({r.seed for r in sub}),
                "d_min": ds[0] if ds else None,
                "d_max": ds[-1] if ds else None,
                "budget": _budget(recs, is_supervised(recs)),
                "wall_s": sum(r.wall_s for r in recs),
                "supervised": is_supervised(recs),
                "name": g["name"],
                "config_hash": g["config_hash"],
            }
        )
    return rows, ref_text


# ------------------------------------------------------------------- tables
def _n(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def _with_interval(d: int | None, lo: int | None, hi: int | None, d_max: int | None) -> str:
    if d is None:
        return f"> {_n(d_max)}" if d_max else "-"
    hi_s = f"> {_n(d_max)}" if hi is None else _n(hi)
    return f"{_n(d)} [{_n(lo)}, {hi_s}]"


def display_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and string cells shared by the Markdown and LaTeX tables."""
    head = [
        "task",
        "network",
        "algorithm",
        "projection",
        "D",
        "d_int90 [90% CI]",
        "d_int100 [90% CI]",
        "D/d_int90",
        "difficulty",
        "paper d_int",
        "budget",
        "wall",
    ]
    cells = []
    for r in rows:
        paper = f"{_n(r['paper_d_int'])} ({r['paper_rule']})" if r["paper_d_int"] else "none"
        budget = f"seeds {r['seeds']}, d {_n(r['d_min'])}-{_n(r['d_max'])}, {r['budget']}"
        cells.append(
            [
                r["task"],
                r["network"],
                r["algorithm"],
                r["projection"],
                _n(r["D"]),
                _with_interval(r["d_int90"], r["d_int90_lo"], r["d_int90_hi"], r["d_max"]),
                _with_interval(r["d_int100"], r["d_int100_lo"], r["d_int100_hi"], r["d_max"])
                if r["d_int100_note"]
                else "-",
                f"{r['compression']:.3g}" if r["compression"] else "-",
                f"{r['difficulty']:.3g}x" if r["difficulty"] else "-",
                paper,
                budget,
                f"{r['wall_s']:.3g} s",
            ]
        )
    return head, cells


def markdown_table(rows: list[dict[str, Any]], ref_text: str) -> str:
    """The cross-task difficulty table in Markdown, with its legend."""
    head, cells = display_rows(rows)
    lines = [
        "# Intrinsic dimension: cross-task difficulty",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    total = sum(r["wall_s"] for r in rows)
    lines += [
        "",
        f"- {ref_text}.",
        "- d_int90: smallest d whose mean score stays >= 90 % of the directly trained "
        "baseline; d_int100: smallest d reaching the env's solved score (RL). Intervals: "
        "bootstrap over seeds, 5th-95th percentile; '> N': not reached within the grid.",
        "- paper d_int: Li et al. 2018 (ICLR), Table 1 / REFERENCE.md, with its rule.",
        f"- wall: sum of trial wall times; total {total:.4g} s.",
    ]
    return "\n".join(lines) + "\n"


def csv_table(rows: list[dict[str, Any]]) -> str:
    """The table as CSV (columns `COLUMNS`, raw numbers, empty for none)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})
    return buf.getvalue()


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_")):
        s = s.replace(a, b)
    for a, b in (("#", r"\#"), ("$", r"\$"), (">", r"$>$"), ("<", r"$<$")):
        s = s.replace(a, b)
    return s


def latex_table(rows: list[dict[str, Any]], ref_text: str) -> str:
    """The table as a LaTeX tabular (booktabs), caption stating the reference task."""
    head, cells = display_rows(rows)
    lines = [
        r"\begin{table}[t]",
        r"\centering\small",
        r"\begin{tabular}{" + "l" * 4 + "r" * (len(head) - 4) + "}",
        r"\toprule",
        " & ".join(_tex(h) for h in head) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in cells]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{Intrinsic dimension per task (90\% bootstrap intervals); "
        + _tex(ref_text)
        + r"; paper values from Li et al.\ (2018).}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ figures
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(g: dict[str, Any]) -> str:
    return f"{g['task']} {g['network']} {g['algorithm']} ({g['projection']})"


def _ylabel(supervised: bool) -> str:
    return "test accuracy (fraction)" if supervised else "evaluation return (per episode)"


def plot_curve(ax: Any, g: dict[str, Any], supervised: bool, lines: bool = True) -> None:
    """Performance against d of one group on `ax`, with its reference lines and d_int90."""
    pts = [p for p in g["curve"] if p["n"] > 0]
    ds = [p["d"] for p in pts]
    (ln,) = ax.plot(ds, [p["mean"] for p in pts], "o-", label=f"mean over seeds: {_label(g)}")
    for p in pts:
        ax.plot([p["d"]] * len(p["scores"]), p["scores"], ".", color=ln.get_color(), alpha=0.35)
    ax.set_xscale("log")
    ax.set_xlabel("subspace dimension d (log scale)")
    ax.set_ylabel(_ylabel(supervised))
    b = g["baseline"]["mean"]
    if lines and b is not None:
        ax.axhline(b, color="k", ls="-", lw=1, label=f"direct baseline {b:.3g}")
        ax.axhline(
            g["threshold"] * b, color="gray", ls="--", lw=1, label=f"{g['threshold']:g} x baseline"
        )
    if lines and g["solved_score"] is not None:
        ax.axhline(g["solved_score"], color="g", ls=":", lw=1.2, label="solved score")
    e = g.get("d_int90")
    if e and e["d_int"]:
        ax.axvline(e["d_int"], color=ln.get_color(), ls="-.", lw=1, label=f"d_int90 = {e['d_int']}")
        lo, hi = e["interval"] or (None, None)
        if lo is not None:
            hi_x = hi if hi is not None else max(ds)
            ax.axvspan(lo, hi_x, color=ln.get_color(), alpha=0.12, label="d_int90 90 % interval")
    e100 = g.get("d_int100")
    if lines and e100 and e100["d_int"]:
        ax.axvline(e100["d_int"], color="g", ls=":", lw=1.2, label=f"d_int100 = {e100['d_int']}")


def curves_figure(groups: list[dict[str, Any]], supervised: dict[str, bool]) -> Any:
    """Figure 1: one panel per group, performance against d."""
    plt = _plt()
    n = len(groups)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax, g in zip(axes.flat, groups, strict=False):
        plot_curve(ax, g, supervised[g["config_hash"]])
        ax.set_title(_label(g), fontsize=9)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def difficulty_figure(rows: list[dict[str, Any]]) -> Any:
    """Figure 2: every group's d_int90 (interval bars) on one log-d axis, paper values hollow."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(rows) + 1.8))
    ys = list(range(len(rows)))
    labels = []
    ours = paper = solved = False
    for y, r in zip(ys, rows, strict=True):
        labels.append(f"{r['task']} / {r['network']} / {r['algorithm']} ({r['projection']})")
        color = "tab:blue" if r["supervised"] else "tab:red"
        if r["d_int90"]:
            lo = r["d_int90_lo"] or r["d_int90"]
            hi = r["d_int90_hi"] or r["d_max"] or r["d_int90"]
            err = [[max(r["d_int90"] - lo, 0)], [max(hi - r["d_int90"], 0)]]
            ax.errorbar(r["d_int90"], y, xerr=err, fmt="o", color=color, capsize=3)
            ours = True
        elif r["d_max"]:
            ax.plot(r["d_max"], y, ">", color=color)
        if r["d_int100"]:
            ax.plot(r["d_int100"], y, "^", color="tab:green", ms=7)
            solved = True
        if r["paper_d_int"]:
            ax.plot(r["paper_d_int"], y, "s", mfc="none", mec="k", ms=8)
            paper = True
    kinds = {r["supervised"] for r in rows}
    if True in kinds:
        ax.plot([], [], "o", color="tab:blue", label="ours, supervised (d_int90, 90 % CI)")
    if False in kinds:
        ax.plot([], [], "o", color="tab:red", label="ours, RL (d_int90, 90 % CI)")
    if solved:
        ax.plot([], [], "^", color="tab:green", label="ours, RL d_int100 (solved score)")
    if paper:
        ax.plot([], [], "s", mfc="none", mec="k", label="Li et al. 2018 (paper, its rule)")
    if not ours:
        ax.plot([], [], ">", color="gray", label="not reached: > max d")
    ax.set_xscale("log")
    xs = [
        float(v)
        for r in rows
        for v in (r["d_int90"], r["d_int90_lo"], r["d_int90_hi"], r["paper_d_int"], r["d_int100"])
        + ((r["d_max"],) if not r["d_int90"] else ())
        if v
    ]
    if xs:
        ax.set_xlim(min(xs) / 2, max(xs) * 2)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlabel("intrinsic dimension d_int90 (log scale, number of subspace dims)")
    ax.set_ylabel("task / network / algorithm")
    ax.set_title("Task difficulty by intrinsic dimension")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def compare_figure(groups: list[dict[str, Any]], supervised: bool, title: str) -> Any:
    """Figures 3 and 4: several groups' curves on one axis (baseline lines per group)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for g in groups:
        plot_curve(ax, g, supervised, lines=False)
        if g["baseline"]["mean"] is not None:
            ax.axhline(g["baseline"]["mean"], color=ax.lines[-1].get_color(), lw=0.8, ls="--")
    if groups and groups[0]["solved_score"] is not None:
        ax.axhline(groups[0]["solved_score"], color="g", ls=":", lw=1.2, label="solved score")
    ax.plot([], [], "k--", lw=0.8, label="direct baselines (dashed)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def comparisons(groups: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(file stem, title, groups) for figures 3 (ES vs PG) and 4 (projection kinds)."""
    out = []
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in groups:
        by_task[g["task"]].append(g)
    for task, gs in by_task.items():
        es = [g for g in gs if g["algorithm"] in ("es", "cmaes")]
        pg = [g for g in gs if g["algorithm"] in PG_ALGORITHMS]
        if es and pg:
            out.append((f"es_vs_pg_{task}", f"{task}: ES against policy gradients", es + pg))
    by_net: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for g in groups:
        by_net[(g["task"], g["network"], g["algorithm"])].append(g)
    for (task, net, algo), gs in by_net.items():
        if len({g["projection"] for g in gs}) > 1:
            out.append(
                (f"projections_{task}_{net}_{algo}", f"{task} {net} {algo}: projections", gs)
            )
    return out


# ------------------------------------------------------------------- output
def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed: `rlsub ARGS` when run through the rlsub entry point."""
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else ""
    if prog in ("rlsub", "cli.py", "__main__.py"):
        return "rlsub " + shlex.join(argv[1:])
    return shlex.join(argv)


def build_report(
    records: list[TrialRecord], out: str | Path, stores: Sequence[str | Path], command: str
) -> dict[str, Any]:
    """Estimate, write tables, figures and COMMANDS.md into `out`; returns rows and paths."""
    from rlsub.estimate import estimate_all

    plt = _plt()
    groups = estimate_all(records)
    rows, ref_text = build_rows(records, groups)
    sup = {r["config_hash"]: r["supervised"] for r in rows}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RlsubError(f"{out}: exists and is not a directory (--out)")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    md = markdown_table(rows, ref_text)
    for name, text in (
        ("difficulty.md", md),
        ("difficulty.csv", csv_table(rows)),
        ("difficulty.tex", latex_table(rows, ref_text)),
    ):
        (out / name).write_text(text)
        files[name] = str(out / name)
    figs = [("curves", curves_figure(groups, sup)), ("difficulty", difficulty_figure(rows))]
    for stem, title, gs in comparisons(groups):
        figs.append((stem, compare_figure(gs, sup[gs[0]["config_hash"]], title)))
    figures = []
    for stem, fig in figs:
        for ext in FORMATS:
            path = out / f"{stem}.{ext}"
            fig.savefig(path, dpi=120)
            figures.append(str(path))
        plt.close(fig)
    (out / "COMMANDS.md").write_text(
        "# How these files were made\n\n```\n"
        + command
        + "\n```\n\nStores: "
        + ", ".join(str(s) for s in stores)
        + "\n\nFiles: "
        + ", ".join(Path(p).name for p in [*files.values(), *figures])
        + "\n"
    )
    files["COMMANDS.md"] = str(out / "COMMANDS.md")
    return {
        "stores": [str(s) for s in stores],
        "out": str(out),
        "reference": ref_text,
        "rows": rows,
        "tables": files,
        "figures": figures,
        "markdown": md,
    }


def format_report(r: dict[str, Any]) -> str:
    """Human-readable: the Markdown table and the written files."""
    paths = [*r["tables"].values(), *r["figures"]]
    return r["markdown"] + "\nwritten:\n" + "\n".join(f"  {p}" for p in paths)


def report(stores: Sequence[str | Path], out: str | Path, command: str) -> dict[str, Any]:
    """Load `stores` and write the report into `out`."""
    return build_report(load_records(stores), out, stores, command)


def cli_report(args: argparse.Namespace) -> None:
    """`rlsub report STORE... [--out DIR] [--json]`."""
    from rlsub.cli import emit

    result = report(args.stores, args.out, command_line())
    emit(args, result, format_report)


def _record_env(rec: dict[str, Any]) -> Any | None:
    """The env spec of a record's config, or None (supervised, or the spec is not loadable)."""
    from rlsub.envs import load_env_spec

    cfg = rec.get("config") or {}
    env = cfg.get("env") or rec.get("task")  # records without their config name the env as task
    if not env:
        return None
    try:
        return load_env_spec(env, cfg.get("env_variant"))
    except RlsubError:
        return None


def load_record_file(path: str | Path) -> dict[str, Any]:
    """A record written by `rlsub train --json` (one JSON object); one clear error otherwise."""
    p = Path(path)
    if not p.is_file():
        raise RlsubError(f"{p}: no such record file (write one with rlsub train ... --json > FILE)")
    try:
        rec = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RlsubError(f"{p}: not a JSON record from rlsub train --json") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("curve"), list) or not rec["curve"]:
        raise RlsubError(
            f"{p}: no learning curve in this file (expected rlsub train --json output)"
        )
    return rec


def learning_curves_figure(records: list[dict[str, Any]]) -> tuple[Any, str]:
    """Evaluation return against env steps (emulator frames for frame-skipping envs)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xlabel = "agent steps"
    refs: dict[str, float] = {}
    for rec in records:
        spec = _record_env(rec)
        skip = int(spec.kwargs.get("frameskip", 1)) if spec is not None else 1
        if skip > 1:
            xlabel = f"emulator frames (agent steps x {skip})"
        xs = [p["step"] * skip for p in rec["curve"]]
        d = "direct" if rec.get("direct") else f"d = {rec['d']:,}"
        label = f"{rec['name']} {d} seed {rec['seed']}"
        (ln,) = ax.plot(xs, [p["value"] for p in rec["curve"]], "o-", label=f"{label}: centre")
        if all("train_mean" in p for p in rec["curve"]):
            ax.plot(
                xs,
                [p["train_mean"] for p in rec["curve"]],
                "--",
                color=ln.get_color(),
                alpha=0.6,
                label=f"{label}: population mean (training games)",
            )
        if spec is not None:
            refs[f"solved score ({spec.solved_score:g})"] = spec.solved_score
            if spec.random_score is not None:
                refs[f"random policy ({spec.random_score:g})"] = spec.random_score
    for (name, y), style in zip(refs.items(), (":", "-."), strict=False):
        ax.axhline(y, color="gray", ls=style, lw=1, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_ylabel(False))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig, xlabel


def cli_curves(args: argparse.Namespace) -> None:
    """`rlsub curves RECORD.json... --out FILE.png`: learning curves of single trials."""
    from rlsub.cli import emit

    records = [load_record_file(p) for p in args.records]
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".pdf"):
        raise RlsubError(f"--out {out}: give a .png or .pdf file name (both are written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    fig, xlabel = learning_curves_figure(records)
    paths = []
    for ext in FORMATS:
        path = out.with_suffix(f".{ext}")
        fig.savefig(path, dpi=120)
        paths.append(str(path))
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
