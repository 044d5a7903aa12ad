"""rlsub: intrinsic dimension of RL and supervised objective landscapes.

theta = theta0 + P z: a network is trained only inside a random d-dimensional
subspace (Li, Farkhoor, Liu, Yosinski, "Measuring the Intrinsic Dimension of
Objective Landscapes", ICLR 2018), and the smallest d that solves the task is its
intrinsic dimension.

The public API (everything else is private by convention):

- `Subspace`: wrap any `torch.nn.Module` (theta = theta0 + P z, only z trains);
  `Subspace.from_spec(network, kwargs, ...)` builds it from a network name or an
  import path `"pkg.module:builder"`, so `save`/`load` rebuild it compactly.
- `make_projection`: the dense, sparse and Fastfood projections P.
- `train(config, d, seed)`: one trial (ES, CMA-ES, PPO, A2C, DQN, supervised Adam)
  from a bundled config's name, a YAML path or a dict -> `TrialRecord`;
  `evaluate_policy_file(path, episodes)`: replay its policy file (`rlsub eval`).
- `run_sweep`, `load_experiment`: the sweep of a config into a results store.
- `sweep_function(f, d_grid, seeds, store)`: sweep a user's own `f(d, seed) -> score`.
- `estimate_group`, `estimate_all`: d_int90 / d_int100 with intervals from records;
  `Store`: the SQLite results store.
- `Trainer`, `TrainResult`: the trainer protocol, to plug in a training algorithm;
  `NETWORKS`, `TRAINERS`, `DATASETS`, `ENV_SPECS`: the plug-in registries.

Names are imported on first use, so `import rlsub` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlsub.core.version import __version__

_EXPORTS = {
    "Subspace": "rlsub.core.subspace",
    "make_projection": "rlsub.core.projections",
    "ExperimentConfig": "rlsub.core.config",
    "load_experiment": "rlsub.core.config",
    "experiment_from_dict": "rlsub.core.config",
    "NETWORKS": "rlsub.core.registry",
    "TRAINERS": "rlsub.core.registry",
    "DATASETS": "rlsub.core.registry",
    "ENV_SPECS": "rlsub.core.registry",
    "build_network": "rlsub.core.registry",
    "RlsubError": "rlsub.core.errors",
    "Trainer": "rlsub.algos.base",
    "TrainResult": "rlsub.algos.base",
    "train": "rlsub.experiment.trial",
    "evaluate_policy_file": "rlsub.algos.evaluate",
    "run_trial": "rlsub.experiment.trial",
    "TrialRecord": "rlsub.experiment.record",
    "Store": "rlsub.experiment.store",
    "estimate_group": "rlsub.analysis.estimate",
    "estimate_all": "rlsub.analysis.estimate",
    "run_sweep": "rlsub.sweep.strategy",
    "sweep_function": "rlsub.sweep.function",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rlsub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
