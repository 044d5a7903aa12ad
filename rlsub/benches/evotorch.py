"""`rlsub bench evotorch`: rlsub's ES beside evotorch's PGPE on CartPole-v1.

Same env (CartPole-v1), network (4-20-20-2 tanh, D = 562), population,
episodes per member, generation budget and stopping rule, from
configs/cartpole_es.yaml:

- rlsub ES in a d = 8 sparse subspace and directly on all D parameters
  (batched population rollouts in one native vector env);
- evotorch 0.6's PGPE (ClipUp, centred ranks, observation normalisation) on its
  `GymNE` problem with the same network, all D parameters, in one process.

Each method trains on seeds 0..S-1; every `eval_every` generations its centre
is evaluated on `eval_episodes` deterministic episodes and training stops once
that reaches 475 (the config's rule); the final centre is evaluated on fresh
episodes by the same evaluator (argmax actions, the method's own observation
normalisation). Printed: solve rate and mean wall time per method, and the
wall-time ratio rlsub / evotorch, from one run. evotorch is a benchmark-only
dependency: ``pip install 'rlsub[bench]'``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlsub.core.bundled import config_path
from rlsub.core.config import load_experiment, with_overrides
from rlsub.core.errors import RlsubError

CONFIG = config_path("cartpole_es")
SOLVED = 475.0


def _evaluate(policy: torch.nn.Module, episodes: int, seed: int) -> float:
    """Mean return of argmax actions of `policy` over `episodes` CartPole-v1 episodes."""
    env = gym.make("CartPole-v1")
    total = 0.0
    with torch.no_grad():
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            done = False
            while not done:
                out = policy(torch.as_tensor(obs, dtype=torch.float32))
                obs, r, term, trunc, _ = env.step(int(out.argmax()))
                total += float(r)
                done = term or trunc
    env.close()
    return total / episodes


def run_evotorch(es: Any, seed: int, eval_episodes: int) -> dict[str, Any]:
    from evotorch.algorithms import PGPE
    from evotorch.neuroevolution import GymNE

    torch.manual_seed(seed)  # evotorch draws from torch's global generator
    np.random.seed(seed)
    problem = GymNE(
        env="CartPole-v1",
        network="Linear(obs_length, 20) >> Tanh() >> Linear(20, 20) >> Tanh() >> Linear(20, act_length)",
        observation_normalization=es.obs_norm,
        num_episodes=es.episodes_per_member,
        num_actors=None,  # one process, as rlsub's default
    )
    searcher = PGPE(
        problem,
        popsize=es.population,
        center_learning_rate=0.075,  # evotorch's documented CartPole/MuJoCo-style settings,
        stdev_learning_rate=0.1,  # ClipUp max speed = 2 x center lr
        optimizer="clipup",
        optimizer_config={"max_speed": 0.15},
        radius_init=0.27,
        ranking_method="centered",
    )
    t0 = time.perf_counter()
    gens = 0
    eval_seed = 10_000 * (seed + 1)
    for g in range(es.generations):
        searcher.step()
        gens = g + 1
        if gens % es.eval_every == 0:
            policy = problem.to_policy(searcher.status["center"])
            eval_seed += eval_episodes
            if _evaluate(policy, eval_episodes, eval_seed) >= SOLVED:
                break
    wall = time.perf_counter() - t0
    final = _evaluate(problem.to_policy(searcher.status["center"]), eval_episodes, 999_999 + seed)
    return {"final": final, "wall_s": wall, "generations": gens}


def run_rlsub(cfg: Any, d: int | str, seed: int) -> dict[str, Any]:
    from rlsub.algos.es import train

    t0 = time.perf_counter()
    r = train(cfg, d, seed, progress=False)
    return {
        "final": r.final_eval_mean,
        "wall_s": time.perf_counter() - t0,
        "generations": r.info.get("generations"),
    }


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    try:
        import evotorch  # noqa: F401
    except ImportError:
        raise RlsubError(
            "bench evotorch needs evotorch: pip install 'rlsub[bench]' (or pip install evotorch)"
        ) from None
    # evotorch logs INFO lines to stdout, which would break --json's one object there.
    logging.getLogger("evotorch").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    quick = getattr(args, "quick", False)
    seeds = [0] if quick else [0, 1, 2]
    cfg = load_experiment(CONFIG)
    if quick:
        cfg = with_overrides(cfg, train={"generations": 4})
    es: Any = cfg.train
    eval_episodes = es.eval_episodes or 20
    methods = {
        "rlsub ES, d = 8 (sparse)": lambda s: run_rlsub(cfg, 8, s),
        "rlsub ES, direct (D = 562)": lambda s: run_rlsub(cfg, "direct", s),
        "evotorch PGPE, direct (D = 562)": lambda s: run_evotorch(es, s, eval_episodes),
    }
    rows = []
    for name, fn in methods.items():
        runs = []
        for s in seeds:
            r = fn(s)
            runs.append(r)
            print(
                f"  {name} seed {s}: final {r['final']:.1f} in {r['wall_s']:.1f} s "
                f"({r['generations']} generations)",
                file=sys.stderr,
            )
        rows.append(
            {
                "method": name,
                "solved": sum(r["final"] >= SOLVED for r in runs),
                "seeds": len(runs),
                "mean_final": float(np.mean([r["final"] for r in runs])),
                "mean_wall_s": float(np.mean([r["wall_s"] for r in runs])),
                "runs": runs,
            }
        )
    evo = rows[-1]["mean_wall_s"]
    for row in rows:
        row["wall_ratio_vs_evotorch"] = row["mean_wall_s"] / evo if evo > 0 else math.nan
    result = {
        "env": "CartPole-v1",
        "population": es.population,
        "episodes_per_member": es.episodes_per_member,
        "generations": es.generations,
        "rows": rows,
    }

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"CartPole-v1, population {r['population']} x {r['episodes_per_member']} episodes, "
            f"at most {r['generations']} generations, stop at 475",
            "",
            "| method | solved | mean final eval | mean wall (s) | wall / evotorch |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for x in r["rows"]:
            lines.append(
                f"| {x['method']} | {x['solved']}/{x['seeds']} | {x['mean_final']:.1f} | "
                f"{x['mean_wall_s']:.1f} | {x['wall_ratio_vs_evotorch']:.2f} |"
            )
        return "\n".join(lines)

    return result, human
