"""Wall time of the paper's DQN (rlsub.algos.dqn_paper) with the numba learner against the
autograd one, paired: the same run (config, d, seed, episodes) alternately with each.

    OMP_NUM_THREADS=1 python docs/bench/dqn_learner.py > docs/bench/dqn_learner.json

Both learners do the same float32 arithmetic; the runs' scores are printed beside the
times (they agree unless a rounding difference flips a greedy action).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import Any

import torch

from rlsub.algos import dqn_learners, dqn_paper
from rlsub.core.config import load_experiment, with_overrides


def run(cfg: Any, d: int | str, fast: bool) -> tuple[float, float, int]:
    real = dqn_learners.make_learner

    def pick(sub: Any, tc: Any, fast_: bool = True) -> Any:
        return real(sub, tc, fast=fast)

    dqn_paper.make_learner = pick  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        r = dqn_paper.train(cfg, d, 0)
        return time.perf_counter() - t0, r.final_eval_mean, r.env_steps
    finally:
        dqn_paper.make_learner = real  # type: ignore[assignment]


def main() -> None:
    torch.set_num_threads(1)
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "runs": []}
    for name, d, episodes in (
        ("cartpole_v0_dqn_paper", 25, 300),
        ("cartpole_v0_dqn_paper_w400", 40, 60),
    ):
        cfg = with_overrides(
            load_experiment(name), train={"max_episodes": episodes, "eval_episodes": 0}
        )
        times: dict[str, list[float]] = {"numba": [], "autograd": []}
        for _ in range(3):
            for label, fast in (("numba", True), ("autograd", False)):
                wall, score, steps = run(cfg, d, fast)
                times[label].append(wall)
                print(
                    f"{name} d={d} {label}: {wall:.2f} s, {steps} steps, score {score:.2f}",
                    file=sys.stderr,
                )
        best = {k: min(v) for k, v in times.items()}
        out["runs"].append({
            "config": name, "d": d, "episodes": episodes, "steps": steps,
            "wall_s": times, "ratio_autograd_over_numba": best["autograd"] / best["numba"],
        })  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
