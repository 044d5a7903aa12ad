"""The report's figures (matplotlib, Agg): performance against d, the difficulty chart,
ES against PG, learning curves. Pure functions from data to figures.

Imports: analysis.text, algos.base (the trainers' families), envs.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from typing import Any

from rlsub.algos.base import known_trainer
from rlsub.analysis.group import EstimateDict, Group, estimate_of

FORMATS = ("png", "pdf")


# ------------------------------------------------------------------ figures
def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(g: Group) -> str:
    return f"{g['task']} {g['network']} {g['algorithm']} ({g['projection']})"


def _ylabel(supervised: bool) -> str:
    return "test accuracy (fraction)" if supervised else "evaluation return (per episode)"


def plain_log_ticks(axis: Any, span: float | None = None) -> None:
    """Log-scale tick labels as plain numbers (1, 10, 1,000), no crowded minor labels;
    1-2-5 steps over up to three decades (`span`: the axis's hi / lo), decades beyond."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    subs = (1.0,) if span is not None and span > 1000 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _headline(e: EstimateDict, ds: list[int]) -> tuple[float, float, float] | None:
    """(headline, lo, hi) of an estimate as the table reports it, open ends at the grid's
    ends; None where the table gives no number."""
    h = e["headline"]
    if e["headline_side"] != "in" or h is None:
        return None
    lo, hi = e["interpolated_interval"] or (None, None)
    return h, lo if lo is not None else min(ds), hi if hi is not None else max(ds)


def plot_curve(ax: Any, g: Group, supervised: bool, lines: bool = True) -> None:
    """Performance against d of one group on `ax`: the mean over seeds and every seed, the
    direct baseline, the line each estimate used, and the estimates the table reports
    (posterior median, shaded 90 % interval)."""
    from rlsub.analysis.text import headline

    pts = [p for p in g["curve"] if p["n"] > 0]
    ds = [p["d"] for p in pts]
    (ln,) = ax.plot(ds, [p["mean"] for p in pts], "o-", label="mean over seeds")
    for p in pts:
        ax.plot([p["d"]] * len(p["scores"]), p["scores"], ".", color=ln.get_color(), alpha=0.35)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    if 1 < len(ds) <= 10:  # few grid points: label exactly the d swept
        ax.set_xticks(ds, [f"{d:,}" for d in ds])
    ax.set_xlabel("subspace dimension d (log scale)")
    ax.set_ylabel(_ylabel(supervised))
    b = g["baseline"]["mean"]
    if lines and b is not None:
        ax.axhline(b, color="k", ls="-", lw=1, label=f"direct baseline {b:.4g}")
    styles = {"d_int90": ("tab:purple", "--"), "d_int100": ("tab:green", ":")}
    for kind, (color, ls) in styles.items():
        e = estimate_of(g, kind)
        if not e or not lines:
            continue
        ax.axhline(
            e["target"],
            color=color,
            ls=ls,
            lw=1.2,
            label=f"{kind} line {e['target']:.4g}: {e['line']}",
        )
        h = _headline(e, ds)
        text = headline(e, min(ds) if ds else None, max(ds) if ds else None)
        if h is not None:
            ax.axvline(h[0], color=color, ls="-.", lw=1, label=f"{kind} = {text}")
            ax.axvspan(h[1], h[2], color=color, alpha=0.10)
        else:
            ax.plot([], [], " ", label=f"{kind}: {text}")
    if any("means little" in n or "no random score" in n for n in g["notes"]):
        ax.text(
            0.02,
            0.98,
            "warning: the d_int90 line means little here (see the table's notes)",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            color="tab:red",
        )


def curves_figure(
    groups: list[Group], supervised: dict[str, bool], titles: dict[str, str] | None = None
) -> Any:
    """Figure 1: one panel per group (titled by its table row), performance against d,
    each panel's legend beside it so it never covers the data."""
    plt = pyplot()
    n = len(groups)
    cols = 1 if n <= 3 else 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(11 * cols, 3.6 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for ax, g in zip(axes.flat, groups, strict=False):
        plot_curve(ax, g, supervised[g["config_hash"]])
        title = (titles or {}).get(g["config_hash"], _label(g))
        ax.set_title(textwrap.fill(title, 70), fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig


def _side(est: Any) -> str:
    """Where an estimate's headline lies ('in', 'beyond', ...); 'none' without one."""
    return str(est["headline_side"]) if est else "none"


def difficulty_figure(rows: list[dict[str, Any]]) -> Any:
    """Every row's d_int90 (posterior median, 90 % interval bars) on one log-d axis, with
    d_int100 and its interval; the paper's value hollow, only on the row it belongs to,
    beside our estimate under the paper's own line, so each marker names its rule."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 2.6), layout="constrained")
    ys = list(range(len(rows)))
    drawn: dict[str, bool] = {}

    def bar(x: float, lo: float | None, hi: float | None, y: float, d_max: Any, **kw: Any) -> None:
        lo_v = lo if lo is not None else x
        hi_v = hi if hi is not None else (d_max or x)
        err = [[max(x - lo_v, 0)], [max(hi_v - x, 0)]]
        ax.errorbar(x, y, xerr=err, capsize=3, **kw)
        if hi is None:  # open-ended: an arrow past the grid
            ax.annotate(
                "",
                (hi_v * 1.6, y),
                (hi_v, y),
                arrowprops={"arrowstyle": "->", "color": kw.get("color")},
            )

    for y, r in zip(ys, rows, strict=True):
        color = "tab:blue" if r["supervised"] else "tab:red"
        if r["d_int90"]:
            bar(r["d_int90"], r["d_int90_lo"], r["d_int90_hi"], y, r["d_max"], fmt="o", color=color)
            drawn["sup" if r["supervised"] else "rl"] = True
        elif r["d_max"] and _side(r["d_int90_est"]) == "beyond":  # estimated, never crossed
            ax.plot(r["d_max"], y, ">", color="gray")
            drawn["none"] = True
        elif r["d_min"] and _side(r["d_int90_est"]) == "below":  # crossed at the first d
            ax.plot(r["d_min"], y, "<", color="gray")
            drawn["below"] = True
        if r["d_int100"]:
            bar(
                r["d_int100"],
                r["d_int100_lo"],
                r["d_int100_hi"],
                y - 0.22,
                r["d_max"],
                fmt="^",
                color="tab:green",
                ms=6,
            )
            drawn["solved"] = True
        elif r["d_max"] and _side(r["d_int100_est"]) == "beyond":
            ax.plot(r["d_max"], y - 0.22, ">", color="tab:green")
            drawn["solved_none"] = True
        if r["paper_d_int"]:
            ax.plot(r["paper_d_int"], y + 0.22, "s", mfc="none", mec="k", ms=8)
            drawn["paper"] = True
            if r["paper_rule_ours"]:
                ax.plot(r["paper_rule_ours"], y + 0.22, "D", color="k", ms=4)
                drawn["ours_paper"] = True
            elif r["d_max"] and _side(r["paper_rule_ours_est"]) == "beyond":
                # just past the largest d, so a paper value there is not hidden under it
                ax.plot(r["d_max"] * 1.2, y + 0.22, ">", color="k")
                drawn["ours_paper_none"] = True
    legend: dict[str, tuple[str, dict[str, Any], str]] = {
        "sup": (
            "o",
            {"color": "tab:blue"},
            "ours, supervised: d_int90, line 0.9 x baseline (90 % CI)",
        ),
        "rl": (
            "o",
            {"color": "tab:red"},
            "ours, RL: d_int90, line random + 0.9 x (baseline - random) (90 % CI)",
        ),
        "solved": (
            "^",
            {"color": "tab:green"},
            "ours, RL: d_int100, line = the env's solved score (90 % CI)",
        ),
        "solved_none": (">", {"color": "tab:green"}, "ours, RL: d_int100 > largest d swept"),
        "paper": (
            "s",
            {"mfc": "none", "mec": "k"},
            "Li et al. 2018, by the paper's line (matching rows only)",
        ),
        "ours_paper": ("D", {"color": "k", "ms": 4}, "ours by the paper's line"),
        "ours_paper_none": (">", {"color": "k"}, "ours by the paper's line: > largest d swept"),
        "none": (">", {"color": "gray"}, "ours, d_int90: > largest d swept (not reached)"),
        "below": ("<", {"color": "gray"}, "ours, d_int90: < smallest d swept"),
    }
    handles = []
    for key, (marker, kw, text) in legend.items():
        if drawn.get(key):
            (h,) = ax.plot([], [], marker, label=text, **kw)
            handles.append(h)
    ax.set_xscale("log")
    xs = [
        float(v)
        for r in rows
        for v in (
            r["d_int90"],
            r["d_int90_lo"],
            r["d_int90_hi"],
            r["paper_d_int"],
            r["d_int100"],
            r["d_int100_hi"],
            r["d_max"],
        )
        if v
    ]
    if xs:
        ax.set_xlim(min(xs) / 2, max(xs) * 3)
    lo_x, hi_x = ax.get_xlim()
    plain_log_ticks(ax.xaxis, hi_x / lo_x)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(ys, [textwrap.fill(r["label"], 60) for r in rows], fontsize=7)
    ax.set_xlabel("intrinsic dimension d (log scale; each marker's line in the legend)")
    ax.set_ylabel("row: task / algorithm / network / budget")
    ax.set_title("Task difficulty by intrinsic dimension")
    # the legend sits under the figure, outside the axes, so it never covers data or labels
    if handles:
        fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=2, frameon=False)
    return fig


def width_figure(groups: list[Group], kind: str = "d_int90") -> Any:
    """The paper's Figure 3 analogue: d_int (interpolated, 90 % interval) against the
    network's size D, one series per task (rows of one task at several widths). A flat
    line means the intrinsic dimension does not depend on the width."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    by_task: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for g in groups:
        by_task[(g["task"], g["algorithm"])].append(g)
    line = ""
    ys_all: list[float] = []
    for (task, algo), gs in sorted(by_task.items()):
        pts = []
        for g in sorted(gs, key=lambda g: g["D"]):
            e = estimate_of(g, kind)
            x = e["headline"] if e else None
            if e and e["headline_side"] == "in" and x is not None:
                lo, hi = e["interpolated_interval"] or (None, None)
                pts.append((g["D"], x, lo if lo is not None else x, hi))
                line = e["line"] or line
        if not pts:
            continue
        Ds, xs = [p[0] for p in pts], [p[1] for p in pts]
        err = [
            [max(x - lo, 0) for _, x, lo, _ in pts],
            [max((hi or x) - x, 0) for _, x, _, hi in pts],
        ]
        ax.errorbar(Ds, xs, yerr=err, fmt="o-", capsize=3, label=f"{task} / {algo}")
        ys_all.extend([lo for _, _, lo, _ in pts] + [hi or x for _, x, _, hi in pts])
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ys_all:  # a decade or more of d, so that a flat line reads as flat
        lo_y, hi_y = min(ys_all), max(ys_all)
        pad = max(1.0, (10 * lo_y / hi_y) ** 0.5)
        ax.set_ylim(lo_y / pad, hi_y * pad)
    for axis in (ax.xaxis, ax.yaxis):
        plain_log_ticks(axis)
    ax.set_xlabel("number of parameters D (log scale; one point per width)")
    ax.set_ylabel(f"{kind} (log scale; posterior median, 90 % CI)")
    ax.set_title("Intrinsic dimension against network width")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def compare_figure(groups: list[Group], supervised: bool, title: str) -> Any:
    """Figures 3 and 4: several groups' curves on one axis (baseline lines per group)."""
    plt = pyplot()
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


def comparisons(groups: list[Group]) -> list[tuple[str, str, list[Group]]]:
    """(file stem, title, groups) for figures 3 (ES vs PG: the trainers' families "es"
    and "pg") and 4 (projection kinds)."""
    out = []
    by_task: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        by_task[g["task"]].append(g)
    for task, gs in by_task.items():
        es = [g for g in gs if _family(g) == "es"]
        pg = [g for g in gs if _family(g) == "pg"]
        if es and pg:
            out.append((f"es_vs_pg_{task}", f"{task}: ES against policy gradients", es + pg))
    by_net: dict[tuple[str, str, str], list[Group]] = defaultdict(list)
    for g in groups:
        by_net[(g["task"], g["network"], g["algorithm"])].append(g)
    for (task, net, algo), gs in by_net.items():
        if len({g["projection"] for g in gs}) > 1:
            out.append(
                (f"projections_{task}_{net}_{algo}", f"{task} {net} {algo}: projections", gs)
            )
    return out


def _family(g: Group) -> str:
    """The kind of the group's trainer (`Trainer.family`: "es", "pg", ...; "" unknown)."""
    trainer = known_trainer(g["algorithm"])  # a store names code: only registered names
    return trainer.family if trainer is not None else ""


def _record_env(rec: dict[str, Any]) -> Any | None:
    """The env spec of a record's config, or None (supervised, or the spec is not loadable).
    Read as data: nothing the record names is imported (rlsub.core.trust)."""
    from rlsub.envs.spec import env_spec_data

    cfg = rec.get("config") or {}
    env = cfg.get("env") or rec.get("task")  # records without their config name the env as task
    if not env:
        return None
    return env_spec_data(str(env), cfg.get("env_variant"))


def learning_curves_figure(records: list[dict[str, Any]]) -> tuple[Any, str]:
    """Evaluation return against env steps (emulator frames for frame-skipping envs)."""
    plt = pyplot()
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
