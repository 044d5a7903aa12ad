"""d_int90 against the training budget, from one supervised sweep.

Every supervised trial records its test accuracy after each epoch (its curve), the
direct baseline's included. So the store of one sweep at E epochs also holds the sweep
at any k < E epochs: take each trial's accuracy after epoch k as its score and estimate
again (the same estimator, the same line rule: 0.9 x the baseline's accuracy after k
epochs). The paper trained MNIST for 100 epochs; a CPU budget of 10 gives a larger
d_int90, and this curve shows by how much.

Imports: analysis.estimate, experiment.record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsub.analysis.estimate import estimate_group
from rlsub.analysis.interval import DRAWS
from rlsub.experiment.record import TrialRecord

BUDGETS = (1, 2, 5, 10, 20, 50, 100)  # epochs, where the sweep trained that many


def epochs_trained(records: list[TrialRecord]) -> int:
    """Epochs every finished trial of the group recorded (0 when none or not supervised)."""
    done = [r for r in records if r.status == "done"]
    if not done or not (done[0].config or {}).get("dataset"):
        return 0
    return min(len(r.curve) for r in done)


def at_epoch(r: TrialRecord, k: int) -> TrialRecord:
    """The trial as if it had stopped after epoch k (its test accuracy then)."""
    if r.status != "done" or len(r.curve) < k:
        return r
    acc = float(r.curve[k - 1]["value"])
    best = max(float(p["value"]) for p in r.curve[:k])
    return dataclasses.replace(r, final_eval_mean=acc, best_eval_mean=best, curve=r.curve[:k])


def budget_curve(
    records: list[TrialRecord], budgets: tuple[int, ...] = BUDGETS, draws: int = DRAWS
) -> list[dict[str, Any]]:
    """d_int90 (headline, interval, line) at each budget the group trained at least,
    the full budget last; [] for a group that is not supervised."""
    E = epochs_trained(records)
    if E == 0:
        return []
    out: list[dict[str, Any]] = []
    for k in sorted({b for b in budgets if b < E} | {E}):
        g = estimate_group([at_epoch(r, k) for r in records], draws=draws)
        e = g["d_int90"]
        ds = [c["d"] for c in g["curve"] if c["n"] > 0]
        out.append(
            {
                "epochs": k,
                "baseline": g["baseline"]["mean"],
                "headline": e["headline"] if e else None,
                "side": e["headline_side"] if e else "none",
                "interval": e["interpolated_interval"] if e else None,
                "grid": e["d_int"] if e else None,
                "d_min": min(ds, default=None),
                "d_max": max(ds, default=None),
                "estimate": e or {},
            }
        )
    return out


def budget_figure(series: dict[str, list[dict[str, Any]]]) -> Any:
    """d_int90 (posterior median, 90 % interval) against epochs, one line per row."""
    from rlsub.analysis.figures import plain_log_ticks, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    for label, pts in series.items():
        pts = [p for p in pts if p["side"] == "in"]
        if not pts:
            continue
        xs = [p["epochs"] for p in pts]
        ys = [p["headline"] for p in pts]
        lo = [y - (p["interval"][0] or y) for y, p in zip(ys, pts, strict=True)]
        hi = [(p["interval"][1] or y) - y for y, p in zip(ys, pts, strict=True)]
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    epochs = sorted({p["epochs"] for pts in series.values() for p in pts})
    ax.set_xticks(epochs, [str(k) for k in epochs])
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("training budget (epochs; each trial's test accuracy after that epoch)")
    ax.set_ylabel("d_int90 (posterior median, 90 % CI)")
    ax.set_title("Intrinsic dimension against the training budget")
    if ax.get_legend_handles_labels()[0]:
        fig.legend(fontsize=7, loc="outside lower center", frameon=False)
    return fig
