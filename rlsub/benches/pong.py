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
Both ES loops run (sequential and pipelined, rlsub.rollout), the config's
first; --threads sets the torch threads of the forward (default: the config's).
Defaults take about two minutes here; --population/--steps/--d/--threads and
--quick change the sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from typing import Any

import torch

from rlsub.benches import _status_kib
from rlsub.benches.pong_loops import (
    CONFIGS,
    _log,
    es_in_loop,
    ppo_in_loop,
    raw_steps_per_s,
    shards_in_loop,
)
from rlsub.core.config import load_experiment
from rlsub.envs.spec import load_env_spec
from rlsub.envs.vector import make_vec_env


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    cores = os.cpu_count() or 1
    es_cfg = load_experiment(CONFIGS / "pong_es.yaml").train
    N = getattr(args, "population", None) or (4 if quick else es_cfg.population)
    K = getattr(args, "episodes", None) or es_cfg.episodes_per_member
    steps = getattr(args, "steps", None) or (40 if quick else 600)
    d = getattr(args, "d", None) or 6000
    threads = getattr(args, "threads", None) or es_cfg.threads
    rounds = 1 if quick else 3
    config_mode = (threads, bool(es_cfg.pipeline))
    modes = [config_mode, (threads, not config_mode[1])]  # the config's, then the other loop
    ppo_envs = 2 if quick else load_experiment(CONFIGS / "pong_ppo.yaml").train.n_envs
    ppo_steps = 20 if quick else 400
    spec = load_env_spec("pong")
    old_threads = torch.get_num_threads()
    try:
        raw_env = make_vec_env(spec, N * K, threads=cores)

        def raw() -> float:
            return raw_steps_per_s(spec, N * K, cores, steps, env=raw_env)

        _log(
            f"ES in the loop: population {N}, d={d}, games capped at {steps} steps, "
            f"{rounds} round(s) per loop between raw ALE runs ({N * K} slots, {cores} threads) ..."
        )
        pipe_threads = es_cfg.env_threads or cores
        es = es_in_loop(
            spec,
            N,
            d,
            cores,
            steps,
            es_cfg.sigma,
            modes,
            es_cfg.reseed,
            pipe_threads,
            K,
            raw=raw,
            rounds=rounds,
            pair_dtype=es_cfg.pair_dtype,
        )
        _log(
            f"ES as {cores} shard processes (backend: ray's placement), float32 and bfloat16 pairs ..."
        )
        shards = shards_in_loop(N, K, d, steps, ["float32", "bfloat16"], raw, rounds)
        raw_env.close()
        _log(f"raw ALE, {ppo_envs} slots; PPO in the loop ...")
        raw_ppo = raw_steps_per_s(spec, ppo_envs, cores, ppo_steps)
        ppo = ppo_in_loop(spec, d, ppo_envs, ppo_steps, train=not quick)
    finally:
        torch.set_num_threads(old_threads)
    raw_runs = [r for m in es["modes"] for r in m["raw_rounds"]]
    raw_median = statistics.median(raw_runs)
    for m in es["modes"]:
        m["ratio"] = statistics.median(m["ratio_rounds"])
    config_row = es["modes"][0]
    peak = max(_status_kib("VmHWM") or 0, es["peak_before_kib"]) or None
    result = {
        "env": spec.id,
        "cores": cores,
        "population": N,
        "episodes_per_member": K,
        "slots": N * K,
        "d": d,
        "D": es["D"],
        "steps_per_game": steps,
        "raw_steps_s": raw_median,
        "raw_steps_s_runs": raw_runs,
        "rounds": rounds,
        "es_modes": es["modes"],
        "es_config_mode": {"torch_threads": config_mode[0], "pipelined": config_mode[1]},
        "pipeline_env_threads": pipe_threads,
        "es_steps_s": config_row["steps_s"],
        "es_ratio": config_row["ratio"],
        "es_shards": shards,
        "es_pair_dtype": es_cfg.pair_dtype,
        "es_best_ratio": max([m["ratio"] for m in es["modes"]] + [m["ratio"] for m in shards]),
        "es_target": 0.5,
        "es_forward_ms_per_step": es["forward_ms"],
        "es_forward_members_ms_per_step": es["forward_members_ms"],
        "es_theta_s_per_population": es["theta_s"],
        "es_theta_members_s_per_population": es["theta_members_s"],
        "es_reseed": es_cfg.reseed,
        "theta_population_mib": N * es["D"] * 4 / 2**20,
        "policy_pairs_mib": es["pairs_mib"],
        "policy_members_mib": es["members_mib"],
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
        lines = [
            f"Pong ({r['env']}), {r['cores']} cores, ale-py AtariVectorEnv with {r['cores']} "
            f"threads; es_pong D={r['D']:,} in Fastfood d={r['d']:,}; games capped at "
            f"{r['steps_per_game']} agent steps",
            f"raw ALE, {r['slots']} slots: median {r['raw_steps_s']:,.0f} steps/s over "
            f"{len(r['raw_steps_s_runs'])} runs ({min(r['raw_steps_s_runs']):,.0f}-"
            f"{max(r['raw_steps_s_runs']):,.0f}), one before and one after every ES rollout; "
            f"each rollout's ratio is to the faster of its two, the loop's the median of "
            f"{r['rounds']} round(s)",
            "| ES in the loop | torch threads | steps/s (median) | ratio to raw (median) | rounds | useful steps |",
            "| --- | ---: | ---: | ---: | --- | ---: |",
        ]
        for i, m in enumerate(r["es_modes"]):
            kind = (
                f"pipelined (2 envs, {r['pipeline_env_threads']} emulator thread(s) each)"
                if m["pipelined"]
                else f"sequential ({r['cores']} emulator threads)"
            )
            tag = f" (configs/pong_es.yaml), pairs {r['es_pair_dtype']}" if i == 0 else ""
            lines.append(
                f"| {kind}{tag} | {m['torch_threads']} | {m['steps_s']:,.0f} | "
                f"{m['ratio']:.2f} | {', '.join(f'{q:.2f}' for q in m['ratio_rounds'])} | "
                f"{m['useful_fraction']:.0%} |"
            )
        for m in r["es_shards"]:
            lines.append(
                f"| {m['processes']} shard processes, 1 emulator + 1 torch thread each "
                f"(backend: ray's placement), pairs {m['pair_dtype']} | 1 | "
                f"{m['steps_s']:,.0f} | {m['ratio']:.2f} | "
                f"{', '.join(f'{q:.2f}' for q in m['ratio_rounds'])} | - |"
            )
        fwd = ", ".join(
            f"{t} thread(s) {ms:.1f} ms (as {r['population']} independent members: "
            f"{r['es_forward_members_ms_per_step'][t]:.1f} ms)"
            for t, ms in sorted(r["es_forward_ms_per_step"].items())
        )
        lines += [
            f"ES target: ratio >= {r['es_target']}; best {r['es_best_ratio']:.2f}",
            f"population forward ({r['population']} members in antithetic pairs, "
            f"{r['episodes_per_member']} obs each) "
            f"per step: {fwd}",
            f"theta of the population per rollout: {r['es_theta_s_per_population']:.2f} s "
            f"(1 + {r['population'] // 2} projections; as independent members "
            f"{r['es_theta_members_s_per_population']:.2f} s); resets "
            + ("seeded every rollout" if r["es_reseed"] else "unseeded (reseed: false)"),
            f"theta of the population: {r['population']} x {r['D']:,} float32 = "
            f"{r['theta_population_mib']:.0f} MiB; the prepared policy holds "
            f"{r['policy_pairs_mib']:.0f} MiB as pairs ({r['policy_members_mib']:.0f} MiB as "
            f"members); process peak RSS {r['peak_rss_mib'] or 0:,.0f} MiB",
            f"raw ALE, {r['ppo_envs']} slots: {r['raw_steps_s_ppo_slots']:,.0f} steps/s; "
            f"PPO predict in the loop: {r['ppo_steps_s']:,.0f} steps/s, ratio {r['ppo_ratio']:.2f}",
            f"PPO training (collection + one update of configs/pong_ppo.yaml): {train}",
        ]
        return "\n".join(lines)

    return result, human
