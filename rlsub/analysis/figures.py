"""The report's figures (matplotlib, Agg): performance against d, the difficulty chart,
ES against PG, learning curves. Pure functions from data to figures.

Imports: analysis.tables, envs, core.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from rlsub.analysis.tables import PG_ALGORITHMS
from rlsub.core.errors import RlsubError

FORMATS = ("png", "pdf")


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


def _record_env(rec: dict[str, Any]) -> Any | None:
    """The env spec of a record's config, or None (supervised, or the spec is not loadable)."""
    from rlsub.envs.spec import load_env_spec

    cfg = rec.get("config") or {}
    env = cfg.get("env") or rec.get("task")  # records without their config name the env as task
    if not env:
        return None
    try:
        return load_env_spec(env, cfg.get("env_variant"))
    except RlsubError:
        return None


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
