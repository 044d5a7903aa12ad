"""Difficulty-table rows from estimated groups, and the table in Markdown, CSV and LaTeX.
Pure functions from data to strings.

Imports: analysis.estimate, experiment, core.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from rlsub.analysis import paper
from rlsub.analysis.estimate import INTERVAL_METHOD, CurvePoint, estimate
from rlsub.experiment.record import TrialRecord

PG_ALGORITHMS = ("ppo", "a2c", "dqn")
COLUMNS = [
    "label",
    "task",
    "network",
    "algorithm",
    "projection",
    "D",
    "trained_directly",
    "seeds",
    "trials",
    "failed",
    "d_int90",
    "d_int90_lo",
    "d_int90_hi",
    "d_int90_grid",
    "d_int90_grid_lo",
    "d_int90_grid_hi",
    "d_int90_line",
    "d_int100",
    "d_int100_lo",
    "d_int100_hi",
    "d_int100_grid",
    "d_int100_grid_lo",
    "d_int100_grid_hi",
    "compression",
    "difficulty",
    "paper_d_int",
    "paper_rule",
    "paper_rule_ours",
    "paper_rule_ours_lo",
    "paper_rule_ours_hi",
    "d_min",
    "d_max",
    "budget",
    "wall_s",
    "name",
    "config_hash",
]


def is_supervised(recs: Iterable[TrialRecord]) -> bool:
    return any((r.config or {}).get("dataset") for r in recs)


def _budget(recs: list[TrialRecord], supervised: bool) -> str:
    cfg = next((r.config for r in recs if r.config), {}) or {}
    train = cfg.get("train") or {}
    if supervised:
        return f"{train['epochs']} epochs" if "epochs" in train else "-"
    for key, unit in (("total_timesteps", "steps"), ("generations", "generations")):
        if key in train:
            return f"{train[key]:,} {unit}"
    return "-"


def row_label(recs: list[TrialRecord], g: dict[str, Any]) -> str:
    """What distinguishes the row: task (variant included), algorithm, network, and for PG
    which parts are in the subspace, with the budget."""
    cfg = next((r.config for r in recs if r.config), {}) or {}
    train = cfg.get("train") or {}
    hidden = ((cfg.get("network") or {}).get("kwargs") or {}).get("hidden")
    net = g["network"] + (" " + "-".join(map(str, hidden)) if hidden else "")
    bits = [g["task"], g["algorithm"], net]
    if g["algorithm"] in ("ppo", "a2c"):
        bits.append(f"parts: {train.get('parts', 'actor')}")
    bits.append(_budget(recs, is_supervised(recs)))
    return " / ".join(bits)


# --------------------------------------------------------------------- rows
def _est(e: dict[str, Any] | None) -> dict[str, Any]:
    """Headline (interpolated) and grid numbers of one estimate; None where there is none."""
    out: dict[str, Any] = dict.fromkeys(("d", "lo", "hi", "grid", "grid_lo", "grid_hi"))
    out["line"], out["note"], out["open"] = "", "", False
    if e is None:
        return out
    out["line"], out["note"] = e.get("line", ""), e["note"]
    if e["d_int"] is None:
        return out  # not reached: no number
    glo, ghi = e["interval"] or (None, None)
    ilo, ihi = e["interpolated_interval"] or (None, None)
    out.update(grid=e["d_int"], grid_lo=glo, grid_hi=ghi)
    # the interpolated crossing is the headline; with every d above the line it is the
    # grid's smallest d, an upper bound
    out.update(d=e["interpolated"] if e["interpolated"] is not None else e["d_int"])
    out.update(lo=ilo, hi=ihi, open=e["interpolated"] is None)
    return out


def reference_group(groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """MNIST FC when measured (d_int90 found), else digits, else None."""
    for task, net in (("mnist", "fc_mnist"), ("digits", None)):
        for g in groups:
            e = g.get("d_int90") or {}
            if g["task"] == task and net in (None, g["network"]) and e.get("d_int"):
                return g
    return None


def _paper_cells(g: dict[str, Any], recs: list[TrialRecord], row: dict[str, Any]) -> None:
    """The paper's value for this row (only a matching row), and ours under its line."""
    cfg = next((r.config for r in recs if r.config), {}) or {}
    pv = paper.match(row, (cfg.get("network") or {}).get("kwargs"))
    row.update(paper_d_int=None, paper_rule="", paper_rule_ours=None)
    row.update(paper_rule_ours_lo=None, paper_rule_ours_hi=None)
    if pv is None:
        return
    row.update(paper_d_int=pv.value, paper_rule=pv.text)
    target = paper.paper_target(pv, g["baseline"]["mean"])
    if target is None:
        return
    points = [CurvePoint(**c) for c in g["curve"]]
    base = g.get("baseline_scores") if pv.line == "baseline" else None
    e = estimate(points, target, "paper", g["rule"], base, pv.level if base else None)
    ours = _est(asdict(e))
    row.update(paper_rule_ours=ours["d"], paper_rule_ours_lo=ours["lo"])
    row.update(paper_rule_ours_hi=ours["hi"])


