"""How far one step in z moves the Q-values of the paper's DQN net at width 20 and at
width 400, in the subspaces its trials use (theta0 and P from the trial seeds).

    OMP_NUM_THREADS=1 python docs/bench/dqn_width_step.py > docs/bench/dqn_width_step.json

`rlsub.algos.dqn_paper` gives every width the paper's fixed RMSProp step (lr 1e-4), and
RMSProp makes each coordinate's step in z about lr whatever the gradient's size. P's
columns have unit norm, so a unit step in z moves theta by a unit, spread over D
parameters; how much that moves Q depends on the width. This prints the rms change of Q
(over CartPole reset states, uniform in +-0.05, and over wider states, uniform in
+-0.5) per unit step along a random direction in z, per seed, and the ratio of the
widths' medians. It trains nothing.
"""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

import numpy as np
import torch

from rlsub.algos.dqn_paper import _dims
from rlsub.core.config import load_experiment
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import policy_network_kwargs

STEP = 1e-3


def sensitivity(cfg: Any, d: int, seed: int, state_sets: list[torch.Tensor]) -> list[float]:
    """The rms change of Q per unit step in z, over each set of states, from one subspace."""
    seeds = trial_seeds(seed)
    kwargs = policy_network_kwargs(cfg.network.name, dict(cfg.network.kwargs), _dims(cfg))
    sub = Subspace.from_spec(
        cfg.network.name,
        kwargs,
        seeds["theta0"],
        d,
        cfg.subspace.projection,
        seeds["projection"],
        rest="frozen",
    )
    u = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    u /= u.norm()
    with torch.no_grad():
        q0 = [sub(x) for x in state_sets]
        sub.z.add_(STEP * u)
        q1 = [sub(x) for x in state_sets]
    return [float((b - a).pow(2).mean().sqrt() / STEP) for a, b in zip(q0, q1, strict=True)]


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    scales = (0.05, 0.5)
    state_sets = [
        torch.as_tensor(rng.uniform(-sc, sc, (1000, 4)), dtype=torch.float32) for sc in scales
    ]
    names = ("cartpole_v0_dqn_paper", "cartpole_v0_dqn_paper_w400")
    ds = (25, 40, 100)
    per_seed = {  # (name, d) -> per seed -> per state set
        (name, d): [sensitivity(cfg, d, s, state_sets) for s in range(5)]
        for name, cfg in ((n, load_experiment(n)) for n in names)
        for d in ds
    }
    out: dict[str, Any] = {"machine": platform.machine(), "step": STEP, "runs": []}
    for i, scale in enumerate(scales):
        med = {}
        for name in names:
            for d in ds:
                values = [v[i] for v in per_seed[(name, d)]]
                med[(name, d)] = float(np.median(values))
                out["runs"].append(
                    {
                        "config": name,
                        "d": d,
                        "states": f"uniform +-{scale}",
                        "dQ_per_unit_z": values,
                        "median": med[(name, d)],
                    }
                )
        for d in ds:
            ratio = med[(names[0], d)] / med[(names[1], d)]
            out[f"ratio_w20_over_w400_d{d}_states{scale}"] = ratio
            print(f"d={d} states +-{scale}: width 20 moves Q {ratio:.1f}x as far", file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
