"""Difficulty-table rows from estimated groups: one dict per experiment (columns
`COLUMNS`), with its label, headline numbers, the paper's value and the notes a reader
needs; `paper_rows` adds the paper's rows not measured here. `analysis.tables` renders
them.

Imports: analysis.estimate, analysis.paper, experiment, algos.base.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rlsub.algos.base import known_trainer
from rlsub.analysis import paper
from rlsub.analysis.estimate import CurvePoint, as_dict, estimate
from rlsub.analysis.group import KINDS, EstimateDict, Group, estimate_of
from rlsub.experiment.record import TrialRecord

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
    for key, unit in (
        ("total_timesteps", "steps"),
        ("generations", "generations"),
        ("max_episodes", "episodes at most"),
    ):
        if key in train:
            return f"{train[key]:,} {unit}"
    return "-"


def row_label(recs: list[TrialRecord], g: Group) -> str:
    """What distinguishes the row: task (variant included), algorithm, network (its init
    where not PyTorch's), what its trainer says tells its rows apart (`Trainer.describe`:
    for PG, which parts are in the subspace; supervised, an L2 penalty), and the budget."""
    cfg = next((r.config for r in recs if r.config), {}) or {}
    train = cfg.get("train") or {}
    kwargs = (cfg.get("network") or {}).get("kwargs") or {}
    hidden, init = kwargs.get("hidden"), kwargs.get("init", paper.NET_DEFAULTS["init"])
    net = g["network"] + (" " + "-".join(map(str, hidden)) if hidden else "")
    net += f" init {init}" if init != paper.NET_DEFAULTS["init"] else ""  # theta0's draw
    bits = [g["task"], g["algorithm"], net]
    trainer = known_trainer(g["algorithm"])  # a store names code: only registered names
    if trainer is not None:
        bits += trainer.describe(train)
    bits.append(_budget(recs, is_supervised(recs)))
    return " / ".join(bits)


# --------------------------------------------------------------------- rows
def _est(e: EstimateDict | None) -> dict[str, Any]:
    """Headline (posterior median) and grid numbers of one estimate; None where there is none."""
    out: dict[str, Any] = dict.fromkeys(("d", "lo", "hi", "grid", "grid_lo", "grid_hi"))
    out["line"], out["note"], out["side"], out["est"] = "", "", "none", e
    if e is None:
        return out
    out["line"], out["note"], out["side"] = e["line"], e["note"], e["headline_side"]
    out["lo"], out["hi"] = e["interpolated_interval"] or (None, None)
    out["d"] = e["headline"] if e["headline_side"] == "in" else None
    if e["d_int"] is not None:
        glo, ghi = e["interval"] or (None, None)
        out.update(grid=e["d_int"], grid_lo=glo, grid_hi=ghi)
    return out


def reference_group(groups: list[Group], records: Iterable[TrialRecord] = ()) -> Group | None:
    """MNIST FC when measured (d_int90 found), else digits, else None; of several MNIST FC
    rows, the one at the paper's protocol (`records` give the configs), else the first."""
    configs = {r.config_hash: r.config or {} for r in records}
    for task, net in (("mnist", "fc_mnist"), ("digits", None)):
        found = [
            g
            for g in groups
            if g["task"] == task
            and net in (None, g["network"])
            and g["d_int90"]
            and g["d_int90"]["d_int"]
        ]
        if found:
            return next((g for g in found if _papers(g, configs.get(g["config_hash"]))), found[0])
    return None


def _papers(g: Group, cfg: dict[str, Any] | None) -> bool:
    """Is this row at the paper's protocol (its value would sit beside it)?"""
    pv, differs = _paper_value(dict(g), cfg or {})
    return pv is not None and not differs


def _paper_value(
    row: dict[str, Any], cfg: dict[str, Any]
) -> tuple[paper.PaperValue | None, list[str]]:
    """The paper's value matching a row's task and network, and how the row's config
    differs from the paper's protocol ([] where it does not, or where no value matches)."""
    kwargs = (cfg.get("network") or {}).get("kwargs")
    pv = paper.match(row, kwargs)
    return pv, [] if pv is None else paper.protocol_differences(pv, cfg.get("train"), kwargs)


