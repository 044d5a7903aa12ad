"""The policy file of a PG trial whose subspace spans actor and critic (parts: all).

The compact rlsub network cannot hold the critic, so the file keeps the SB3 policy's
own state (z, the directly trained tensors: never the D floats of theta0 or P, which
are non-persistent buffers rebuilt from seeds) with the trial's d and seed and, as a
JSON string, its config and how to replay it. It is read with
`torch.load(weights_only=True)` and the model is rebuilt from the config
(`rlsub.algos.evaluate.load_sb3_policy`): nothing is unpickled, unlike SB3's own zip
(cloudpickle), which runs whatever code its author put in it.

Imports: core.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

FORMAT = "rlsub-sb3-v2"


class SB3PolicyFile:
    """What `run_trial` saves for a parts: all PG trial (see the module docstring)."""

    def __init__(self, model: Any, d: int | str, seed: int) -> None:
        self.model = model
        self.d = d
        self.seed = int(seed)

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        path = Path(path).with_suffix(".pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": FORMAT,
            "d": self.d,
            "seed": self.seed,
            "policy": {
                k: v.detach().cpu().clone() for k, v in self.model.policy.state_dict().items()
            },
            "extra_json": json.dumps(extra or {}, sort_keys=True, default=str),
        }
        tmp = path.with_suffix(".pt.tmp")
        try:
            torch.save(state, tmp)
            tmp.replace(path)
        except BaseException:  # a full disk: no half-written .tmp left behind
            tmp.unlink(missing_ok=True)
            raise
        return path
