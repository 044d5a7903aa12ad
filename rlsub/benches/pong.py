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
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsub.benches import PeakRSS, _status_kib, timeit
from rlsub.core.bundled import CONFIG_DIR
from rlsub.core.config import load_experiment
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
from rlsub.envs.vector import make_vec_env
from rlsub.rollout.pairs import antithetic_policy
from rlsub.rollout.pipelined import pipelined_rollout
from rlsub.rollout.population import population_rollout

CONFIGS = CONFIG_DIR


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def raw_steps_per_s(spec: Any, slots: int, threads: int, steps: int, env: Any = None) -> float:
    """Agent steps/s of `slots` slots with a constant action (NOOP), in `env` if given."""
    own = env is None
    if env is None:
        env = make_vec_env(spec, slots, threads=threads)
    env.reset(seed=0)
    action = np.zeros(slots, dtype=np.int64)
    for _ in range(10):
        env.step(action)
    t = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    rate = slots * steps / (time.perf_counter() - t)
    if own:
        env.close()
    return rate


def _storage_bytes(obj: Any) -> int:
    """Bytes of the distinct tensor storages inside nested tuples/lists (a prepared policy)."""
    seen: dict[int, int] = {}

    def walk(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            st = o.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        elif isinstance(o, (list, tuple)):
            for x in o:
                walk(x)

    walk(obj)
    return sum(seen.values())


def es_in_loop(
    spec: Any,
    N: int,
    d: int,
    env_threads: int,
    steps: int,
    sigma: float,
    modes: list[Any],
    reseed: bool,
    pipe_env_threads: int,
    K: int = 1,
    raw: Any = None,
    rounds: int = 1,
    pair_dtype: str = "float32",
) -> dict[str, Any]:
    """Forward and theta times, then one capped rollout per mode (threads, pipelined).

    The population is ES's: antithetic pairs [z + E; z - E] around a centre z, built as
    rlsub.algos.es builds it (`rlsub.rollout.pairs`), beside the same Z as 2H independent
    members (`population_fn`) for the forward's time. With reseed false (the Pong
    configs) the envs are seeded once before the timed rollouts, which reset unseeded,
    as ES does after its first generation. The envs are built and one short rollout
    is played before each timed one (ES plays one every generation).

    `raw()` (raw ALE steps/s) runs right before and after every timed rollout, for
    `rounds` rounds per mode: this machine's speed drifts by up to 1.5x within a
    minute, so each rollout is set against the faster of its two neighbours and the
    mode's ratio is the median over the rounds.
    """
    env = make_vec_env(spec, N * K, threads=env_threads)
    dims = env_dims(env)
    kw = policy_network_kwargs("es_pong", {}, dims)
    sub = Subspace.from_spec("es_pong", kw, 0, d, "fastfood", 0).eval()
    dtype = getattr(torch, pair_dtype)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(d, generator=g) * sigma
    E = torch.randn(N // 2, d, generator=g) * sigma
    Z = torch.cat([z + E, z - E])
    out: dict[str, Any] = {"D": sub.D, "forward_ms": {}, "forward_members_ms": {}, "modes": []}
    with torch.no_grad():
        torch.set_num_threads(1)
        t = time.perf_counter()
        members: Any = sub.population_fn(sub.split(sub.theta(Z)))
        out["theta_members_s"] = time.perf_counter() - t
        t = time.perf_counter()
        policy = antithetic_policy(sub, z, E, delta_dtype=dtype)
        out["theta_s"] = time.perf_counter() - t
        out["pairs_mib"] = _storage_bytes(policy.prepared) / 2**20
        out["members_mib"] = _storage_bytes(members.prepared) / 2**20
        x = torch.randint(0, 256, (N, K, *dims.obs_shape), dtype=torch.uint8)
        for threads in sorted({m[0] for m in modes}):
            torch.set_num_threads(threads)
            out["forward_ms"][threads] = timeit(lambda: policy(x), repeat=20, warmup=2) * 1e3
            out["forward_members_ms"][threads] = (
                timeit(lambda: members(x), repeat=20, warmup=2) * 1e3
            )
    members = None  # 2 x 61 MiB less during the rollouts
    seed = None if not reseed else 0
    if not reseed:
        env.reset(seed=0)
    halves: tuple[Any, Any] | None = None
    out["peak_before_kib"] = _status_kib("VmHWM") or 0  # PeakRSS resets the high-water mark

    def rollout(pipelined: bool, max_steps: int) -> Any:
        if pipelined:
            assert halves is not None
            return pipelined_rollout(sub, Z, halves, dims, K, seed, max_steps, pairs=(z, E, dtype))
        return population_rollout(
            sub, Z, env, dims, K, seed, max_steps=max_steps, pairs=(z, E, dtype)
        )

    for threads, pipelined in modes:
        torch.set_num_threads(threads)
        if pipelined and halves is None:  # built (ROMs loaded) before the timed rollout
            nA = (N + 1) // 2  # as pipelined_rollout splits the population
            halves = (
                make_vec_env(spec, nA * K, threads=pipe_env_threads),
                make_vec_env(spec, (N - nA) * K, threads=pipe_env_threads),
            )
            if not reseed:
                for e in halves:
                    e.reset(seed=0)
        rates, ratios, raws = [], [], []
        for _ in range(rounds):
            before = raw() if raw is not None else None
            torch.set_num_threads(threads)
            rollout(pipelined, 50)  # warm-up: ES runs a rollout every generation
            with PeakRSS() as rss:
                t = time.perf_counter()
                res = rollout(pipelined, steps)
                wall = time.perf_counter() - t
            rates.append(res.slot_steps / wall)
            if raw is not None and before is not None:
                after = raw()
                raws += [before, after]
                ratios.append(rates[-1] / max(before, after))
        out["modes"].append(
            {
                "torch_threads": threads,
                "pipelined": pipelined,
                "steps_s": statistics.median(rates),
                "steps_s_rounds": rates,
                "ratio_rounds": ratios,
                "raw_rounds": raws,
                "useful_fraction": res.env_steps / res.slot_steps,
                "rss_mib": rss.mib,
            }
        )
        _log(
            f"  threads={threads} pipelined={pipelined}: "
            + ", ".join(f"{r:,.0f}" for r in rates)
            + " steps/s"
            + (f" (ratios {', '.join(f'{q:.2f}' for q in ratios)})" if ratios else "")
        )
    env.close()
    for e in halves or ():
        e.close()
    return out


def _shard_worker(conn: Any, cfg_data: dict[str, Any], d: int, members: list[int]) -> None:
    """One process of `shards_in_loop`: an ES shard (rlsub.es_ray.ESShard, what a Ray
    actor runs) answering ("run", z, noise_state, seed) with (slot_steps, start, end)."""
    from rlsub.algos.es_ray import ESShard

    shard = ESShard(cfg_data, d, 0, members)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            shard.close()
            return
        _, z, state, seed = msg
        with torch.no_grad():
            t = time.monotonic()  # system-wide on Linux: comparable across processes
            res = shard.rollout(z, state, seed)
            conn.send((res[3], t, time.monotonic()))


def _shard_generation(conns: list[Any], z: Any, state: Any, seed: int | None) -> float:
    """Slot steps/s of one generation played by all shard processes at once."""
    for c in conns:
        c.send(("run", z, state, seed))
    parts = [c.recv() for c in conns]
    return sum(p[0] for p in parts) / (max(p[2] for p in parts) - min(p[1] for p in parts))


def shards_in_loop(
    N: int, K: int, d: int, steps: int, dtypes: list[str], raw: Any, rounds: int
) -> list[dict[str, Any]]:
    """ES as `backend: ray` places it on this machine: one process per core, each an
    ESShard holding whole antithetic pairs in its own AtariVectorEnv (1 emulator thread,
    1 torch thread), emulation and forward in turn. Every process plays its share of one
    generation at once; the rate is all slot steps over first start to last end. Run
    with each pair dtype, `rounds` times, each between two raw ALE runs as above."""
    import multiprocessing as mp

    from rlsub.algos.es_ray import shard_members

    cores = os.cpu_count() or 1
    base = load_experiment(CONFIGS / "pong_es.yaml").to_dict()
    z = (torch.randn(d, generator=torch.Generator().manual_seed(0)) * 0.05).numpy()
    state = torch.Generator().manual_seed(1).get_state().numpy()
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch or ALE threads
    out = []
    for dtype in dtypes:
        data = dict(base)
        data["train"] = dict(
            base["train"],
            population=N,
            episodes_per_member=K,
            max_steps_per_episode=steps,
            pair_dtype=dtype,
            threads=1,
            env_threads=1,
            backend="local",
        )
        procs, conns = [], []
        for members in shard_members(N, cores):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_shard_worker, args=(child, data, d, members.tolist()))
            proc.start()
            procs.append(proc)
            conns.append(parent)
        try:
            for c in conns:
                c.recv()  # built

            _shard_generation(conns, z, state, 0)  # seeds the slots, warms up
            rates, ratios = [], []
            for _ in range(rounds):
                before = raw()
                rates.append(_shard_generation(conns, z, state, None))  # unseeded resets
                ratios.append(rates[-1] / max(before, raw()))
        finally:
            for c in conns:
                c.send(None)
            for proc in procs:
                proc.join(timeout=30)
        out.append(
            {
                "pair_dtype": dtype,
                "processes": len(procs),
                "steps_s": statistics.median(rates),
                "steps_s_rounds": rates,
                "ratio_rounds": ratios,
                "ratio": statistics.median(ratios),
            }
        )
        _log(
            f"  {len(procs)} shard processes, pairs {dtype}: "
            + ", ".join(f"{r:,.0f}" for r in rates)
            + f" steps/s (ratios {', '.join(f'{q:.2f}' for q in ratios)})"
        )
    return out


def ppo_in_loop(spec: Any, d: int, n_envs: int, steps: int, train: bool) -> dict[str, Any]:
    from rlsub.algos.pg import build_model
    from rlsub.algos.sb3_atari import sb3_atari_env

    cfg = load_experiment(CONFIGS / "pong_ppo.yaml")
    env = sb3_atari_env(spec, n_envs, seed=0)
    torch.set_num_threads(1)  # as rlsub.pg.train runs SB3
    model, _ = build_model(cfg, d, 0, env)
    obs: Any = env.reset()
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
