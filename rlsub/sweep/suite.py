"""`rlsub suite`: the full benchmark, a list of experiment configs swept one after another.

A suite file names experiment configs, each with optional overrides of its
`train` and `sweep` sections (e.g. the original paper's budgets):

    name: full_benchmark
    experiments:
      - config: configs/mnist_fc.yaml
        train: {epochs: 100}
        sweep: {seeds: [0, 1, 2]}

`rlsub suite FILE --plan [--measured STORE|RECORD.json ...]` prints, without running
anything, each experiment's trial count (grid mode: (len(d_grid) + baseline)
x seeds), its budget per trial, and an estimate of its cost from throughput
measured in earlier stores or `rlsub train --json` records: seconds per budget unit (ES generation, PG env
step, supervised epoch) of finished trials of the same task, algorithm and
network, times the budget, times the trials. An experiment with no such
record is shown as not measured, never guessed.

`rlsub suite FILE [--store-dir DIR] [--mode ...] [--backend ray --address ...]`
runs the sweeps (each into DIR/NAME.sqlite, resumable like `rlsub sweep`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsub.algos.base import trainer_for
from rlsub.core.bundled import config_path
from rlsub.core.config import ExperimentConfig, load_experiment, with_overrides
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.schema import check, doc, from_mapping, read_yaml
from rlsub.sweep.validate import network_D


@dataclass(frozen=True)
class SuiteEntry:
    config: str = doc("path of an experiment config (relative to the suite file or the repo)")
    train: dict[str, Any] = doc("overrides of the config's train section", default_factory=dict)
    sweep: dict[str, Any] = doc("overrides of the config's sweep section", default_factory=dict)


@dataclass(frozen=True)
class SuiteConfig:
    name: str = doc("suite name")
    experiments: list[SuiteEntry] = doc("experiments, swept in this order")
    notes: str = doc("free text (kept with the plan)", default="")

    def __post_init__(self) -> None:
        check(len(self.experiments) > 0, "experiments must list at least one config")


@dataclass
class Planned:
    cfg: ExperimentConfig
    trials: int
    unit: str  # "" where the trainer states no budget
    units_per_trial: float | None
    measured: list[float] = field(default_factory=list)  # seconds per unit, one per record

    @property
    def s_per_unit(self) -> float | None:
        return statistics.median(self.measured) if self.measured else None

    @property
    def hours(self) -> float | None:
        s = self.s_per_unit
        if s is None or self.units_per_trial is None:
            return None
        return s * self.units_per_trial * self.trials / 3600


def _resolve(path: str, base: Path) -> Path:
    for p in (Path(path), base / path, config_path(path)):
        if p.is_file():
            return p
    raise ConfigError(
        f"suite: experiment config {path!r} not found (relative to {base} or the repo)"
    )


def load_suite(path: str | Path) -> tuple[SuiteConfig, list[ExperimentConfig]]:
    """A suite file, or a bundled suite by name (`paper`, `full_benchmark`)."""
    path = config_path(path)
    if not path.is_file():
        raise ConfigError(
            f"suite file {str(path)!r} not found (a path, or a bundled suite: paper, "
            "full_benchmark)"
        )
    data = read_yaml(path)
    suite = from_mapping(SuiteConfig, data, where=str(path))
    cfgs = []
    for i, e in enumerate(suite.experiments):
        cfg = load_experiment(_resolve(e.config, path.parent))
        sections = {k: v for k, v in (("train", e.train), ("sweep", e.sweep)) if v}
        try:
            cfgs.append(with_overrides(cfg, **sections) if sections else cfg)
        except ConfigError as exc:
            raise ConfigError(f"{path}: experiments[{i}] ({e.config}): {exc}") from None
    return suite, cfgs


def plan(cfgs: list[ExperimentConfig], measured: list[str | Path]) -> list[Planned]:
    from rlsub.experiment.store import Store

    rows: list[dict[str, Any]] = []
    for p in measured:
        if not Path(p).is_file():
            raise RlsubError(f"suite: measured store {str(p)!r} not found")
        if Path(p).suffix == ".json":  # one record from rlsub train --json
            from rlsub.analysis.report import load_record_file

            rows.append(load_record_file(p))
            continue
        with Store(p, readonly=True) as st:
            rows += st.rows(status="done")
    out = []
    for cfg in cfgs:
        sw = cfg.sweep
        trials = (len(sw.d_grid) + (1 if sw.baseline else 0)) * len(sw.seeds)
        trainer = trainer_for(cfg.algorithm)
        b = trainer.budget(cfg)
        pl = Planned(cfg, trials, b.unit if b else "", b.amount if b else None)
        D = network_D(cfg, data=False)
        for r in rows:
            same = (r["task"], r["algorithm"], r["network"]) == (
                cfg.task,
                cfg.algorithm,
                cfg.network.name,
            )
            # a net of another size (one "mlp" at widths 20 and 400) costs otherwise: only
            # trials of this D count, where both the record and the config tell it
            size = r.get("D_full") or r.get("D")
            same = same and (D is None or not size or int(size) == D)
            units = trainer.spent(r) if same and b else None  # units the trial used
            if units and r["wall_s"] > 0:
                pl.measured.append(r["wall_s"] / units)
        out.append(pl)
    return out


def format_plan(suite: SuiteConfig, planned: list[Planned]) -> str:
    lines = [
        f"suite {suite.name}: grid trials, and hours of this machine running them one at a time "
        "(throughput measured in the given stores)",
        "",
        "| experiment | task | algorithm | D-grid trials | budget per trial | s per unit (n) | hours |",
        "| --- | --- | --- | ---: | --- | --- | ---: |",
    ]
    total, missing = 0.0, []
    for p in planned:
        s = p.s_per_unit
        if s is None:
            cost, per = "not measured", "-"
            missing.append(p.cfg.name)
        else:
            ch = p.hours or 0.0
            total += ch
            cost, per = f"{ch:,.1f}", f"{_fmt_s(s)} ({len(p.measured)})"
        lines.append(
            f"| {p.cfg.name} | {p.cfg.task} | {p.cfg.algorithm} | {p.trials} | "
            f"{_budget_text(p)} | {per} | {cost} |"
        )
    lines += [
        "",
        f"total of the measured rows: {total:,.1f} hours. Full budgets are assumed: runs that stop "
        "when solved end sooner, while an ES generation costs more as episodes get longer, so "
        "read these as orders of magnitude.",
    ]
    if missing:
        lines.append(
            "not measured here (no finished trial of that task/algorithm/network and D in "
            "the given stores): " + ", ".join(missing)
        )
    return "\n".join(lines)


def _budget_text(p: Planned) -> str:
    if p.units_per_trial is None:
        return "not stated by the trainer"
    return f"{p.units_per_trial:,.0f} {p.unit}s"


def _fmt_s(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


__all__ = ["SuiteConfig", "SuiteEntry", "load_suite", "plan"]
