"""The timed loops of `rlsub bench pong`: raw ALE, ES with the policy in the loop
(sequential, pipelined, one shard process per core), and SB3 PPO on the same env.

Imports: any layer below benches.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from rlsub.benches import PeakRSS, _status_kib, timeit
from rlsub.core.bundled import CONFIG_DIR
from rlsub.core.config import load_experiment
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import env_dims, policy_network_kwargs
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