def _paper_cells(g: Group, recs: list[TrialRecord], row: dict[str, Any]) -> None:
    """The paper's value for this row (only a matching row), and ours under its line."""
    cfg = next((r.config for r in recs if r.config), {}) or {}
    pv, differs = _paper_value(row, cfg)
    row.update(paper_d_int=None, paper_rule="", paper_rule_ours=None)
    row.update(paper_rule_ours_lo=None, paper_rule_ours_hi=None, paper_rule_ours_est=None)
    if pv is None:
        return
    if differs:  # the paper's task and network, trained otherwise: not its row
        row.setdefault("notes", []).append(
            f"not the paper's protocol ({', '.join(differs)}): its value {pv.value:,g} is "
            "not set beside this row"
        )
        return
    row.update(paper_d_int=pv.value, paper_rule=pv.text)
    base_mean = g["baseline"]["mean"]
    target = paper.paper_target(pv, base_mean)
    if target is None:
        return
    if pv.line == "fixed" and base_mean is not None and base_mean < target:
        row.setdefault("notes", []).append(  # a fact, no forecast: subspaces may still cross
            f"our directly trained network's mean ({base_mean:.4g}) is itself under the "
            f"paper's line ({target:.4g})"
        )
    points = [CurvePoint(**c) for c in g["curve"]]
    base = g["baseline_scores"] if pv.line == "baseline" else None
    # the paper's line has no random-score floor; the scale is ours (failed trials at
    # the group's floor), so where its line is ours (a solved score) the cells agree
    floor = float(g.get("floor") or 0.0)
    level = pv.level if base else None
    e = estimate(points, target, "paper", g["rule"], base, level, floor=0.0, score_floor=floor)
    ours = _est(as_dict(e))
    row.update(paper_rule_ours=ours["d"], paper_rule_ours_lo=ours["lo"])
    row.update(paper_rule_ours_hi=ours["hi"], paper_rule_ours_est=ours["est"])
    lo, hi = ours["lo"], ours["hi"]
    top = max((p.d for p in points), default=None)
    if e.interpolated_interval is not None and (
        (lo is not None and pv.value < lo) or (hi is not None and pv.value > hi)
    ):  # a disagreement beyond our interval is said in the row's notes, not left to the eye
        where = "below" if lo is not None and pv.value < lo else "above"
        row.setdefault("notes", []).append(
            f"the paper's value {pv.value:,g} lies {where} our 90 % interval under its line "
            f"[{'-' if lo is None else f'{lo:.3g}'}, {'beyond the grid' if hi is None else f'{hi:.3g}'}]"
        )
    elif e.headline_side == "beyond" and top is not None and pv.value <= top:
        row.setdefault("notes", []).append(  # no interval to put it in, but still a verdict
            f"the paper's value {pv.value:,g} lies inside the d swept (up to {top:,}), where "
            "our mean score stays under its line: ours is above the paper's"
        )


