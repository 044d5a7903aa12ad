"""The floor of an RL line when the env spec has none: a random policy's score, measured
once per config and kept in the results store.

d_int90's line for RL is ``random + threshold x (baseline - random)``, so that "90 %"
means the same for returns that can be negative (Acrobot, Pendulum, MountainCar).
A bundled env spec carries its random score; a gymnasium id named directly, or a
user's spec without one, does not. Before the first trial of such a config, the sweep
plays `EPISODES` episodes of uniformly random actions (`rlsub random-score`, seeds
`SEED`...) and writes the mean, its standard error, the episodes and the seed into
the store (`Store.put_floor`). `rlsub dint` and `rlsub report` read it from there,
so the line is the same wherever the store goes.

Imports: algos.evaluate, experiment.store, core.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from rlsub.core.config import ExperimentConfig
from rlsub.experiment.store import Store

EPISODES = 100
SEED = 10_000  # far from the trial seeds


def ensure_floor(cfg: ExperimentConfig, store: Store, progress: bool = True) -> float | None:
    """The config's floor score: the spec's random score, else the one measured for this
    config in `store`, else measured now and stored. None for supervised configs."""
    from rlsub.analysis.estimate import config_floor

    if cfg.supervised:
        return None
    known = config_floor(cfg.to_dict(), own=True)
    if known is not None:
        return known
    kept = store.floors().get(cfg.hash)
    if kept is not None:
        return float(kept["mean"])
    try:
        floor = measure_floor(str(cfg.env))
    except Exception as exc:  # a trainer-made task with no env to play (plug-ins, tests)
        print(
            f"rlsub: no random score for {cfg.env} (not in its spec, and it could not be "
            f"measured: {exc}); the d_int90 line falls back to 0.9 x baseline and the "
            "table says so",
            file=sys.stderr,
        )
        return None
    store.put_floor(cfg.hash, floor)
    if progress:
        print(
            f"rlsub: {cfg.env} has no random score in its spec: {EPISODES} episodes of "
            f"random actions gave {floor['mean']:.4g} +- {floor['se']:.2g} (standard error), "
            f"kept in {store.path} as the floor of the d_int90 line",
            file=sys.stderr,
        )
    return float(floor["mean"])


def measure_floor(env: str, episodes: int = EPISODES, seed: int = SEED) -> dict[str, Any]:
    """A random policy's mean return on `env` with its standard error, as stored."""
    from rlsub.algos.evaluate import random_score

    r = random_score(env, episodes, seed)
    se = r["std"] * math.sqrt(episodes / max(episodes - 1, 1)) / math.sqrt(episodes)
    return {
        "mean": r["mean"],
        "se": se,
        "std": r["std"],
        "episodes": episodes,
        "seed": seed,
        "env": r["id"],
        "source": "measured: uniformly random actions (rlsub random-score)",
    }
