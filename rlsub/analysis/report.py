"""Cross-task difficulty tables and plots from results stores, and `rlsub report`.

Everything here is a pure function from trial records / estimates (`rlsub.analysis.estimate`)
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

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsub.analysis.budget import budget_curve, budget_figure
from rlsub.analysis.figures import (
    FORMATS,
    compare_figure,
    comparisons,
    curves_figure,
    difficulty_figure,
    pyplot,
    width_figure,
)
from rlsub.analysis.group import Group
from rlsub.analysis.ratios import difficulty_ratios, ratios_markdown
from rlsub.analysis.rows import build_rows, paper_rows, reference_group
from rlsub.analysis.tables import csv_table, latex_table, markdown_table
from rlsub.core.errors import RlsubError
from rlsub.experiment.record import TrialRecord


# ------------------------------------------------------------------- inputs
def load_records(stores: Sequence[str | Path], pool: bool = False) -> list[TrialRecord]:
    """Finished records of every store; one `RlsubError` for a missing or empty one.

    Trials of one config found in several stores are never pooled silently: each store
    gives its own row (the config hash gets the store's name, ``HASH@STORE``, and the
    label says which store), unless `pool` is true; a pooled row's notes name its stores.
    """
    from rlsub.experiment.store import Store

    if not stores:
        raise RlsubError("report: no results store given")
    per_store: list[tuple[str, list[TrialRecord]]] = []
    for path in stores:
        with Store(path, readonly=True) as store:
            recs = store.records()
        if not recs:
            raise RlsubError(f"{path}: no finished trials in this results store")
        per_store.append((str(path), recs))
    where: dict[str, list[str]] = {}
    for path, recs in per_store:
        for h in dict.fromkeys(r.config_hash for r in recs):
            where.setdefault(h, []).append(path)
    out: list[TrialRecord] = []
    for path, recs in per_store:
        for r in recs:
            shared = where[r.config_hash]
            if len(shared) > 1 and pool:
                r.info = {**r.info, "pooled_from": shared}
            elif len(shared) > 1:
                r.info = {**r.info, "store": Path(path).name}
                r.config_hash = f"{r.config_hash}@{Path(path).name}"
        out.extend(recs)
    return out


# ------------------------------------------------------------------- output
def save_figure(fig: Any, base: Path) -> list[str]:
    """`fig` as base.png and base.pdf (FORMATS: the extension appended to base's name);
    the PDF without a creation date, so the same stores give the same bytes. The paths."""
    paths = []
    for ext in FORMATS:
        path = base.parent / f"{base.name}.{ext}"
        fig.savefig(path, dpi=120, metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(str(path))
    return paths


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed: `rlsub ARGS` when run through the rlsub entry point."""
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else ""
    if prog in ("rlsub", "cli.py", "__main__.py"):
        return "rlsub " + shlex.join(argv[1:])
    return shlex.join(argv)


def build_report(
    records: list[TrialRecord],
    out: str | Path,
    stores: Sequence[str | Path],
    command: str,
    paper: bool = False,
) -> dict[str, Any]:
    """Estimate, write tables, figures and COMMANDS.md into `out`; returns rows and paths."""
    from rlsub.analysis.estimate import estimate_all

    plt = pyplot()
    groups = estimate_all(records)
    rows, ref_text = build_rows(records, groups)
    if paper:  # the paper's rows not measured here stay in the table, saying why
        rows += paper_rows(rows)
    sup = {r["config_hash"]: r["supervised"] for r in rows}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RlsubError(f"{out}: exists and is not a directory (--out)")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    md = markdown_table(rows, ref_text)
    ref = reference_group(groups, records)
    ratios = difficulty_ratios(groups, rows, ref["config_hash"] if ref else None)
    if ratios:
        md += (
            "\n## How many times easier than the reference\n\n"
            + "\n".join(ratios_markdown(ratios))
            + "\n\nEach ratio is the reference's d_int90 over the row's d_int, draw by draw "
            "from the two rows' posteriors (rlsub.analysis.ratios): median and central 90 %; "
            "'unbounded' where draws never cross within a grid. Paper: Li et al. 2018's "
            "ratio for the same comparison (MNIST FC 750 over InvertedPendulum's 4 or "
            "Pong's 6,000, whatever the task versions; between supervised rows that each "
            "carry a paper value, the ratio of the two, as MNIST FC 750 over LeNet 290). "
            "'the paper's lines': both rows at the paper's protocol, each estimated under "
            "the paper's own line (for MNIST its 0.9 test accuracy, not 0.9 x our "
            "baseline), the paper's comparison by its own rules.\n"
        )
    for name, text in (
        ("difficulty.md", md),
        ("difficulty.csv", csv_table(rows)),
        ("difficulty.tex", latex_table(rows, ref_text)),
    ):
        (out / name).write_text(text)
        files[name] = str(out / name)
    titles = {r["config_hash"]: r["label"] for r in rows}
    figs = [("curves", curves_figure(groups, sup, titles)), ("difficulty", difficulty_figure(rows))]
    for stem, title, gs in comparisons(groups):
        figs.append((stem, compare_figure(gs, sup[gs[0]["config_hash"]], title)))
    for task, gs in width_series(groups).items():
        figs.append((f"width_{task}", width_figure(gs)))
    budgets = budget_series(records, rows)
    if budgets:
        (out / "budget.md").write_text(budget_table(budgets))
        files["budget.md"] = str(out / "budget.md")
        figs.append(("budget", budget_figure(budgets)))
    figures = []
    for stem, fig in figs:
        figures += save_figure(fig, out / stem)
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
        "budgets": budgets,
        "ratios": ratios,
    }