def build_rows(records: list[TrialRecord], groups: list[Group]) -> tuple[list[dict[str, Any]], str]:
    """One row per estimate group (columns `COLUMNS`) and the reference-task sentence."""
    by_hash: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        by_hash[r.config_hash].append(r)
    ref = reference_group(groups, records)
    ref_e = _est(ref["d_int90"]) if ref else None
    ref_d = ref_e["d"] if ref_e else None
    ref_text = (
        f"difficulty = d_int90 / d_int90 of {row_label(by_hash[ref['config_hash']], ref)} "
        f"({ref_d:.4g})"
        if ref and ref_d
        else "difficulty: no reference task (MNIST FC or digits) with a d_int90 in these stores"
    )
    rows = []
    labels: dict[str, int] = defaultdict(int)
    for g in groups:
        recs = by_hash[g["config_hash"]]
        sub = [r for r in recs if not r.direct]
        e90, e100 = _est(g["d_int90"]), _est(g["d_int100"])
        ds = sorted({r.d for r in sub})
        row: dict[str, Any] = {
            "label": row_label(recs, g),
            "task": g["task"],
            "network": g["network"],
            "algorithm": g["algorithm"],
            "projection": g["projection"],
            "D": g["D"],
            "trained_directly": g["trained_directly"],
            "seeds": len(g["seeds"] or {r.seed for r in sub}),
            "trials": g["trials"],
            "failed": g["failed"],
            "compression": g["D"] / e90["d"] if e90["d"] else None,
            "difficulty": e90["d"] / ref_d if e90["d"] and ref_d else None,
            "d_min": ds[0] if ds else None,
            "d_max": ds[-1] if ds else None,
            "budget": _budget(recs, is_supervised(recs)),
            "wall_s": sum(r.wall_s for r in recs),
            "supervised": is_supervised(recs),
            "notes": _row_notes(g),
            "name": g["name"],
            "config_hash": g["config_hash"],
        }
        for kind, e in (("d_int90", e90), ("d_int100", e100)):
            row[kind], row[f"{kind}_lo"], row[f"{kind}_hi"] = e["d"], e["lo"], e["hi"]
            row[f"{kind}_grid"], row[f"{kind}_grid_lo"] = e["grid"], e["grid_lo"]
            row[f"{kind}_grid_hi"] = e["grid_hi"]
            row[f"{kind}_line"], row[f"{kind}_note"] = e["line"], e["note"]
            row[f"{kind}_side"], row[f"{kind}_est"] = e["side"], e["est"]
        state = next((r.info["sweep_state"] for r in recs if "sweep_state" in r.info), None)
        if state and state.get("state") != "done":  # a sweep running, or stopped before its end
            row["notes"].append(
                f"its sweep has not finished ({state.get('mode', 'grid')} mode; {len(recs)} "
                "trials in the store so far; rlsub sweep resumes it): a partial row"
            )
        store = next((r.info["store"] for r in recs if "store" in r.info), None)
        if store:  # one config in several stores, not pooled: say which store this is
            row["label"] += f" [store {store}]"
        pooled = next((r.info["pooled_from"] for r in recs if "pooled_from" in r.info), None)
        if pooled:
            row["notes"].append("trials pooled from the stores " + ", ".join(pooled))
        _paper_cells(g, recs, row)
        labels[row["label"]] += 1
        rows.append(row)
    for row in rows:  # two rows the label cannot tell apart: add the config name
        if labels[row["label"]] > 1:
            row["label"] += f" ({row['name']})"
    return rows, ref_text


def paper_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's rows that `rows` do not measure, as table rows (every column None but
    the label, D and the paper's value): 'not measured here', with the reason."""
    out = []
    for p in paper.not_measured_rows(rows):
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update({k: None for k in ("d_int90_est", "d_int100_est", "paper_rule_ours_est")})
        row.update(p, d_int90_line="", d_int100_line="", wall_s=0.0, notes=[], seeds=0)
        trainer = known_trainer(p["algorithm"])
        row.update(trials=0, failed=0, supervised=trainer is not None and trainer.supervised)
        out.append(row)
    return out


def _row_notes(g: Group) -> list[str]:
    """The group's notes and, per estimate, where its mean curve is not monotone."""
    out = list(g["notes"])
    for kind in KINDS:
        e = estimate_of(g, kind)
        if e is None:
            continue
        if e["dips"]:
            out.append(
                f"{kind}: the mean curve is not monotone, below the line again at d = "
                + ", ".join(str(d) for d in e["dips"])
                + f" after first crossing at {e['first_crossing']} (the grid {kind} "
                + ("stays above from " + str(e["d_int"]) if e["d_int"] else "is none")
                + "; the headline's posterior takes the curve as monotone)"
            )
        if e["collapse"]:
            out.append(
                f"{kind}: the largest d swept, {e['collapse']}, falls below the line again "
                "(a collapse): left out of the crossing, shown in the curves figure"
            )
    return out
