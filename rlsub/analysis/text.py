"""`rlsub dint`'s text: one estimate on a line, one group as a small report.

Pure functions from `rlsub.analysis.estimate` results (dicts) to strings.

Imports: nothing of rlsub.
"""

from __future__ import annotations

from typing import Any


# ---------------------------------------------------------------- text output
def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def format_estimate(e: dict[str, Any] | None) -> str:
    """One line: d_int, interval, interpolated crossing, notes."""
    if e is None:
        return "-"
    lo, hi = e["interval"] or (None, None)
    ilo, ihi = e["interpolated_interval"] or (None, None)
    p = f"{100 * e['level']:g}%"
    if e["d_int"] is None:
        reached = e.get("reached_fraction")
        share = "" if reached is None else f"; {100 * reached:.0f} % of posterior draws reach it"
        return f"no estimate: {e['note']}{share}"
    if e["interpolated"] is None:
        head = f"{e['d_int']} (every grid d reaches the line: an upper bound)"
    else:
        head = (
            f"{_fmt(e['interpolated'])} [{'below the grid' if ilo is None else _fmt(ilo)}, "
            f"{'beyond the grid' if ihi is None else _fmt(ihi)}]"
            f" ({p})"
        )
    text = (
        f"{head}; grid {e['d_int']} [{_fmt(lo)}, {'beyond the grid' if hi is None else _fmt(hi)}]"
    )
    if e["posterior_mean"] is not None:
        text += f", posterior {e['posterior_mean']:.4g} +- {_fmt(e['posterior_std'], 3)}"
    text += f"; {e['note']}"
    if not e["monotone"]:
        text += f" (non-monotone: first crossing at {e['first_crossing']})"
    return text


def format_group(g: dict[str, Any]) -> str:
    """Human-readable summary of one `estimate_group` result."""
    b = g["baseline"]
    lines = [
        f"{g['name']} [{g['config_hash']}]: {g['task']} / {g['network']} / {g['algorithm']} / "
        f"{g['projection']}  D={g['D']:,}  rule={g['rule']}",
        f"  baseline {_fmt(b['mean'])} +- {_fmt(b['std'], 3)} (n={b['n']}, failed {b['failed']})"
        + (f"   solved score {g['solved_score']:g}" if g["solved_score"] is not None else ""),
        "  d        mean       std    n  failed",
    ]
    for p in g["curve"]:
        lines.append(
            f"  {p['d']:<8d} {_fmt(p['mean']):>9} {_fmt(p['std'], 3):>9} {p['n']:>4} {p['failed']:>7}"
        )
    line90 = (g["d_int90"] or {}).get("line") or f"{g['threshold']:g} x baseline"
    lines.append(f"  d_int90  (line: {line90}): {format_estimate(g['d_int90'])}")
    lines.append(f"  d_int100 (line: solved score): {format_estimate(g['d_int100'])}")
    lines += [f"  note: {n}" for n in g["notes"]]
    lines.append(
        f"  trials {g['trials']}, failed {g['failed']} (counted at the floor score "
        f"{g['floor']:.4g}); trained directly {g['trained_directly']:,} parameters"
    )
    return "\n".join(lines)
