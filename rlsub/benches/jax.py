"""`rlsub bench jax`: rlsub's CartPole ES beside evosax OpenAI-ES on gymnax with CPU jax.

The same workload on both sides (configs/cartpole_es.yaml: 4-20-20-2 tanh MLP,
D = 562, antithetic population 32 x 2 episodes, sigma 0.5, Adam lr 0.2, l2 0.005,
centred ranks; stop once the centre's 20-episode mean reaches 475, checked every
2 generations, at most 150 generations). The JAX side is
`rlsub.benches.jax_stack` (jitted lax.scan rollouts, vmapped over members and
episodes). Measured in one run:

- useful env steps per CPU-second (process time, all threads) of ES generations
  without evaluation, from z = 0, for about `seconds` each: direct (D = 562) and
  d = 8. The JAX side is measured with a fresh key per env.step (the gymnax
  idiom) and without (one key per slot: XLA then hoists gymnax's per-step reset
  out of the loop, the fastest JAX variant we found); the ratios use the faster.
  The JAX scan steps every slot 500 times (masked after the episode ends), so its
  slot steps per CPU-second are printed too: the most it could reach if every
  episode lasted 500 steps;
- one solve (d = 8, seed 0) in a fresh process, the process's whole wall time;
- a whole sweep, d in {1, 2, 4, 8, 16} x seeds {0, 1, 2} + the direct baseline
  per seed (18 trials), each stack in a fresh process, compiles included; rlsub
  one trial after another and as one batched job (rlsub.algos.es_batch);
- raw env steps/s at 256 slots: gymnasium's native CartPole vector env, gymnax's.

What differs and is not matched: rlsub normalises observations (the config's
obs_norm) and uses a sparse P; the JAX stack has no normalisation and a dense
Gaussian P; so solve rates per d differ and are printed, not compared.
Needs the `bench` extra (jax, evosax) and gymnax: pip install -e '.[bench]', then
pip install --no-deps gymnax==1.0.1 (gymnax 1.0.1 pins gymnasium < 1.4; it runs
with 1.4, whose spaces are all it uses).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsub.benches.jax_stack import run_child

D_GRID = (1, 2, 4, 8, 16)
SEEDS = (0, 1, 2)


def rlsub_throughput(d: int | str, seconds: float, seed: int = 0) -> dict[str, Any]:
    """ES generations of cartpole_es (no evaluation, no stop) for about `seconds` of wall."""
    from rlsub.algos.es import ESState, es_ask, es_tell
    from rlsub.algos.es_setup import build_setup
    from rlsub.core.config import load_experiment
    from rlsub.rollout.population import population_rollout
    from rlsub.rollout.slots import RunningNorm

    cfg = load_experiment("cartpole_es")
    es: Any = cfg.train
    torch.set_num_threads(1)
    K = es.episodes_per_member
    setup = build_setup(cfg, d, seed, es.population * K)
    env, dims, seeds, sub = setup.env, setup.dims, setup.seeds, setup.sub
    norm = RunningNorm(dims.obs_shape, es.obs_clip)
    gen = torch.Generator().manual_seed(seeds["es_noise"])
    rng = np.random.default_rng(seeds["env"])
    state = ESState(torch.zeros(sub.d), torch.zeros(sub.d), torch.zeros(sub.d))

    def generation() -> tuple[int, int]:
        nonlocal state
        eps, Z = es_ask(state, es.population // 2, es.sigma, gen)
        res = population_rollout(sub, Z, env, dims, K, int(rng.integers(2**31)), norm, True)
        state = es_tell(state, eps, res.returns.mean(1), es)
        return res.env_steps, res.slot_steps

    t0 = time.perf_counter()
    generation()  # numba loads its cache (or compiles) here
    first_s = time.perf_counter() - t0
    useful = slots = g = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        u, s = generation()
        useful, slots, g = useful + u, slots + s, g + 1
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    env.close()
    return {
        "d": None if d == "direct" else d,
        "first_generation_s": first_s,
        "generations": g,
        "useful_steps": useful,
        "slot_steps": slots,
        "wall_s": wall,
        "cpu_s": cpu,
        "useful_per_cpu_s": useful / cpu,
        "useful_per_wall_s": useful / wall,
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


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    from rlsub.benches import jax_stack
    from rlsub.benches.rollout import raw_steps_per_s
    from rlsub.envs.spec import load_env_spec
    from rlsub.envs.vector import make_vec_env

    jax_stack._modules()  # the install hint before anything runs
    quick = getattr(args, "quick", False)
    seconds = 2.0 if quick else 10.0
    out: dict[str, Any] = {"throughput": {}}
    for label, d in (("direct", "direct"), ("d8", 8)):
        jd = None if d == "direct" else int(d)
        print(f"  throughput {label} ...", file=sys.stderr)
        out["throughput"][label] = {
            "rlsub": rlsub_throughput(d, seconds),
            "jax": jax_stack.throughput(jd, seconds, step_keys=True),
            "jax_one_key_per_slot": jax_stack.throughput(jd, seconds, step_keys=False),
        }
    print("  cold solves ...", file=sys.stderr)
    out["cold_solve"] = {"rlsub": rlsub_cold_solve(8, 0), "jax": jax_stack.cold_solve(8, 0)}
    env = make_vec_env(load_env_spec("cartpole"), 256)
    out["raw_env"] = {
        "gymnasium_steps_s": raw_steps_per_s(env, 2000),
        "gymnax": jax_stack.raw_env_steps_per_s(256, 500),
    }
    env.close()
    if not quick:
        print("  sweeps (18 trials each) ...", file=sys.stderr)
        out["sweep"] = {
            "rlsub": rlsub_sweep(False),
            "rlsub_batched": rlsub_sweep(True),
            "jax": jax_stack.sweep(D_GRID, SEEDS, True),
        }
    ratios: dict[str, float] = {}
    for label, t in out["throughput"].items():
        best_jax = max(t["jax"]["useful_per_cpu_s"], t["jax_one_key_per_slot"]["useful_per_cpu_s"])
        ratios[f"useful_per_cpu_s_{label}"] = t["rlsub"]["useful_per_cpu_s"] / best_jax
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
        "| figure | evosax + gymnax | rlsub | rlsub / JAX |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, t in r["throughput"].items():
        j, j1, m = t["jax"], t["jax_one_key_per_slot"], t["rlsub"]
        lines.append(
            f"| useful env steps / CPU-s, {label} (after compile) | {j['useful_per_cpu_s']:,.0f} "
            f"(one key per slot: {j1['useful_per_cpu_s']:,.0f}; slot steps "
            f"{j1['slot_steps'] / j1['cpu_s']:,.0f}; compile {j['compile_s']:.1f} s) "
            f"| {m['useful_per_cpu_s']:,.0f} | {r['ratios'][f'useful_per_cpu_s_{label}']:.2f} |"
        )
    c = r["cold_solve"]
    lines.append(
        f"| one solve d = 8 seed 0, fresh process | {c['jax']['process_wall_s']:.1f} s "
        f"({c['jax']['generations']} generations, compile {c['jax']['compile_s']:.1f} s) "
        f"| {c['rlsub']['process_wall_s']:.1f} s ({c['rlsub']['generations']} generations) "
        f"| {r['ratios']['cold_solve_wall']:.2f} |"
    )
    raw = r["raw_env"]
    lines.append(
        f"| raw env steps/s, 256 slots | {raw['gymnax']['steps_per_s']:,.0f} (gymnax) "
        f"| {raw['gymnasium_steps_s']:,.0f} (gymnasium native) | |"
    )
    if "sweep" in r:
        s = r["sweep"]
        lines.append(
            f"| sweep, 18 trials, fresh process | {s['jax']['process_wall_s']:.1f} s "
            f"(compile {s['jax']['compile_s_total']:.1f} s; {s['jax']['solved']} solved) "
            f"| {s['rlsub']['process_wall_s']:.1f} s ({s['rlsub']['solved']} solved); batched "
            f"{s['rlsub_batched']['process_wall_s']:.1f} s | {r['ratios']['sweep_wall']:.2f} "
            f"(batched {r['ratios']['sweep_wall_batched']:.2f}) |"
        )
    return "\n".join(lines)
