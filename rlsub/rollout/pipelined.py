"""Pipelined population rollouts: the population in two ale-py vector envs, so that one
half's emulation (C++ threads) overlaps the other half's forward.

Imports: rollout.population, rollout.slots, rollout.pairs, envs, core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims
from rlsub.rollout.pairs import PairsArg
from rlsub.rollout.population import policy_input, population_policy
from rlsub.rollout.slots import RolloutResult, actions_from_outputs, reset_slots


def pair_halves(N: int) -> tuple[Tensor, Tensor] | None:
    """Members of the two envs of `pipelined_rollout` with antithetic pairs kept together.

    [z + E; z - E] with N = 2H: the first env gets pairs [0, ceil(N/2) / 2), both signs.
    None when ceil(N/2) is odd (no pair-closed split into the envs' sizes).
    """
    nA = (N + 1) // 2
    if N % 2 or nA % 2:
        return None
    H, a = N // 2, nA // 2
    first = torch.cat([torch.arange(a), H + torch.arange(a)])
    second = torch.cat([torch.arange(a, H), H + torch.arange(a, H)])
    return first, second


class _Half:
    """One half of a pipelined population: its env, policy, slots and running totals."""

    def __init__(self, env: Any, policy: Any, n: int, K: int, seeds: list[int] | None) -> None:
        self.env, self.policy, self.n, self.K = env, policy, n, K
        if env.num_envs != n * K:
            raise ValueError(f"env has {env.num_envs} slots, need {n} x {K} = {n * K}")
        self.obs = reset_slots(env, seeds)
        self.done = np.zeros(n * K, dtype=bool)
        self.returns = np.zeros(n * K)
        self.lengths = np.zeros(n * K, dtype=np.int64)
        self.slot_steps = 0
        self.action: np.ndarray | None = None

    @property
    def playing(self) -> bool:
        return self.n > 0 and not self.done.all()

    def act(self, dims: EnvDims) -> None:
        x = policy_input(np.asarray(self.obs), self.policy, True)
        out = self.policy(x.reshape(self.n, self.K, *dims.obs_shape))
        self.action = actions_from_outputs(out.reshape(self.n * self.K, -1), dims)

    def receive(self) -> None:
        self.obs, reward, term, trunc, _ = self.env.recv()
        self.returns += np.where(self.done, 0.0, reward)
        self.lengths += ~self.done
        self.slot_steps += self.n * self.K
        self.done |= np.asarray(term) | np.asarray(trunc)


@torch.no_grad()
def pipelined_rollout(
    sub: Subspace,
    Z: Tensor,
    envs: tuple[Any, Any],
    dims: EnvDims,
    episodes: int,
    seed: int | None,
    max_steps: int | None = None,
    pairs: PairsArg | None = None,
) -> RolloutResult:
    """`population_rollout` split over two ale-py vector envs so emulation and forward overlap.

    Individuals [0, ceil(N/2)) play in envs[0], the rest in envs[1] (K slots each,
    the same seeds as `population_rollout`, so with a seed the same results; with
    seed None each slot's reset RNG depends on how its env is shared, so results
    differ once games end at different steps). ale-py's
    `send` returns at once and its threads emulate one half while this thread
    computes the other half's forward:

        send(A); forward(B); recv(A); send(B); forward(A); recv(B); ...

    On a 2-core machine this keeps both cores busy where the sequential loop
    leaves one idle during every forward. A half whose games have all ended is
    no longer stepped. No observation normalisation (pixels are scaled by 1/255).
    seed None and `pairs` as in `population_rollout`; with pairs, each env gets
    whole pairs (`pair_halves`) so that their deltas are read once per pair.
    """
    N, K = Z.shape[0], episodes
    if N < 2:
        raise ValueError("pipelined_rollout needs at least 2 individuals (one per env)")
    nA = (N + 1) // 2
    full = population_policy(sub, Z, pairs)
    members = (pair_halves(N) if pairs is not None else None) or (
        torch.arange(nA),
        torch.arange(nA, N),
    )

    def seeds(n: int) -> list[int] | None:
        return None if seed is None else [seed + k for _ in range(n) for k in range(K)]

    halves = [
        _Half(env, full.subset(idx), len(idx), K, seeds(len(idx)))
        for env, idx in zip(envs, members, strict=True)
    ]
    A, B = halves
    if A.playing:
        A.act(dims)
    steps = 0
    while (A.playing or B.playing) and (max_steps is None or steps < max_steps):
        a_on, b_on = A.playing, B.playing
        if a_on:
            A.env.send(A.action)
        if b_on:
            B.act(dims)
        if a_on:
            A.receive()
        if b_on:
            B.env.send(B.action)
        if A.playing:
            A.act(dims)
        if b_on:
            B.receive()
        steps += 1
    order = torch.cat(members).numpy()
    returns = np.empty((N, K))
    lengths = np.empty((N, K), dtype=np.int64)
    returns[order] = np.concatenate([h.returns for h in halves]).reshape(N, K)
    lengths[order] = np.concatenate([h.lengths for h in halves]).reshape(N, K)
    capped = int(sum((~h.done).sum() for h in halves))
    return RolloutResult(
        returns, lengths, int(lengths.sum()), sum(h.slot_steps for h in halves), capped
    )
