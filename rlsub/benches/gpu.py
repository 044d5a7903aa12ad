"""`rlsub bench gpu`: what one GPU machine does for rlsub, measured in one run.

Run by scripts/gpu_check.sh on a GPU machine (`--device cuda`, at most 8
minutes), and by the tests on the CPU (`--device cpu --quick`: the same code, tiny
sizes). Four parts, then the prices they imply:

1. correctness: each projection's P z (and its backward, P^T g) on the device
   equals the CPU's; a Subspace forward (MLP and es_pong ConvNet) and ES's
   antithetic population forward on the device equal the CPU's. TF32 is off, so
   float32 results agree to rounding (max relative error printed, limit 1e-4;
   2e-3 for convolutions, whose cuDNN algorithms sum in other orders);
2. ES on Pong: `population_rollout` of an antithetic population of es_pong
   policies (D = 1,005,974, Fastfood d = 6,000) with theta and the forward on
   the device and ale-py's AtariVectorEnv on all cores, games capped; agent
   steps/s beside raw ALE steps/s with the same slots;
3. PPO on Pong (configs/pong_ppo.yaml, SB3 on the device): training agent
   steps/s over one PPO update (collection + 4 epochs of SGD), after a warm-up
   update;
4. MNIST FC (configs/mnist_fc.yaml's network and training) on the device:
   seconds per epoch at a few d, on MNIST-shaped random data (the machine has no
   MNIST files; the time of an epoch depends only on the shapes), and 3 seeds at
   d = 750 as one batched job (rlsub.algos.supervised_batch) against one after
   another (target: <= 0.6).

Prices: hours for the full sweeps of configs/pong_es.yaml, pong_ppo.yaml,
pong_ppo_gpu.yaml and mnist_fc.yaml at 100 epochs, from these rates (ES at its
capped steps per game, an upper bound on steps; PPO at its total_timesteps).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsub.core.config import load_experiment, with_overrides
from rlsub.core.device import resolve
from rlsub.core.projections import make_projection
from rlsub.core.subspace import Subspace


def _log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def correctness(device: torch.device, quick: bool) -> dict[str, Any]:
    """Max relative errors of device results against the CPU's (see the module docstring)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out: dict[str, Any] = {}
    D, d = (5_000, 50) if quick else (300_000, 1_000)
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(8, d, generator=g)
    R = torch.randn(8, D, generator=g)
    for kind in ("dense", "sparse", "fastfood"):
        P = make_projection(kind, D if kind != "dense" else D // 10, d, 0)
        r = R[:, : P.D]
        zc = Z.detach().clone().requires_grad_(True)
        yc = P(zc)
        (yc * r).sum().backward()
        P.to(device)
        zd = Z.detach().clone().to(device).requires_grad_(True)
        yd = P(zd)
        (yd * r.to(device)).sum().backward()
        assert zc.grad is not None and zd.grad is not None
        out[f"projection_{kind}"] = {"forward": _rel(yd, yc), "backward": _rel(zd.grad, zc.grad)}
    for name, shape, dd in (("mlp", (64, 4), 20), ("es_pong", (16, 4, 84, 84), 200)):
        kw = {"in_dim": 4, "out_dim": 2, "hidden": [64, 64]} if name == "mlp" else {}
        sub = Subspace.from_spec(name, kw, 0, dd, "fastfood", 0).eval()
        x = torch.rand(shape, generator=g)
        z = torch.randn(dd, generator=g)
        with torch.no_grad():
            sub.z.copy_(z)
            cpu = sub(x)
            Zp = torch.randn(4, dd, generator=g)
            pop_cpu = sub.population_fn(sub.split(sub.theta(Zp)))(x[None].expand(4, *shape))
            sub.to(device)
            dev = sub(x.to(device))
            pop_dev = sub.population_fn(sub.split(sub.theta(Zp.to(device))))(
                x.to(device)[None].expand(4, *shape)
            )
        out[f"subspace_{name}"] = {"forward": _rel(dev, cpu), "population": _rel(pop_dev, pop_cpu)}
    worst = 0.0
    for key, errs in out.items():
        limit = 2e-3 if "es_pong" in key else 1e-4
        worst = max(worst, max(errs.values()) / limit)
    out["passed"] = worst <= 1.0
    return out


def es_pong(device: torch.device, N: int, steps: int, d: int, cores: int) -> dict[str, Any]:
    from rlsub.benches.pong_loops import raw_steps_per_s
    from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
    from rlsub.envs.vector import make_vec_env
    from rlsub.rollout.population import population_rollout

    spec = load_env_spec("pong")
    env = make_vec_env(spec, N, threads=cores)
    dims = env_dims(env)
    kw = policy_network_kwargs("es_pong", {}, dims)
    sub = Subspace.from_spec("es_pong", kw, 0, d, "fastfood", 0).eval().to(device)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(d, generator=g) * 0.05
    E = torch.randn(N // 2, d, generator=g) * 0.05
    Z = torch.cat([z + E, z - E])
    population_rollout(sub, Z, env, dims, 1, 0, max_steps=5, pairs=(z, E))  # warm-up
    _sync(device)
    t = time.perf_counter()
    res = population_rollout(sub, Z, env, dims, 1, None, max_steps=steps, pairs=(z, E))
    wall = time.perf_counter() - t
    raw = raw_steps_per_s(spec, N, cores, steps, env=env)
    env.close()
    return {
        "population": N,
        "d": d,
        "D": sub.D,
        "cores": cores,
        "steps_per_game": steps,
        "slot_steps": res.slot_steps,
        "agent_steps_s": res.slot_steps / wall,
        "raw_ale_steps_s": raw,
        "ratio": res.slot_steps / wall / raw,
    }


def ppo_pong(device: torch.device, n_envs: int, quick: bool) -> dict[str, Any]:
    from rlsub.algos.pg import build_model
    from rlsub.algos.sb3_atari import sb3_atari_env
    from rlsub.envs.spec import load_env_spec

    cfg = load_experiment("pong_ppo")
    hp = {**cfg.train.hyperparams, **({"n_steps": 16, "batch_size": 16} if quick else {})}
    cfg = with_overrides(cfg, train={"device": str(device), "n_envs": n_envs, "hyperparams": hp})
    env = sb3_atari_env(load_env_spec("pong"), n_envs, seed=0)
    model, _ = build_model(cfg, 1000 if quick else 6000, 0, env)
    update = int(hp["n_steps"]) * n_envs
    model.learn(total_timesteps=update)  # warm-up update
    t = time.perf_counter()
    model.learn(total_timesteps=update, reset_num_timesteps=False)
    wall = time.perf_counter() - t
    env.close()
    return {"n_envs": n_envs, "update_steps": update, "train_steps_s": update / wall}


def mnist_fc(device: torch.device, quick: bool) -> dict[str, Any]:
    """Seconds per epoch of configs/mnist_fc.yaml's training on MNIST-shaped random data,
    and 3 seeds as one batched job against one after another (rlsub bench supervised's)."""
    from rlsub.algos.supervised import fit
    from rlsub.benches.supervised import batched_ratio, mnist_shaped

    data = mnist_shaped(*((2_000, 500) if quick else (60_000, 10_000)))
    cfg = load_experiment("mnist_fc")
    cfg = with_overrides(cfg, train={"epochs": 1, "device": str(device)})
    rows = []
    for d in [10] if quick else [10, 750, 5000]:
        fit(cfg, cfg.train, d, 0, data)  # warm-up (kernels, allocator)
        _sync(device)
        t = time.perf_counter()
        fit(cfg, cfg.train, d, 1, data)
        _sync(device)
        rows.append({"d": d, "epoch_s": time.perf_counter() - t})
    batched = batched_ratio(str(device), 10 if quick else 750, data, rounds=1)
    return {"n_train": data.n_train, "batch_size": cfg.train.batch_size, "rows": rows,
            "batched_3_seeds": batched}  # fmt: skip


def prices(es: dict[str, Any], ppo: dict[str, Any], mnist: dict[str, Any]) -> dict[str, Any]:
    """Hours of the full sweeps at the measured rates (the module docstring)."""
    from rlsub.envs.spec import load_env_spec

    def trials(cfg: Any) -> int:
        return len(cfg.sweep.d_grid) * len(cfg.sweep.seeds) + (
            len(cfg.sweep.seeds) if cfg.sweep.baseline else 0
        )

    out: dict[str, Any] = {}
    spec = load_env_spec("pong")
    c = load_experiment("pong_es")
    tr = c.train
    game = tr.max_steps_per_episode or spec.max_episode_steps
    train_steps = tr.generations * tr.population * tr.episodes_per_member * game
    eval_steps = (
        (tr.generations // tr.eval_every + 1) * (tr.eval_episodes or spec.eval_episodes) * 1000
    )
    per_trial = (train_steps + eval_steps) / es["agent_steps_s"]
    out["pong_es"] = {"trials": trials(c), "agent_steps_per_trial": train_steps + eval_steps,
                      "hours": trials(c) * per_trial / 3600}  # fmt: skip
    for name in ("pong_ppo", "pong_ppo_gpu"):
        c = load_experiment(name)
        per_trial = c.train.total_timesteps / ppo["train_steps_s"]
        out[name] = {"trials": trials(c), "agent_steps_per_trial": c.train.total_timesteps,
                     "hours": trials(c) * per_trial / 3600}  # fmt: skip
    c = load_experiment("mnist_fc")
    epoch_s = float(np.mean([r["epoch_s"] for r in mnist["rows"]])) * 60_000 / mnist["n_train"]
    out["mnist_fc_100_epochs"] = {"trials": trials(c), "hours": trials(c) * 100 * epoch_s / 3600}
    return out


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    quick = getattr(args, "quick", False)
    device = resolve(getattr(args, "device", None) or "auto", "--device")
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cores": cores,
        "torch": torch.__version__,
    }
    _log("correctness: device against CPU ...")
    result["correctness"] = correctness(device, quick)
    _log("ES on Pong ...")
    N = getattr(args, "population", None) or (4 if quick else 256)
    steps = getattr(args, "steps", None) or (20 if quick else 300)
    result["es_pong"] = es_pong(device, N, steps, getattr(args, "d", None) or 6000, cores)
    _log("PPO on Pong ...")
    result["ppo_pong"] = ppo_pong(device, 2 if quick else 16, quick)
    _log("MNIST FC epochs ...")
    result["mnist_fc"] = mnist_fc(device, quick)
    result["prices"] = prices(result["es_pong"], result["ppo_pong"], result["mnist_fc"])
    result["wall_s"] = time.perf_counter() - t0
    return result, _human


def _human(r: dict[str, Any]) -> str:
    c = r["correctness"]
    worst = max(max(v.values()) for k, v in c.items() if k != "passed")
    es, ppo, p = r["es_pong"], r["ppo_pong"], r["prices"]
    lines = [
        f"device {r['device']} ({r['device_name']}), {r['cores']} cores, torch {r['torch']}",
        f"correctness: {'passed' if c['passed'] else 'FAILED'} (worst relative error {worst:.1e})",
        f"ES Pong: {es['agent_steps_s']:,.0f} agent steps/s ({es['population']} members, "
        f"d={es['d']}), raw ALE {es['raw_ale_steps_s']:,.0f}/s: ratio {es['ratio']:.2f}",
        f"PPO Pong: {ppo['train_steps_s']:,.0f} training steps/s ({ppo['n_envs']} envs)",
        "MNIST FC epoch: "
        + ", ".join(f"d={x['d']} {x['epoch_s']:.2f} s" for x in r["mnist_fc"]["rows"])
        + f"; 3 seeds batched / one by one {r['mnist_fc']['batched_3_seeds']['ratio']:.2f}",
        "| sweep | trials | hours at these rates |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {v['trials']} | {v['hours']:,.1f} |" for name, v in p.items()]
    lines.append(f"wall {r['wall_s']:.0f} s")
    return "\n".join(lines)
