"""The paper's claims as numbers with intervals: how many times easier one row is than
another, from the two rows' posterior draws.

"The inverted pendulum is about 100 times easier than MNIST" (Li et al. 2018) compares
InvertedPendulum's d_int100 (4) with MNIST FC's d_int90 (750; LeNet 290). Here every
such ratio is ``d_int of the reference row / d_int of the row``, computed draw by draw
from the two posteriors (`posterior_draws`; the second row's draws shuffled so
that the two are independent), with the median and the central 90 % of the ratios.
A row whose draws never cross within its grid gives an open end ("beyond").

The reference row is the table's (MNIST FC when measured, else digits); every RL row is
compared by its d_int90 and, where the paper compared by it, its d_int100. Where the
paper made the comparison and both rows are at its protocol, one more ratio is taken
under the paper's own lines (its 0.9 test accuracy for MNIST where ours is 0.9 x our
baseline; for the RL rows its lines are ours): the paper's claim, tested by its rules.

Imports: analysis.estimate, analysis.interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlsub.analysis.group import KINDS, EstimateDict, Group, estimate_of
from rlsub.analysis.interval import DRAWS, LEVEL, crossing_interval

# the paper's own ratios, by (reference task, row task): its d_int values and their kinds
PAPER_CLAIMS: dict[tuple[str, str], tuple[str, float, str, float]] = {
    ("mnist", "inverted_pendulum"): ("d_int90", 750.0, "d_int100", 4.0),
    ("mnist", "pong"): ("d_int90", 750.0, "d_int100", 6000.0),
}


def posterior_draws(g: Group, kind: str, draws: int = DRAWS) -> np.ndarray | None:
    """The posterior draws behind `g[kind]`'s headline and interval (an `estimate_group`
    result), drawn again from its curve: the crossing d of every draw, inf where the
    curve never crosses within the grid's reach. None where there is no estimate."""
    return estimate_draws(g, estimate_of(g, kind), draws)


def estimate_draws(g: Group, e: EstimateDict | None, draws: int = DRAWS) -> np.ndarray | None:
    """The posterior draws behind estimate `e` of `g`'s curve (one of `g`'s own, or the
    row's under the paper's line); None where `e` has no interval."""
    if not e or e["interpolated_interval"] is None:
        return None
    pts = [c for c in g["curve"] if c["n"] > 0 and c["d"] != e["collapse"]]
    carried = e["threshold"] is not None  # the estimate's own record of its line
    c = crossing_interval(
        [p["d"] for p in pts],
        [p["scores"] for p in pts],
        floor=e["score_floor"],
        target=e["target"],
        baseline_scores=g["baseline_scores"] if carried else None,
        threshold=e["threshold"],
        line_floor=e["line_floor"],
        draws=draws,
    )
    return None if c.draws is None else np.asarray(c.draws)


def ratio(
    num: np.ndarray, den: np.ndarray, level: float = LEVEL, seed: int = 1
) -> dict[str, float | None]:
    """Median and central interval of num / den over independent pairs of draws; an end
    that involves draws that never cross is None (open)."""
    rng = np.random.default_rng(seed)
    n = min(len(num), len(den))
    with np.errstate(divide="ignore", invalid="ignore"):  # never-crossing draws: open ends
        r = num[:n] / rng.permutation(den)[:n]
    tail = (1.0 - level) / 2.0
    q = np.quantile(np.where(np.isfinite(r), r, np.inf), [tail, 0.5, 1.0 - tail])

    def finite(x: float) -> float | None:
        return float(x) if np.isfinite(x) and x > 0 else None

    return {"lo": finite(q[0]), "median": finite(q[1]), "hi": finite(q[2])}


def difficulty_ratios(
    groups: list[Group], rows: list[dict[str, Any]], ref_hash: str | None
) -> list[dict[str, Any]]:
    """For every row but the reference: reference d_int90 / row d_int (90, and 100 where
    the row has it), with the paper's ratio where it made the same claim, and that claim
    once more under the paper's own lines where both rows are at its protocol."""
    by_hash = {g["config_hash"]: g for g in groups}
    ref = by_hash.get(ref_hash or "")
    if ref is None:
        return []
    ref_row = next(r for r in rows if r["config_hash"] == ref_hash)
    ref_draws = posterior_draws(ref, "d_int90")
    if ref_draws is None:
        return []
    ref_papers_draws = _papers_line_draws(ref, ref_row)
    out = []
    for row in rows:
        if row["config_hash"] == ref_hash or row.get("not_measured"):
            continue
        g = by_hash[row["config_hash"]]
        compared = _papers_comparison(ref, ref_row, row)
        for kind in KINDS:
            e = estimate_of(g, kind)
            if e is None or e["headline_side"] != "in":
                continue  # the table gives this row no number: nor does its ratio
            draws = posterior_draws(g, kind)
            if draws is None:
                continue
            paper = compared[1] if compared and compared[0] == kind else None
            out.append(_ratio_row(ref_row, row, kind, ratio(ref_draws, draws), paper))
        if compared is None or ref_papers_draws is None:
            continue
        draws = _papers_line_draws(g, row)
        if draws is not None:
            by = f"{compared[0]}, the paper's lines"
            out.append(_ratio_row(ref_row, row, by, ratio(ref_papers_draws, draws), compared[1]))
    return out


def _ratio_row(
    ref_row: dict[str, Any], row: dict[str, Any], kind: str, r: dict[str, Any], paper: float | None
) -> dict[str, Any]:
    return {"reference": ref_row["label"], "row": row["label"], "kind": kind, **r, "paper": paper}


def _papers_comparison(
    ref: Group, ref_row: dict[str, Any], row: dict[str, Any]
) -> tuple[str, float] | None:
    """The comparison the paper made between the reference and this row: the kind of
    d_int it took for the row and its ratio; None where it made none."""
    claim = PAPER_CLAIMS.get((ref["task"], row["task"]))
    if claim is not None:
        return claim[2], claim[1] / claim[3]
    if _supervised_pair(ref_row, row):  # both the paper's d_int90
        return "d_int90", ref_row["paper_d_int"] / row["paper_d_int"]
    return None


def _papers_line_draws(g: Group, row: dict[str, Any]) -> np.ndarray | None:
    """The draws of the row's estimate under the paper's line (`paper_rule_ours_est`, set
    only where the row is at the paper's protocol); None where it has none inside its grid."""
    e = row.get("paper_rule_ours_est")
    if e is None or e["headline_side"] != "in":
        return None
    return estimate_draws(g, e)


def _supervised_pair(ref_row: dict[str, Any], row: dict[str, Any]) -> bool:
    """Both rows supervised with a paper value of their own (the paper's d_int90 of that
    dataset, network and variant): the paper's ratio is the ratio of its two values."""
    return all(r.get("paper_d_int") and r.get("supervised") for r in (ref_row, row))


def ratios_markdown(ratios: list[dict[str, Any]]) -> list[str]:
    """The ratios as a Markdown table (lines), or [] when there are none."""
    if not ratios:
        return []

    def n(x: float | None, open_: str) -> str:
        return open_ if x is None else f"{x:.3g}"

    lines = [
        "| reference (d_int90) | row | by | times easier [90% CI] | paper |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in ratios:
        cell = f"{n(r['median'], 'unbounded')} [{n(r['lo'], 'open')}, {n(r['hi'], 'unbounded')}]"
        paper = "-" if r["paper"] is None else f"{r['paper']:.3g}"
        lines.append(f"| {r['reference']} | {r['row']} | {r['kind']} | {cell} | {paper} |")
    return lines
