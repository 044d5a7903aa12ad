"""The difficulty table in Markdown, CSV and LaTeX, from the rows of `analysis.rows`,
with its legend. Pure functions from data to strings.

Imports: analysis.rows, analysis.estimate, analysis.text.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from rlsub.analysis import paper
from rlsub.analysis.estimate import INTERVAL_METHOD
from rlsub.analysis.rows import COLUMNS
from rlsub.analysis.text import headline


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
        if r.get("not_measured"):  # a paper row this machine has not measured
            cell = f"not measured here: {r['not_measured']}"
            cells.append([r["label"], _n(r["D"]), "-", "-", cell, *["-"] * 5])
            cells[-1].append(_n(r["paper_d_int"]))
            continue
        paper = ""
        if r["paper_d_int"]:
            ours = headline(r["paper_rule_ours_est"], r["d_min"], r["d_max"])
            paper = f"{_n(r['paper_d_int'])} ({ours})"
        has100 = bool(r["d_int100_line"])
        cells.append(
            [
                r["label"],
                _n(r["D"]),
                _n(r["trained_directly"]),
                f"{r['seeds']} ({r['failed']})",
                headline(r["d_int90_est"], r["d_min"], r["d_max"]),
                _interval(r["d_int90_grid"], r["d_int90_grid_lo"], r["d_int90_grid_hi"], r["d_max"])
                if r["d_int90_est"]  # no estimate (no baseline): no grid value either
                else "-",
                headline(r["d_int100_est"], r["d_min"], r["d_max"]) if has100 else "-",
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
        "d_int90 [90% CI]: the median of the posterior draws of the d at which the mean "
        "score crosses the line, with the same draws' 90 % interval "
        f"({INTERVAL_METHOD}), so the number always lies inside its interval; "
        "'beyond the grid' / 'below the grid': an end of the interval lies past the largest "
        "/ below the smallest d swept; 'not reached (> d)': the median lies past the largest "
        "d swept, so no number is given; '< d': below the smallest.",
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
        "network and algorithm, trained with the paper's settings (the budget aside: each "
        "row gives its own); in brackets our estimate under the paper's own line. "
        "No row here matches: " + "; ".join(paper.UNMATCHED) + ".",
        f"Budget and seeds per row are in its label; total trial wall time {total:.4g} s.",
    ]
    for r in rows:  # what a reader must know about one row: dips, weak lines, floors
        notes += [f"{r['label']}: {n}" for n in r.get("notes", [])]
        if r.get("not_measured") and r.get("command", "-") != "-":
            notes.append(f"{r['label']}: not measured here; the command: `{r['command']}`")
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
