"""Per-d tuning of z's step size for the policy-gradient rows: `rlsub tune`.

A fixed z learning rate suits one d and not the others (rlsub.algos.step_size), and
even K in 'K*sqrt(D/d)' drifts with d. `tune` tries every K of a short list at every d
of a PG config's grid, on tuning seeds that are not the config's reported seeds (it
refuses an overlap), keeps at each d the K with the best mean final score, and writes
a config whose ``train.z_lr_scale`` maps each d to its K: sweeping that config on the
reported seeds gives a row whose d_int is the task's under a stated tuning budget
(K list x tuning seeds per d), with the choice in its label and its config. The
tuning trials stay in their own store (one config per K, no baseline), the evidence
of the choice; the written config's header lists the scores.

Imports: sweep.strategy, experiment.store, core, algos.pg_config (for the check).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlsub.core.config import ExperimentConfig, read_yaml, with_overrides
from rlsub.core.errors import RlsubError
from rlsub.experiment.store import Store


def tuning_configs(cfg: ExperimentConfig, ks: list[float], seeds: list[int]) -> list[Any]:
    """One config per K: z lr K*sqrt(D/d), the tuning seeds, no baseline. Refuses a config
    that is not a policy-gradient one, an empty or non-positive K list, and tuning seeds
    that are among the reported ones."""
    from rlsub.algos.pg_config import PGConfig

    if not isinstance(cfg.train, PGConfig):
        raise RlsubError(
            f"{cfg.source}: rlsub tune tunes z's step size of PPO / A2C / DQN; "
            f"{cfg.algorithm} has none"
        )
    if not ks or any(not (k > 0 and math.isfinite(k)) for k in ks):
        raise RlsubError(f"--k: give positive numbers (K of K*sqrt(D/d)), got {ks}")
    shared = sorted(set(seeds) & set(cfg.sweep.seeds))
    if shared:
        raise RlsubError(
            f"--seeds: tuning seeds must not be the reported ones (sweep.seeds "
            f"{cfg.sweep.seeds}); shared: {shared}"
        )
    out = []
    for k in ks:
        ck = with_overrides(
            cfg,
            train={"z_lr_scale": f"{k:g}*sqrt(D/d)"},
            sweep={"seeds": list(seeds), "baseline": False},
        )
        out.append(dataclasses.replace(ck, name=f"{cfg.name}_tune_k{k:g}"))
    return out


def choose(scores: dict[int, dict[float, float]]) -> dict[int, float]:
    """Per d, the K with the best mean score (ties: the smaller K)."""
    return {d: max(sorted(by_k), key=lambda k: by_k[k]) for d, by_k in sorted(scores.items())}


def tune(
    cfg: ExperimentConfig,
    ks: list[float],
    seeds: list[int],
    store_path: str | Path,
    progress: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the tuning sweeps into `store_path`; returns the scores per d and
    K, and the choice."""
    from rlsub.sweep.strategy import run_sweep

    configs = tuning_configs(cfg, ks, seeds)
    for ck in configs:
        run_sweep(ck, store_path, mode="grid", progress=progress)
    scores: dict[int, dict[float, float]] = {d: {} for d in cfg.sweep.d_grid}
    with Store(Path(store_path)) as store:
        for k, ck in zip(ks, configs, strict=True):
            records = store.records(ck.hash)  # read once per K, not once per d
            for d in cfg.sweep.d_grid:
                got = [
                    r.final_eval_mean if r.status == "done" else -math.inf
                    for r in records
                    if not r.direct and r.d == d
                ]
                scores[d][k] = float(np.mean(got)) if got else -math.inf
    return {
        "config": cfg.source,
        "name": cfg.name,
        "store": str(store_path),
        "k": list(ks),
        "seeds": list(seeds),
        "scores": scores,
        "choice": choose(scores),
    }


def tuned_config_text(cfg: ExperimentConfig, result: dict[str, Any], command: str) -> str:
    """The YAML of `cfg` (as its file reads) with the chosen per-d z_lr_scale, named
    NAME_tuned, headed by the tuning's scores."""
    data = read_yaml(Path(cfg.source))
    data["name"] = f"{cfg.name}_tuned"
    train = dict(data.get("train") or {})
    train["z_lr_scale"] = {int(d): f"{k:g}*sqrt(D/d)" for d, k in result["choice"].items()}
    data["train"] = train
    ks = ", ".join(f"{k:g}" for k in result["k"])
    lines = [
        f"# {cfg.name} with z's step size tuned per d (rlsub tune): K of K*sqrt(D/d) tried "
        f"from {{{ks}}}",
        f"# on seeds {result['seeds']} (the reported seeds are sweep.seeds); at each d the K "
        "with the best mean",
        f"# final score. Made by: {command}",
        f"# Tuning trials: {result['store']}. Mean final score per d and K:",
    ]
    for d, by_k in sorted(result["scores"].items()):
        cells = ", ".join(f"K={k:g}: {v:.1f}" for k, v in by_k.items())
        lines.append(f"#   d = {d}: {cells} -> K = {result['choice'][d]:g}")
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    return "\n".join(lines) + "\n" + body


def format_tune(result: dict[str, Any]) -> str:
    head = f"tuned {result['name']}: K of K*sqrt(D/d) per d (seeds {result['seeds']})"
    rows = [
        f"  d = {d}: "
        + ", ".join(f"K={k:g} {v:.1f}" for k, v in by_k.items())
        + f"  -> K = {result['choice'][d]:g}"
        for d, by_k in sorted(result["scores"].items())
    ]
    return "\n".join([head, *rows])
