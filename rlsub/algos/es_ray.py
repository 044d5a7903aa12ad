"""ES population shards on Ray actors (`train.backend: ray` in an ES config).

Scale-out for OpenAI-ES (rlsub.algos.es): the population of a generation is split over
`train.workers` actors. Each actor is built once per trial from integers and
the config alone (workers receive seeds, z and the config, never pickled
modules): it rebuilds the subspace network (theta0 and P from the trial's
seeds) and holds its own vector env for its share of the slots. Per
generation the driver sends every actor the centre z (d floats), the state of
the ES noise generator (a few kB) and the rollout seed; each actor redraws the
same perturbations eps from that state, plays its members' episodes and sends
back only their returns and lengths. The driver ranks the returns, updates z
and evaluates the centre itself.

Each actor holds whole antithetic pairs (`shard_members`): pairs p in a
contiguous range, members p and p + H (H = population / 2), played as
[z + E_shard; z - E_shard] through `population_rollout(..., pairs=(z, E_shard))`
as the in-process player (rlsub.algos.es_solo) plays the whole population, so a ConvNet's large
Linear weights are read once per pair. `train.reseed` is honoured as in
`rlsub.algos.es`: with `reseed: false` (or N) the actors' slots are seeded in the first
generation only and later resets continue each slot's own RNG.

Both paths are deterministic. With `reseed: true` the Ray path gives the
in-process trainer's returns exactly (tests/test_es.py, tests/test_pong.py).
With `reseed: false` they agree while every training episode runs to
`max_steps_per_episode` (or all end on the same step), not in general: a
finished slot is autoreset by its vector env's next step (ale-py: a no-op
draw from that slot's RNG) only if the env steps on, which depends on the
other slots sharing the env; CartPole's vector env draws all unseeded resets
from one RNG shared by its slots.

    ray start --head                       # or nothing: a local Ray starts itself
    rlsub train configs/pong_es_ray.yaml --d 6000

Running statistics for observation normalisation would diverge across
actors, so `obs_norm: true` is refused with this backend (Pong does not use it).
Ray is an optional extra: ``pip install 'rlsub[ray]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlsub.algos.es_loop import draw_noise
from rlsub.algos.es_setup import build_setup
from rlsub.core.config import ExperimentConfig, experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.core.ray_local import LocalRay
from rlsub.rollout.pairs import PairsArg
from rlsub.rollout.population import population_rollout
from rlsub.rollout.slots import RolloutResult


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RlsubError("train.backend: ray needs Ray: pip install 'rlsub[ray]'") from None
    return ray


def shard_members(population: int, workers: int) -> list[np.ndarray]:
    """Population indices of each actor.

    Even population (ES's antithetic [z + E; z - E], H = population / 2): each actor
    gets whole pairs, pair indices p in a contiguous range and members [p..., p + H...]
    in that order, at most H actors (one pair at least each), pair counts differing by
    at most one. Odd population: contiguous indices, sizes differing by at most one.
    """
    if population % 2 == 0:
        H = population // 2
        return [np.concatenate([p, p + H]) for p in np.array_split(np.arange(H), min(workers, H))]
    return list(np.array_split(np.arange(population), min(workers, population)))


def shard_pairs(members: Sequence[int], population: int) -> np.ndarray | None:
    """The pair indices p of a shard [p...; p + H...] (see shard_members), else None."""
    m = np.asarray(members, dtype=np.int64)
    H, a = population // 2, len(m) // 2
    if population % 2 or len(m) % 2 or a == 0:
        return None
    p = m[:a]
    if np.all(p < H) and np.array_equal(m[a:], p + H):
        return p
    return None


def gather(
    shards: Sequence[np.ndarray], parts: Sequence[tuple[Any, ...]], population: int
) -> RolloutResult:
    """The actors' (returns, lengths, env_steps, slot_steps, capped) in the global member order."""
    order = np.concatenate([np.asarray(s) for s in shards])
    returns = np.concatenate([p[0] for p in parts])
    lengths = np.concatenate([p[1] for p in parts])
    if len(order) != population or returns.shape[0] != population:
        raise ValueError(f"shards hold {len(order)} members, population {population}")
    ret = np.empty_like(returns)
    lens = np.empty_like(lengths)
    ret[order], lens[order] = returns, lengths
    return RolloutResult(
        returns=ret,
        lengths=lens,
        env_steps=int(sum(p[2] for p in parts)),
        slot_steps=int(sum(p[3] for p in parts)),
        capped=int(sum(p[4] for p in parts)),
    )


class ESShard:
    """One actor: members `members` of every generation, K episodes each, in its own env."""

    def __init__(
        self, cfg_data: dict[str, Any], d: int | str, seed: int, members: list[int]
    ) -> None:

        self.cfg: ExperimentConfig = experiment_from_dict(cfg_data, "ray actor config")
        es: Any = self.cfg.train
        torch.set_num_threads(es.threads)
        self.members = torch.as_tensor(members, dtype=torch.long)
        pairs = shard_pairs(members, es.population)
        self.pairs = None if pairs is None else torch.from_numpy(pairs)
        self.K = es.episodes_per_member
        setup = build_setup(self.cfg, d, seed, len(members) * self.K)
        self.env, self.dims, self.sub = setup.env, setup.dims, setup.sub

    def population(
        self, z: np.ndarray, noise_state: np.ndarray
    ) -> tuple[torch.Tensor, PairsArg | None]:
        """This shard's rows of the generation's Z = [z + sigma eps; z - sigma eps] (in the
        shard's member order) and, for a shard of whole pairs, `pairs` = (z, E_shard)."""
        es: Any = self.cfg.train
        gen = torch.Generator()
        gen.set_state(torch.tensor(noise_state))  # copies: Ray hands over read-only arrays
        eps = draw_noise(gen, es.population // 2, self.sub.d)  # as OpenAIES.ask draws
        zt = torch.tensor(z)
        E = es.sigma * eps  # as OpenAIES.ask builds its pairs
        if self.pairs is None:
            return torch.cat([zt + E, zt - E])[self.members], None
        Es = E[self.pairs]  # members [p; p + H]: [z + E_shard; z - E_shard]
        dtype = getattr(torch, getattr(es, "pair_dtype", "float32"))
        return torch.cat([zt + Es, zt - Es]), (zt, Es, dtype)

    def rollout(
        self, z: np.ndarray, noise_state: np.ndarray, seed: int | None
    ) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        """This shard's (returns, lengths, env_steps, slot_steps, capped), members in the
        shard's order. seed None: unseeded resets (each slot continues its own RNG)."""
        es: Any = self.cfg.train
        Z, pairs = self.population(z, noise_state)
        res = population_rollout(
            self.sub,
            Z,
            self.env,
            self.dims,
            self.K,
            seed,
            None,
            False,
            es.max_steps_per_episode,
            pairs=pairs,
        )
        return res.returns, res.lengths, res.env_steps, res.slot_steps, res.capped

    def close(self) -> None:
        self.env.close()


class RayPopulation:
    """The driver's handle on the actors of one trial."""

    def __init__(self, cfg: ExperimentConfig, d: int | str, seed: int) -> None:
        ray = _ray()
        es: Any = cfg.train
        self.local: LocalRay | None = None
        if not ray.is_initialized():  # a Ray of its own ends with this trial, even a killed one
            if es.ray_address in (None, "local"):
                self.local = LocalRay(es.ray_address)
            address = self.local.address if self.local else es.ray_address
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        self.ray = ray
        self.population = es.population
        self.shards = shard_members(es.population, es.workers)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if len(self.shards) > cpus:  # an actor that never gets a CPU: a silent hang
            raise RlsubError(
                f"{cfg.source}: train.workers={es.workers} needs {len(self.shards)} CPUs "
                f"(one per actor), the Ray cluster has {cpus}"
            )
        remote = ray.remote(num_cpus=1)(ESShard)
        data = cfg.to_dict()
        self.actors = [remote.remote(data, d, seed, m.tolist()) for m in self.shards]

    def rollout(
        self, z: torch.Tensor, noise_state: torch.Tensor, seed: int | None
    ) -> RolloutResult:
        """Returns (population, K) of the generation whose eps the noise state draws, in the
        members' order [z + sigma eps; z - sigma eps]; seed None: unseeded resets."""
        z_np = z.detach().numpy().copy()
        state = noise_state.numpy().copy()
        parts = self.ray.get([a.rollout.remote(z_np, state, seed) for a in self.actors])
        return gather(self.shards, parts, self.population)

    def close(self) -> None:
        self.ray.get([a.close.remote() for a in self.actors])
        for a in self.actors:
            self.ray.kill(a)
        if self.local is not None:
            self.ray.shutdown()
            self.local.close()
