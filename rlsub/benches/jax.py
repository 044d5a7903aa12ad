"""`rlsub bench jax`: rlsub's ES beside the fastest evosax + gymnax loop we could write,
CPU jax, on CartPole-v1, Acrobot-v1, Pendulum-v1 and MountainCar-v0.

The same workload on both sides (configs/cartpole_es.yaml with its env replaced: an
obs-20-20-out tanh MLP, antithetic population 32 x 2 episodes, sigma 0.5, Adam lr 0.2,
l2 0.005, centred ranks, observation normalisation); the JAX side is
`rlsub.benches.jax_stack` (one jitted generation; `step_env` in a `lax.scan` with a done
mask, or in a `lax.while_loop` that stops with the last episode; XLA on one thread).
Measured in one run:

- useful env steps (steps of episodes still playing) per CPU-second (process time, all
  threads) of ES generations without evaluation, from z = 0, compile and the first
  generation apart: `generations` generations per side in `rounds` interleaved chunks
  (rlsub, JAX scan, JAX while, the order turning each round), at d = 8 and direct. The
  ratio is rlsub's steps per CPU-second over the faster JAX loop's, over all rounds; the
  spread of the per-round ratios is printed beside it. Episode lengths follow each side's
  own training, so they differ; the unit (useful steps) does not;
- CartPole: one solve (d = 8, seed 0) in a fresh process, the process's whole wall time;
  a sweep, d in {1, 2, 4, 8, 16} x seeds {0, 1, 2} + the direct baseline per seed (18
  trials), each stack in a fresh process, compiles included; rlsub one trial after another
  and as one batched job (rlsub.algos.es_batch); raw env steps/s at 256 slots: gymnasium's
  native CartPole vector env, gymnax's `step_env`.

What differs and is not matched: rlsub uses a sparse P, the JAX stack a dense Gaussian P,
and its statistics are float32. Needs the `bench` extra (jax, evosax) and gymnax:
pip install -e '.[bench]', then pip install --no-deps gymnax==1.0.1 (gymnax 1.0.1 pins
gymnasium < 1.4; it runs with 1.4, whose spaces are all it uses).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsub.benches import jax_stack
from rlsub.core.errors import RlsubError

D_GRID = (1, 2, 4, 8, 16)
SEEDS = (0, 1, 2)
SPECS = {  # gymnasium id -> rlsub env spec
    "CartPole-v1": "cartpole",
    "Acrobot-v1": "Acrobot-v1",
    "Pendulum-v1": "Pendulum-v1",
    "MountainCar-v0": "MountainCar-v0",
}
SLOTS = 64  # population 32 x 2 episodes (configs/cartpole_es.yaml)
TARGETS = {"CartPole-v1": 1.5, "Acrobot-v1": 1.0, "Pendulum-v1": 1.0, "MountainCar-v0": 1.0}


class RlsubTrial:
    """ES generations of configs/cartpole_es.yaml on `env_id` (no evaluation, no stop)."""

    def __init__(self, env_id: str, d: int | str, seed: int = 0) -> None:
        from rlsub.algos.es import ESState
        from rlsub.algos.es_setup import build_setup
        from rlsub.core.config import experiment_from_dict, load_experiment
        from rlsub.rollout.slots import RunningNorm

        cfg = load_experiment("cartpole_es")
        if SPECS[env_id] != "cartpole":  # the same config on another env
            cfg = experiment_from_dict({**cfg.to_dict(), "env": SPECS[env_id]}, cfg.source)
        self.es: Any = cfg.train
        torch.set_num_threads(1)
        self.K = self.es.episodes_per_member
        self.setup = build_setup(cfg, d, seed, self.es.population * self.K)
        s = self.setup
        self.norm = RunningNorm(s.dims.obs_shape, self.es.obs_clip)
        self.gen = torch.Generator().manual_seed(s.seeds["es_noise"])
        self.rng = np.random.default_rng(s.seeds["env"])
        d_ = s.sub.d
        self.state = ESState(torch.zeros(d_), torch.zeros(d_), torch.zeros(d_))

    def generation(self) -> int:
        """One generation; its useful env steps."""
        from rlsub.algos.es import es_ask, es_tell
        from rlsub.rollout.population import population_rollout

        s, es = self.setup, self.es
        eps, Z = es_ask(self.state, es.population // 2, es.sigma, self.gen)
        seed = int(self.rng.integers(2**31))
        res = population_rollout(s.sub, Z, s.env, s.dims, self.K, seed, self.norm, True)
        self.state = es_tell(self.state, eps, res.returns.mean(1), es)
        self.slot_steps = res.slot_steps
        return res.env_steps

    def close(self) -> None:
        self.setup.env.close()


def rlsub_throughput(d: int | str, seconds: float, seed: int = 0) -> dict[str, Any]:
    """CartPole ES generations for about `seconds` of wall (tests: the rlsub side alone)."""
    trial = RlsubTrial("CartPole-v1", d, seed)
    trial.generation()  # numba loads its cache (or compiles) here
    useful = slots = g = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        useful, slots, g = useful + trial.generation(), slots + trial.slot_steps, g + 1
    cpu = time.process_time() - c0
    trial.close()
    return {"generations": g, "useful_steps": useful, "slot_steps": slots, "cpu_s": cpu,
            "useful_per_cpu_s": useful / cpu}  # fmt: skip


def throughput(env_id: str, d: int | str, generations: int, rounds: int) -> dict[str, Any]:
    """rlsub and every JAX loop, `generations` each after the first, in interleaved rounds."""
    jd = None if d == "direct" else int(d)
    t0 = time.perf_counter()
    sides: dict[str, Any] = {"rlsub": RlsubTrial(env_id, d)}
    sides["rlsub"].generation()
    first = {"rlsub": time.perf_counter() - t0}
    for v in jax_stack.VARIANTS:
        t0 = time.perf_counter()
        sides[v] = jax_stack.Trial(env_id, jd, v)
        sides[v].generation()
        first[v] = time.perf_counter() - t0
    chunk = max(1, generations // rounds)
    useful = {k: [0] * rounds for k in sides}
    cpu = {k: [0.0] * rounds for k in sides}
    order = list(sides)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            c0 = time.process_time()
            useful[k][r] = sum(sides[k].generation() for _ in range(chunk))
            cpu[k][r] = time.process_time() - c0
    sides["rlsub"].close()
    rate = {k: sum(useful[k]) / sum(cpu[k]) for k in sides}
    best = max(jax_stack.VARIANTS, key=lambda v: rate[v])
    per_round = [
        (useful["rlsub"][r] / cpu["rlsub"][r]) / (useful[best][r] / cpu[best][r])
        for r in range(rounds)
    ]
    return {
        "env": env_id,
        "d": None if d == "direct" else d,
        "generations": chunk * rounds,
        "rounds": rounds,
        "first_generation_s": first,
        "compile_s": {v: sides[v].compile_s for v in jax_stack.VARIANTS},
        "useful_steps": {k: sum(useful[k]) for k in sides},
        "cpu_s": {k: sum(cpu[k]) for k in sides},
        "useful_per_cpu_s": rate,
        # mean useful steps a slot and generation: the phase of training each side is in
        "mean_length": {k: sum(useful[k]) / (chunk * rounds * SLOTS) for k in sides},
        "jax_best": best,
        "ratio": rate["rlsub"] / rate[best],
        "ratio_rounds": [min(per_round), statistics.median(per_round), max(per_round)],
        "per_round": [
            {"ratio": x, "mean_length": {k: useful[k][r] / (chunk * SLOTS) for k in sides}}
            for r, x in enumerate(per_round)
        ],
    }


def _trial(d: Any, seed: int, r: Any) -> dict[str, Any]:
    return {"d": None if d == "direct" else d, "seed": seed, "generations": r.info["generations"],
            "final_eval_mean": r.final_eval_mean, "solved": r.final_eval_mean >= r.solved_score}  # fmt: skip


def rlsub_sweep_here(batched: bool) -> dict[str, Any]:
    """The 18 trials in this process, one after another or as one batched job."""
    from rlsub.algos.es import train
    from rlsub.algos.es_batch import train_batch
    from rlsub.core.config import load_experiment

    cfg = load_experiment("cartpole_es")
    jobs = [(d, s) for d in (*D_GRID, "direct") for s in SEEDS]
    t0 = time.perf_counter()
    if batched:
        results = train_batch(cfg, jobs, progress=False)
    else:
        results = [train(cfg, d, s, progress=False) for d, s in jobs]
    trials = [_trial(d, s, r) for (d, s), r in zip(jobs, results, strict=True)]
    return {"wall_s": time.perf_counter() - t0, "trials": trials,
            "solved": sum(t["solved"] for t in trials)}  # fmt: skip


def rlsub_sweep(batched: bool) -> dict[str, Any]:
    code = (
        "import json; from rlsub.benches.jax import rlsub_sweep_here; "
        f"print(json.dumps(rlsub_sweep_here({batched!r})))"
    )
    result, wall = run_child(code)
    return result | {"process_wall_s": wall}


def rlsub_cold_solve(d: int, seed: int) -> dict[str, Any]:
    code = (
        "import json, time; t = time.perf_counter(); from rlsub.algos.es import train; "
        "from rlsub.core.config import load_experiment; "
        f"r = train(load_experiment('cartpole_es'), {d!r}, {seed!r}, progress=False); "
        "print(json.dumps({'generations': r.info['generations'], "
        "'final_eval_mean': r.final_eval_mean, 'wall_s': time.perf_counter() - t}))"
    )
    result, wall = run_child(code)
    return result | {"process_wall_s": wall}


def _in_subprocess(code: str) -> tuple[dict[str, Any], float]:
    """`run_child` after checking that jax, evosax and gymnax import here (the install hint)."""
    jax_stack._modules()  # fail here, with the install hint, rather than in the child
    return run_child(code)


def run_child(code: str) -> tuple[dict[str, Any], float]:
    """Run `code` (which prints one JSON line last) in a fresh interpreter: (dict, wall)."""
    t0 = time.perf_counter()
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", jax_stack.XLA_ONE_THREAD)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RlsubError(f"bench jax: subprocess failed: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, wall


def jax_cold_solve(d: int | None, seed: int, variant: str) -> dict[str, Any]:
    """`solve` in a fresh python process; process_wall_s includes `import jax`."""
    code = (
        "import json; from rlsub.benches.jax_stack import solve; "
        f"print(json.dumps(solve({d!r}, {seed!r}, {variant!r})))"
    )
    result, wall = _in_subprocess(code)
    return result | {"process_wall_s": wall}


def jax_sweep(
    d_grid: tuple[int, ...], seeds: tuple[int, ...], baseline: bool, variant: str
) -> dict[str, Any]:
    """Every CartPole (d, seed) trial (plus direct per seed) in one fresh process, compiles
    included."""
    code = (
        "import json; from rlsub.benches.jax_stack import sweep_here; "
        f"print(json.dumps(sweep_here({tuple(d_grid)!r}, {tuple(seeds)!r}, {baseline!r}, "
        f"{variant!r})))"
    )
    result, wall = _in_subprocess(code)
    return result | {"process_wall_s": wall}


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    from rlsub.benches.rollout import raw_steps_per_s
    from rlsub.envs.spec import load_env_spec
    from rlsub.envs.vector import make_vec_env

    jax_stack._modules()  # the install hint before anything runs (and XLA on one thread)
    quick = getattr(args, "quick", False)
    generations, rounds = (4, 2) if quick else (300, 6)
    envs = ["CartPole-v1", "Acrobot-v1"] if quick else list(SPECS)
    out: dict[str, Any] = {"load_before": os.getloadavg(), "throughput": []}
    for env_id in envs:
        for d in (8, "direct"):
            print(f"  throughput {env_id} d = {d} ...", file=sys.stderr)
            out["throughput"].append(throughput(env_id, d, generations, rounds))
    cart = [t for t in out["throughput"] if t["env"] == "CartPole-v1"]
    variant = cart[0]["jax_best"]  # the faster loop at d = 8 plays the solves and the sweep
    print("  cold solves ...", file=sys.stderr)
    out["cold_solve"] = {
        "rlsub": rlsub_cold_solve(8, 0),
        "jax": jax_cold_solve(8, 0, variant),
    }
    env = make_vec_env(load_env_spec("cartpole"), 256)
    out["raw_env"] = {
        "gymnasium_steps_s": raw_steps_per_s(env, 2000),
        "gymnax": jax_stack.raw_env_steps_per_s("CartPole-v1", 256),
    }
    env.close()
    if not quick:
        print("  sweeps (18 trials each) ...", file=sys.stderr)
        out["sweep"] = {
            "rlsub": rlsub_sweep(False),
            "rlsub_batched": rlsub_sweep(True),
            "jax": jax_sweep(D_GRID, SEEDS, True, variant),
        }
    out["load_after"] = os.getloadavg()
    ratios: dict[str, float] = {}
    for t in out["throughput"]:
        ratios[f"{t['env']} {'direct' if t['d'] is None else 'd' + str(t['d'])}"] = t["ratio"]
    ratios["cold_solve_wall"] = (
        out["cold_solve"]["rlsub"]["process_wall_s"] / out["cold_solve"]["jax"]["process_wall_s"]
    )
    if "sweep" in out:
        s = out["sweep"]
        ratios["sweep_wall"] = s["rlsub"]["process_wall_s"] / s["jax"]["process_wall_s"]
        ratios["sweep_wall_batched"] = (
            s["rlsub_batched"]["process_wall_s"] / s["jax"]["process_wall_s"]
        )
        ratios["batched_over_one_by_one"] = (
            s["rlsub_batched"]["process_wall_s"] / s["rlsub"]["process_wall_s"]
        )
    out["ratios"] = ratios
    return out, _human


def _human(r: dict[str, Any]) -> str:
    lines = [
        "| env | d | JAX scan | JAX while | rlsub | rlsub / best JAX (rounds min-median-max) "
        "| target | mean episode, rlsub / JAX |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for t in r["throughput"]:
        u, lo_med_hi = t["useful_per_cpu_s"], t["ratio_rounds"]
        target = TARGETS[t["env"]]
        met = "met" if t["ratio"] >= target else "NOT met"
        lines.append(
            f"| {t['env']} | {'direct' if t['d'] is None else t['d']} | {u['scan']:,.0f} "
            f"| {u['while']:,.0f} | {u['rlsub']:,.0f} | **{t['ratio']:.2f}** "
            f"({lo_med_hi[0]:.2f}-{lo_med_hi[1]:.2f}-{lo_med_hi[2]:.2f}) "
            f"| >= {target}: {met} "
            f"| {t['mean_length']['rlsub']:.0f} / {t['mean_length'][t['jax_best']]:.0f} |"
        )
    lines.append("")
    lines.append("useful env steps per CPU-second after compile; load average before "
                 f"{r['load_before'][0]:.1f}, after {r['load_after'][0]:.1f}")  # fmt: skip
    c = r["cold_solve"]
    lines.append(
        f"one CartPole solve d = 8 seed 0, fresh process: JAX {c['jax']['process_wall_s']:.1f} s "
        f"({c['jax']['generations']} generations, compile {c['jax']['compile_s']:.1f} s), "
        f"rlsub {c['rlsub']['process_wall_s']:.1f} s ({c['rlsub']['generations']} "
        f"generations): {r['ratios']['cold_solve_wall']:.2f}"
    )
    raw = r["raw_env"]
    lines.append(
        f"raw CartPole steps/s, 256 slots: gymnax {raw['gymnax']['steps_per_s']:,.0f}, "
        f"gymnasium native {raw['gymnasium_steps_s']:,.0f}"
    )
    if "sweep" in r:
        s = r["sweep"]
        lines.append(
            f"CartPole sweep, 18 trials, fresh process: JAX {s['jax']['process_wall_s']:.1f} s "
            f"(compile {s['jax']['compile_s_total']:.1f} s; {s['jax']['solved']} solved), "
            f"rlsub {s['rlsub']['process_wall_s']:.1f} s ({s['rlsub']['solved']} solved), "
            f"batched {s['rlsub_batched']['process_wall_s']:.1f} s: "
            f"{r['ratios']['sweep_wall']:.2f} (batched {r['ratios']['sweep_wall_batched']:.2f})"
        )
    return "\n".join(lines)