def budget_series(
    records: list[TrialRecord], rows: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """d_int90 against epochs for every supervised row trained more than one epoch."""
    by_hash: dict[str, list[TrialRecord]] = {}
    for r in records:
        by_hash.setdefault(r.config_hash, []).append(r)
    out = {}
    for row in rows:
        measured = row["supervised"] and not row.get("not_measured")
        pts = budget_curve(by_hash[row["config_hash"]]) if measured else []
        if len(pts) > 1:
            out[row["label"]] = pts
    return out


def budget_table(series: dict[str, list[dict[str, Any]]]) -> str:
    """The budget curve as Markdown: one line per (row, epochs)."""
    from rlsub.analysis.text import headline

    lines = [
        "# d_int90 against the training budget",
        "",
        "Each trial's test accuracy after k epochs taken as its score (the baseline's too), "
        "then the same estimator (rlsub.analysis.budget).",
        "",
        "| row | epochs | baseline accuracy | d_int90 [90% CI] | grid d_int90 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, pts in series.items():
        for p in pts:
            text = headline(p["estimate"] or None, p["d_min"], p["d_max"])
            lines.append(
                f"| {label} | {p['epochs']} | {p['baseline']:.4g} | {text} | {p['grid'] or '-'} |"
            )
    return "\n".join(lines) + "\n"


def width_series(groups: list[Group]) -> dict[str, list[Group]]:
    """Groups of one task, algorithm, projection and network at several sizes D (width
    variants of one network, not two networks: MNIST FC and LeNet are no series), keyed
    by a file-name stem (task_algorithm_projection, with the network's name inserted
    where two networks of one such triple each form a series); only series with at
    least two sizes that have a d_int90 to draw (a size without one, as a sweep with no
    baseline yet, would leave a one-point "series" that hides the other width)."""
    by: dict[tuple[str, str, str, str], list[Group]] = {}
    for g in groups:
        e = g["d_int90"]
        if e is None or e["headline_side"] != "in":  # the table gives it no number to draw
            continue
        by.setdefault((g["task"], g["algorithm"], g["projection"], g["network"]), []).append(g)
    series = {k: gs for k, gs in sorted(by.items()) if len({g["D"] for g in gs}) >= 2}
    out = {}
    for (task, algo, proj, net), gs in series.items():
        shared = sum(1 for k in series if k[:3] == (task, algo, proj)) > 1
        parts = (task, algo, net, proj) if shared else (task, algo, proj)
        out["_".join(s.replace(":", "-").replace("/", "-") for s in parts)] = gs
    return out


def format_report(r: dict[str, Any]) -> str:
    """Human-readable: the Markdown table and the written files."""
    paths = [*r["tables"].values(), *r["figures"]]
    return r["markdown"] + "\nwritten:\n" + "\n".join(f"  {p}" for p in paths)


def report(
    stores: Sequence[str | Path],
    out: str | Path,
    command: str,
    pool: bool = False,
    paper: bool = False,
) -> dict[str, Any]:
    """Load `stores` (one config in several stores: one row each unless `pool`) and write
    the report into `out`."""
    return build_report(load_records(stores, pool), out, stores, command, paper)


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
