"""`rlsub bench pong`: Atari Pong throughput with the policy in the loop, as ratios.

All in one run, on ale-py's `AtariVectorEnv` with one emulator thread per core:

1. raw ALE: a constant action (NOOP) in every slot, S = population slots
   (measured before and after the ES run; the faster of the two is used, so
   the ratio is conservative) and in PPO's slot count;
2. ES policy in the loop: `population_rollout` of a population of es_pong
   networks (D = 1,005,974) in a Fastfood subspace (d = 6,000): theta of the
   population computed once per rollout, one batched forward per step (grouped
   convolutions, batched FC), games capped at `--steps` agent steps as in
   configs/pong_es.yaml. Counted as slot steps, the same work as the raw run
   (finished slots are stepped and masked; the useful fraction is shown);
3. PPO policy in the loop: SB3 `predict` of the subspace Nature-CNN policy of
   configs/pong_ppo.yaml through the SB3 adapter (rlsub.sb3_atari), 8 slots;
   and, unless --quick, one full PPO update (collection + 4 epochs of SGD) for
   the training throughput.

Also printed: the population forward's time per step, the time to compute the
population's theta (N Fastfood products), the memory of a population of theta
(N x D float32) and the process's peak resident memory.
Defaults take about a minute here; --population/--steps/--d/--threads scale it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlsub.benches import PeakRSS, _status_kib, timeit
from rlsub.cli import emit
from rlsub.config import load_experiment
from rlsub.envs import env_dims, load_env_spec, make_vec_env, policy_network_kwargs
from rlsub.rollout import population_rollout
from rlsub.subspace import Subspace

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def raw_steps_per_s(spec: Any, slots: int, threads: int, steps: int) -> float:
    env = make_vec_env(spec, slots, threads=threads)
    env.reset(seed=0)
    action = np.zeros(slots, dtype=np.int64)
    for _ in range(10):
        env.step(action)
    t = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    rate = slots * steps / (time.perf_counter() - t)
    env.close()
    return rate


def es_in_loop(
    spec: Any, N: int, d: int, threads: int, env_threads: int, steps: int, sigma: float
) -> dict[str, Any]:
    env = make_vec_env(spec, N, threads=env_threads)
    dims = env_dims(env)
    kw = policy_network_kwargs("es_pong", {}, dims)
    sub = Subspace.from_spec("es_pong", kw, 0, d, "fastfood", 0).eval()
    Z = torch.randn(N, d, generator=torch.Generator().manual_seed(0)) * sigma
    torch.set_num_threads(threads)
    with torch.no_grad():
        t = time.perf_counter()
        policy = sub.population_fn(sub.split(sub.theta(Z)))
        theta_s = time.perf_counter() - t
        x = torch.rand(N, 1, *dims.obs_shape)
        forward_s = timeit(lambda: policy(x), repeat=20, warmup=2)
    peak_before = _status_kib("VmHWM") or 0  # PeakRSS resets the high-water mark
    with PeakRSS() as rss:
        t = time.perf_counter()
        res = population_rollout(sub, Z, env, dims, 1, 0, max_steps=steps)
        wall = time.perf_counter() - t
    env.close()
    return {
        "D": sub.D,
        "rate": res.slot_steps / wall,
        "useful_fraction": res.env_steps / res.slot_steps,
        "mean_return": float(res.returns.mean()),
        "theta_s": theta_s,
        "forward_ms": forward_s * 1e3,
        "rollout_rss_mib": rss.mib,
        "peak_before_kib": peak_before,
    }


def ppo_in_loop(spec: Any, d: int, n_envs: int, steps: int, train: bool) -> dict[str, Any]:
    from rlsub.pg import build_model
    from rlsub.sb3_atari import sb3_atari_env

    cfg = load_experiment(CONFIGS / "pong_ppo.yaml")
    env = sb3_atari_env(spec, n_envs, seed=0)
    torch.set_num_threads(1)  # as rlsub.pg.train runs SB3
    model, _ = build_model(cfg, d, 0, env)
    obs = env.reset()
    for _ in range(5):
        obs, *_ = env.step(model.predict(obs)[0])
    t = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(model.predict(obs)[0])
    out: dict[str, Any] = {"rate": n_envs * steps / (time.perf_counter() - t)}
    if train:
        update = int(cfg.train.hyperparams.get("n_steps", 128)) * n_envs
        t = time.perf_counter()
        model.learn(total_timesteps=update)
        out["train_rate"] = update / (time.perf_counter() - t)
        out["update_steps"] = update
    env.close()
    return out


def main(args: argparse.Namespace) -> None:
    quick = getattr(args, "quick", False)
    cores = os.cpu_count() or 1
    es_cfg = load_experiment(CONFIGS / "pong_es.yaml").train
    N = getattr(args, "population", None) or (4 if quick else es_cfg.population)
    steps = getattr(args, "steps", None) or (40 if quick else es_cfg.max_steps_per_episode)
    d = getattr(args, "d", None) or 6000
    threads = getattr(args, "threads", None) or es_cfg.threads
    ppo_envs = 2 if quick else load_experiment(CONFIGS / "pong_ppo.yaml").train.n_envs
    ppo_steps = 20 if quick else 400
    spec = load_env_spec("pong")
    old_threads = torch.get_num_threads()
    try:
        _log(f"raw ALE, {N} slots, {cores} threads ...")
        raw1 = raw_steps_per_s(spec, N, cores, steps)
        _log(f"ES in the loop: population {N}, d={d}, {steps} steps ...")
        es = es_in_loop(spec, N, d, threads, cores, steps, es_cfg.sigma)
        raw2 = raw_steps_per_s(spec, N, cores, steps)
        _log(f"raw ALE, {ppo_envs} slots; PPO in the loop ...")
        raw_ppo = raw_steps_per_s(spec, ppo_envs, cores, ppo_steps)
        ppo = ppo_in_loop(spec, d, ppo_envs, ppo_steps, train=not quick)
    finally:
        torch.set_num_threads(old_threads)
    raw = max(raw1, raw2)
    theta_bytes = N * es["D"] * 4
    peak = max(_status_kib("VmHWM") or 0, es["peak_before_kib"]) or None
    result = {
        "env": spec.id,
        "cores": cores,
        "population": N,
        "d": d,
        "D": es["D"],
        "steps_per_game": steps,
        "torch_threads_es": threads,
        "raw_steps_s": raw,
        "raw_steps_s_runs": [raw1, raw2],
        "es_steps_s": es["rate"],
        "es_ratio": es["rate"] / raw,
        "es_target": 0.5,
        "es_useful_fraction": es["useful_fraction"],
        "es_forward_ms_per_step": es["forward_ms"],
        "es_forward_obs_s": N / es["forward_ms"] * 1e3,
        "es_theta_s_per_population": es["theta_s"],
        "theta_population_mib": theta_bytes / 2**20,
        "es_rollout_peak_rss_mib": es["rollout_rss_mib"],
        "ppo_envs": ppo_envs,
        "raw_steps_s_ppo_slots": raw_ppo,
        "ppo_steps_s": ppo["rate"],
        "ppo_ratio": ppo["rate"] / raw_ppo,
        "ppo_train_steps_s": ppo.get("train_rate"),
        "peak_rss_mib": None if peak is None else peak / 1024,
    }

    def human(r: dict[str, Any]) -> str:
        train = (
            "(skipped: --quick)"
            if r["ppo_train_steps_s"] is None
            else f"{r['ppo_train_steps_s']:,.0f} agent steps/s"
        )
        return "\n".join(
            [
                f"Pong ({r['env']}), {r['cores']} cores, ale-py AtariVectorEnv with "
                f"{r['cores']} threads; es_pong D={r['D']:,}, Fastfood d={r['d']:,}",
                f"raw ALE, {r['population']} slots          {r['raw_steps_s']:9,.0f} steps/s "
                f"(runs {r['raw_steps_s_runs'][0]:,.0f}, {r['raw_steps_s_runs'][1]:,.0f})",
                f"ES in the loop, population {r['population']:<3}  {r['es_steps_s']:9,.0f} "
                f"steps/s  ratio {r['es_ratio']:.2f} (target >= {r['es_target']}); "
                f"useful {r['es_useful_fraction']:.0%}",
                f"  batched forward {r['es_forward_ms_per_step']:.1f} ms/step "
                f"({r['es_forward_obs_s']:,.0f} obs/s, {r['torch_threads_es']} torch thread(s)); "
                f"theta of the population {r['es_theta_s_per_population']:.2f} s per rollout",
                f"raw ALE, {r['ppo_envs']} slots            {r['raw_steps_s_ppo_slots']:9,.0f} "
                "steps/s",
                f"PPO predict in the loop       {r['ppo_steps_s']:9,.0f} steps/s  "
                f"ratio {r['ppo_ratio']:.2f}; PPO training (one update) {train}",
                f"theta of the population: {r['population']} x {r['D']:,} float32 = "
                f"{r['theta_population_mib']:.0f} MiB; rollout peak RSS "
                f"+{r['es_rollout_peak_rss_mib'] or 0:.0f} MiB; process peak RSS "
                f"{r['peak_rss_mib'] or 0:,.0f} MiB",
            ]
        )

    emit(args, result, human)
