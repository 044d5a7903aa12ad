"""ES population shards on Ray actors (`train.backend: ray` in an ES config).

Scale-out for `rlsub.es`: the population of a generation is split over
`train.workers` actors. Each actor is built once per trial from integers and
the config alone (workers receive seeds, z and the config, never pickled
modules): it rebuilds the subspace network (theta0 and P from the trial's
seeds) and holds its own vector env for its share of the slots. Per
generation the driver sends every actor the centre z (d floats), the state of
the ES noise generator (a few kB) and the rollout seed; each actor redraws the
same perturbations eps from that state, plays its members' episodes and sends
back only their returns and lengths. The driver ranks the returns, updates z
and evaluates the centre itself.

    ray start --head                       # or nothing: a local Ray starts itself
    rlsub train configs/pong_es_ray.yaml --d 6000

Running statistics for observation normalisation would diverge across
actors, so `obs_norm: true` is refused with this backend (Pong does not use it).
Ray is an optional extra: ``pip install 'rlsub[ray]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlsub.config import ExperimentConfig, experiment_from_dict
from rlsub.errors import RlsubError
from rlsub.rollout import RolloutResult, population_rollout


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RlsubError("train.backend: ray needs Ray: pip install 'rlsub[ray]'") from None
    return ray


def shard_members(population: int, workers: int) -> list[np.ndarray]:
    """Population indices of each actor: contiguous, sizes differing by at most one."""
    return [a for a in np.array_split(np.arange(population), min(workers, population))]


class ESShard:
    """One actor: members `members` of every generation, K episodes each, in its own env."""

    def __init__(
        self, cfg_data: dict[str, Any], d: int | str, seed: int, members: list[int]
    ) -> None:
        from rlsub.es import _build  # the same construction as the in-process trainer

        self.cfg: ExperimentConfig = experiment_from_dict(cfg_data, "ray actor config")
        es: Any = self.cfg.train
        torch.set_num_threads(es.threads)
        self.members = torch.as_tensor(members)
        self.K = es.episodes_per_member
        _, self.env, self.dims, _, self.sub = _build(self.cfg, d, seed, len(members) * self.K)

    def rollout(
        self, z: np.ndarray, noise_state: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        es: Any = self.cfg.train
        gen = torch.Generator()
        gen.set_state(torch.from_numpy(noise_state))
        eps = torch.randn(es.population // 2, self.sub.d, generator=gen)  # as es.es_ask draws
        zt = torch.from_numpy(z)
        Z = torch.cat([zt + es.sigma * eps, zt - es.sigma * eps])[self.members]
        res = population_rollout(
            self.sub, Z, self.env, self.dims, self.K, seed, None, False, es.max_steps_per_episode
        )
        return res.returns, res.lengths, res.env_steps, res.slot_steps, res.capped

    def close(self) -> None:
        self.env.close()


class RayPopulation:
    """The driver's handle on the actors of one trial."""

    def __init__(self, cfg: ExperimentConfig, d: int | str, seed: int) -> None:
        ray = _ray()
        es: Any = cfg.train
        if not ray.is_initialized():
            ray.init(address=es.ray_address, ignore_reinit_error=True, log_to_driver=False)
        self.ray = ray
        self.shards = shard_members(es.population, es.workers)
        remote = ray.remote(num_cpus=1)(ESShard)
        data = cfg.to_dict()
        self.actors = [remote.remote(data, d, seed, m.tolist()) for m in self.shards]

    def rollout(self, z: torch.Tensor, noise_state: torch.Tensor, seed: int) -> RolloutResult:
        """Returns (population, K) of the generation whose eps the noise state draws."""
        z_np = z.detach().numpy().copy()
        state = noise_state.numpy().copy()
        parts = self.ray.get([a.rollout.remote(z_np, state, seed) for a in self.actors])
        return RolloutResult(
            returns=np.concatenate([p[0] for p in parts]),
            lengths=np.concatenate([p[1] for p in parts]),
            env_steps=int(sum(p[2] for p in parts)),
            slot_steps=int(sum(p[3] for p in parts)),
            capped=int(sum(p[4] for p in parts)),
        )

    def close(self) -> None:
        self.ray.get([a.close.remote() for a in self.actors])
        for a in self.actors:
            self.ray.kill(a)
