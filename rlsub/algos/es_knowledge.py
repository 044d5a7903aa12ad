"""What ES and CMA-ES tell the layers above without training (rlsub.algos.base): D of the
policy's subspace (from a 1-slot env of the spec, refusing observation normalisation of
pixels as `es_setup.build_setup` does: `es_setup.check_pixels`), the budget in generations and the generations a
finished trial ran. Both trainers answer alike: their policy and env are `es_setup`'s.

Imports: algos.base, algos.es_setup, algos.sizes, envs, core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlsub.algos.base import Budget, lazy
from rlsub.algos.es_setup import check_pixels
from rlsub.algos.sizes import probe_env, subspace_D
from rlsub.core.config import ExperimentConfig
from rlsub.envs.spec import policy_network_kwargs

FAMILY = "es"  # search in z without gradients (figures set it beside "pg")


def es_dimension(cfg: ExperimentConfig, data: bool = True, progress: bool = False) -> int:
    """D of the policy's subspace (`subspace.include` and `rest` applied)."""
    dims = probe_env(cfg, lambda spec, env, dims: check_pixels(cfg, spec, env, dims))
    return subspace_D(cfg, policy_network_kwargs(cfg.network.name, cfg.network.kwargs, dims))


def es_budget(cfg: ExperimentConfig) -> Budget:
    """Generations per trial (an upper bound with stop_when_solved); CMA-ES's too."""
    return Budget("generation", float(cfg.train.generations))


def es_spent(row: Mapping[str, Any]) -> float | None:
    """Generations a finished trial ran (its record's info); CMA-ES's too."""
    generations = (row.get("info") or {}).get("generations")
    return float(generations) if generations else None


cmaes_dimension = es_dimension
cmaes_budget = es_budget
cmaes_spent = es_spent

# the Trainer(...) keywords of ES (its batched trials: rlsub.algos.es_batch, imported when
# first asked, as es_batch imports es) and of CMA-ES
ES_HOOKS: dict[str, Any] = {
    "family": FAMILY,
    "dimension": es_dimension,
    "budget": es_budget,
    "spent": es_spent,
    "batchable": lazy("rlsub.algos.es_batch:batchable"),
    "train_batch": lazy("rlsub.algos.es_batch:train_batch"),
}
CMAES_HOOKS: dict[str, Any] = {
    "family": FAMILY,
    "dimension": cmaes_dimension,
    "budget": cmaes_budget,
    "spent": cmaes_spent,
}