def build_rows(
    records: list[TrialRecord], groups: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """One row per estimate group (columns `COLUMNS`) and the reference-task sentence."""
    by_hash: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        by_hash[r.config_hash].append(r)
    ref = reference_group(groups)
    ref_e = _est(ref["d_int90"]) if ref else None
    ref_d = ref_e["d"] if ref_e else None
    ref_text = (
        f"difficulty = d_int90 / d_int90 of {ref['task']} {ref['network']} ({ref_d:.4g})"
        if ref and ref_d
        else "difficulty: no reference task (MNIST FC or digits) with a d_int90 in these stores"
    )
    rows = []
    labels: dict[str, int] = defaultdict(int)
    for g in groups:
        recs = by_hash[g["config_hash"]]
        sub = [r for r in recs if not r.direct]
        e90, e100 = _est(g.get("d_int90")), _est(g.get("d_int100"))
        ds = sorted({r.d for r in sub})
        row: dict[str, Any] = {
            "label": row_label(recs, g),
            "task": g["task"],
            "network": g["network"],
            "algorithm": g["algorithm"],
            "projection": g["projection"],
            "D": g["D"],
            "trained_directly": g.get("trained_directly", 0),
            "seeds": len(g.get("seeds") or {r.seed for r in sub}),
            "trials": g["trials"],
            "failed": g["failed"],
            "compression": g["D"] / e90["d"] if e90["d"] else None,
            "difficulty": e90["d"] / ref_d if e90["d"] and ref_d else None,
            "d_min": ds[0] if ds else None,
            "d_max": ds[-1] if ds else None,
            "budget": _budget(recs, is_supervised(recs)),
            "wall_s": sum(r.wall_s for r in recs),
            "supervised": is_supervised(recs),
            "name": g["name"],
            "config_hash": g["config_hash"],
        }
        for kind, e in (("d_int90", e90), ("d_int100", e100)):
            row[kind], row[f"{kind}_lo"], row[f"{kind}_hi"] = e["d"], e["lo"], e["hi"]
            row[f"{kind}_grid"], row[f"{kind}_grid_lo"] = e["grid"], e["grid_lo"]
            row[f"{kind}_grid_hi"] = e["grid_hi"]
            row[f"{kind}_line"], row[f"{kind}_note"] = e["line"], e["note"]
            row[f"{kind}_open"] = e["open"]
        _paper_cells(g, recs, row)
        labels[row["label"]] += 1
        rows.append(row)
    for row in rows:  # two rows the label cannot tell apart: add the config name
        if labels[row["label"]] > 1:
            row["label"] += f" ({row['name']})"
    return rows, ref_text


# ------------------------------------------------------------------- tables
def _n(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def _interval(d: float | None, lo: float | None, hi: float | None, d_max: int | None) -> str:
    """'d [lo, hi]' with an open end said in words; no number where nothing crossed."""
    if d is None:
        return f"not reached (> {_n(d_max)})" if d_max else "-"
    hi_s = "beyond the grid" if hi is None else _n(hi)
    lo_s = "below the grid" if lo is None else _n(lo)
    return f"{_n(d)} [{lo_s}, {hi_s}]"


def display_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and string cells shared by the Markdown and LaTeX tables."""
    head = [
        "row",
        "D",
        "params outside the subspace",
        "seeds (failed)",
        "d_int90 [90% CI]",
        "grid d_int90",
        "d_int100 [90% CI]",
        "grid d_int100",
        "D/d_int90",
        "difficulty",
        "paper d_int (ours by its line)",
    ]
    cells = []
    for r in rows:
        paper = ""
        if r["paper_d_int"]:
            ours = _interval(
                r["paper_rule_ours"], r["paper_rule_ours_lo"], r["paper_rule_ours_hi"], r["d_max"]
            )
            paper = f"{_n(r['paper_d_int'])} ({ours})"
        has100 = bool(r["d_int100_line"])
        cells.append(
            [
                r["label"],
                _n(r["D"]),
                _n(r["trained_directly"]),
                f"{r['seeds']} ({r['failed']})",
                _interval(r["d_int90"], r["d_int90_lo"], r["d_int90_hi"], r["d_max"]),
                _interval(
                    r["d_int90_grid"], r["d_int90_grid_lo"], r["d_int90_grid_hi"], r["d_max"]
                ),
                _interval(r["d_int100"], r["d_int100_lo"], r["d_int100_hi"], r["d_max"])
                if has100
                else "-",
                _interval(
                    r["d_int100_grid"], r["d_int100_grid_lo"], r["d_int100_grid_hi"], r["d_max"]
                )
                if has100
                else "-",
                f"{r['compression']:.3g}" if r["compression"] else "-",
                f"{r['difficulty']:.3g}x" if r["difficulty"] else "-",
                paper,
            ]
        )
    return head, cells


def footnotes(rows: list[dict[str, Any]], ref_text: str) -> list[str]:
    """The table's legend: every rule the numbers follow, and what is not shown, and why."""

    def by_line(kind: str) -> str:  # "line for row, row; line for row"
        rows_of: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            if r[f"{kind}_line"]:
                rows_of[r[f"{kind}_line"]].append(r["label"])
        return "; ".join(f"{ln} for {', '.join(labels)}" for ln, labels in sorted(rows_of.items()))

    total = sum(r["wall_s"] for r in rows)
    notes = [
        f"{ref_text}.",
        "d_int90 [90% CI]: the d at which the mean-over-seeds score crosses the line, "
        "interpolated in log d between grid points, with a 90 % interval "
        f"({INTERVAL_METHOD}); 'beyond the grid' / 'below the grid': an end of the interval "
        "lies past the largest / below the smallest d swept; 'not reached': no d reaches the line, so no number is given.",
        "grid d_int90: the smallest grid d from which the mean stays at or above the line, "
        "with the interval's ends moved up to grid points (as coarse as the grid).",
        "Lines, the score each row's mean must reach: d_int90: "
        + (by_line("d_int90") or "none")
        + " (RL: random = the env spec's random-policy score; supervised: the paper's "
        "0.9 x baseline); d_int100 (the env's solved score): "
        + (by_line("d_int100") or "none")
        + ".",
        "Failed or diverged trials count at the task's floor score (RL: random score; "
        "supervised: chance accuracy) in every mean; 'seeds (failed)' gives how many.",
        "params outside the subspace: how many parameters train directly beside z, a count, "
        "not a score (0 for a faithful row; PG rows with parts: actor train their critic "
        "directly and are labelled so). 'baseline' in the lines is the same network trained "
        "directly, all D parameters, same budget.",
        "paper d_int: Li et al. 2018 (ICLR), set only beside a row of the same task version, "
        "network and algorithm; in brackets our estimate under the paper's own line. "
        "No row here matches: " + "; ".join(paper.UNMATCHED) + ".",
        f"Budget and seeds per row are in its label; total trial wall time {total:.4g} s.",
    ]
    return notes


def markdown_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The table itself, header and rows, as Markdown lines (no title, no legend)."""
    head, cells = display_rows(rows)
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    return lines + ["| " + " | ".join(c) + " |" for c in cells]


def markdown_table(rows: list[dict[str, Any]], ref_text: str) -> str:
    """The cross-task difficulty table in Markdown, with its legend."""
    lines = ["# Intrinsic dimension: cross-task difficulty", "", *markdown_rows(rows)]
    lines += [""] + [f"- {n}" for n in footnotes(rows, ref_text)]
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
        r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}",
        r"\toprule",
        " & ".join(_tex(h) for h in head) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in cells]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{Intrinsic dimension per task. "
        + _tex(" ".join(footnotes(rows, ref_text)))
        + "}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
