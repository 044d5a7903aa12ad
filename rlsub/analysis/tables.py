"""Difficulty-table rows from estimated groups, and the table in Markdown, CSV and LaTeX.
Pure functions from data to strings.

Imports: analysis.estimate, experiment, core.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rlsub.experiment.record import TrialRecord

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
