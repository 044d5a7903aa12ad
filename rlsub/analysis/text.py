"""`rlsub dint`'s text: one estimate on a line, one group as a small report.

Pure functions from `rlsub.analysis.estimate` results (`analysis.group`: typed dicts) to
strings.

Imports: analysis.group.
"""

from __future__ import annotations

from rlsub.analysis.group import EstimateDict, Group


# ---------------------------------------------------------------- text output
def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if float(x).is_integer() or abs(x) >= 1000:
        return f"{round(x):,}"
    return f"{x:.3g}"


def headline(e: EstimateDict | None, d_min: int | None, d_max: int | None) -> str:
    """The reported number of one estimate, as the tables print it: the posterior median
    with its 90 % interval ("d [lo, hi]"), or where the median falls off the grid
    "< smallest d" / "not reached (> largest d)", with what the interval still says."""
    if e is None:
        return "-"
    lo, hi = e.get("interpolated_interval") or (None, None)
    lo_s = "below the grid" if lo is None else _num(lo)
    hi_s = "beyond the grid" if hi is None else _num(hi)
    side, h = e.get("headline_side", "none"), e.get("headline")
    if side == "in" and h is not None:
        return f"{_num(h)} [{lo_s}, {hi_s}]" if e.get("interpolated_interval") else _num(h)
    if side == "below":
        return f"< {_num(d_min)} [{lo_s}, {hi_s}]" if hi is not None else f"<= {_num(d_min)}"
    if side == "beyond":
        reached = f"not reached (> {_num(d_max)})" if d_max else "not reached"
        return reached if lo is None else f"{reached} [{lo_s}, {hi_s}]"
    return "-"


def format_estimate(
    e: EstimateDict | None, d_min: int | None = None, d_max: int | None = None
) -> str:
    """One line: the headline with its interval, the grid's numbers, notes."""
    if e is None:
        return "-"
    lo, hi = e["interval"] or (None, None)
    p = f"{100 * e['level']:g}%"
    text = f"{headline(e, d_min, d_max)} ({p}, posterior median)"
    if e["d_int"] is None:
        text += "; grid: none"
    else:
        grid = f"{e['d_int']} [{_fmt(lo)}, {'beyond the grid' if hi is None else _fmt(hi)}]"
        text += f"; grid {grid}"
        if e["interpolated"] is not None:
            text += f", interpolated {_fmt(e['interpolated'])}"
    if e["posterior_mean"] is not None:
        text += f", posterior {e['posterior_mean']:.4g} +- {_fmt(e['posterior_std'], 3)}"
    reached = e.get("reached_fraction")
    if reached is not None and reached < 1:
        text += f"; {100 * reached:.0f} % of posterior draws cross within the grid"
    text += f"; {e['note']}"
    if not e["monotone"] and e["first_crossing"] is not None:
        text += f" (first crossing at {e['first_crossing']})"
    return text


def format_group(g: Group) -> str:
    """Human-readable summary of one `estimate_group` result."""
    b = g["baseline"]
    solved = g["solved_score"]
    lines = [
        f"{g['name']} [{g['config_hash']}]: {g['task']} / {g['network']} / {g['algorithm']} / "
        f"{g['projection']}  D={g['D']:,}  rule={g['rule']}",
        f"  baseline {_fmt(b['mean'])} +- {_fmt(b['std'], 3)} (n={b['n']}, failed {b['failed']})"
        + (f"   solved score {g['solved_score']:g}" if g["solved_score"] is not None else ""),
        "  d        mean       std    n  failed" + ("  solved" if solved is not None else ""),
    ]
    for p in g["curve"]:
        row = f"  {p['d']:<8d} {_fmt(p['mean']):>9} {_fmt(p['std'], 3):>9} {p['n']:>4} {p['failed']:>7}"
        if solved is not None:  # seeds at or above the solved score: the mean hides them
            k = sum(1 for x in p.get("scores", []) if x >= solved)
            row += f"  {k:>3}/{p['n']}"
        lines.append(row)
    e90 = g["d_int90"]
    line90 = (e90["line"] if e90 else "") or f"{g['threshold']:g} x baseline"
    ds = [p["d"] for p in g["curve"] if p["n"] > 0]
    lo, hi = (ds[0], ds[-1]) if ds else (None, None)
    lines.append(f"  d_int90  (line: {line90}): {format_estimate(g['d_int90'], lo, hi)}")
    lines.append(f"  d_int100 (line: solved score): {format_estimate(g['d_int100'], lo, hi)}")
    lines += [f"  note: {n}" for n in g["notes"]]
    lines.append(
        f"  trials {g['trials']}, failed {g['failed']} (counted at the floor score "
        f"{g['floor']:.4g}); trained directly {g['trained_directly']:,} parameters"
    )
    return "\n".join(lines)
