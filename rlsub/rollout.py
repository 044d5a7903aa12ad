"""Batched population rollouts: N individuals x K episodes in one vector env.

Slot s = i * K + k runs episode k of individual i. All slots step together;
each step is one batched forward through `Subspace.population_call` (theta of
the whole population is computed once per rollout, not per step). A slot runs
exactly one episode: once it terminates or is truncated it is masked, so
gymnasium's next-step autoreset never leaks reward or observations across
episodes. Episode k of every individual starts from the same seed (common
random numbers), so a population rollout returns what each individual would
get alone with those seeds.

uint8 observations (Atari frames) are scaled to [0, 1] in torch. `max_steps`
caps every episode (ES training on Atari). `pipelined_rollout` plays the same
population in two ale-py vector envs so emulation overlaps the forward.

Observation normalisation (Salimans et al. 2017): running mean and variance
shared by the population. Within a rollout the statistics are fixed (every
individual of a generation sees the same normalisation); the observations of
active slots are accumulated and, for training rollouts, folded into the
running statistics when the rollout ends. Evaluation rollouts never change
them. Normalised observations are clipped to +-clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlsub.envs import EnvDims
from rlsub.subspace import Subspace


class RunningNorm:
    """Running mean/variance of observations (parallel Welford), float64."""

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0) -> None:
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4
        self.clip = clip

    def update(self, x: np.ndarray) -> None:
        """x: (B, *shape)."""
        if len(x) == 0:
            return
        self.update_moments(x.mean(0), x.var(0), len(x))

    def update_moments(self, b_mean: np.ndarray, b_var: np.ndarray, b_count: float) -> None:
        """Fold in a batch given by its mean, (population) variance and count."""
        if b_count <= 0:
            return
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -self.clip, self.clip)

    def torch_normalizer(self) -> tuple[Tensor, Tensor]:
        """(mean, 1/std) as float32 tensors, for normalising inside a rollout."""
        mean = torch.as_tensor(self.mean, dtype=torch.float32)
        inv_std = torch.as_tensor(1.0 / np.sqrt(self.var + 1e-8), dtype=torch.float32)
        return mean, inv_std

    def state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "var": self.var.tolist(),
            "count": self.count,
            "clip": self.clip,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunningNorm:
        norm = cls(np.asarray(state["mean"]).shape, state["clip"])
        norm.mean, norm.var = np.asarray(state["mean"]), np.asarray(state["var"])
        norm.count = float(state["count"])
        return norm


def actions_from_outputs(out: Tensor, dims: EnvDims) -> np.ndarray:
    """Deterministic actions: argmax of logits (discrete) or the output clipped to the box."""
    if dims.discrete:
        return out.argmax(-1).cpu().numpy()
    a = out.cpu().numpy()
    assert dims.low is not None and dims.high is not None
    return np.clip(a, dims.low, dims.high)


def reset_slots(env: gym.vector.VectorEnv, seeds: list[int] | None) -> np.ndarray:
    """Reset every slot from its own seed; returns observations (S, *obs_shape).

    seeds None: reset without seeding, so every slot continues its own RNG (ale-py
    reloads the ROM to seed a slot: about 45 ms each, on one core).

    gymnasium's native CartPole vector env seeds all slots from one RNG, so for it
    each slot's start state is drawn here from its own seed with CartPole's
    distribution (uniform in [-0.05, 0.05]^4), exactly as a single env would.
    """
    base = env.unwrapped
    if seeds is None:
        obs, _ = env.reset()
        return np.asarray(obs)
    if type(base).__name__ == "CartPoleVectorEnv":
        env.reset(seed=seeds[0])
        unique, which = np.unique(np.asarray(seeds), return_inverse=True)
        starts = np.stack([np.random.default_rng(int(s)).uniform(-0.05, 0.05, 4) for s in unique])
        states = np.ascontiguousarray(starts[which.reshape(-1)].T)
        base.state = states  # type: ignore[attr-defined]
        base.steps = np.zeros(len(seeds), dtype=np.int32)  # type: ignore[attr-defined]
        return states.T.astype(np.float32)
    if type(base).__name__ == "AtariVectorEnv":  # ale-py takes one seed per slot as an array
        obs, _ = env.reset(seed=np.asarray(seeds, dtype=np.int64))  # type: ignore[arg-type]
        return np.asarray(obs)
    obs, _ = env.reset(seed=list(seeds))  # type: ignore[arg-type]
    return np.asarray(obs)


def random_observations(env: gym.vector.VectorEnv, n: int, seed: int, stride: int = 20) -> Tensor:
    """n observations of uniformly random play (a reference batch), as the policy sees them.

    Every `stride` steps all slots' observations are taken (seeded resets and
    actions: any process gets the same batch). uint8 pixels are scaled to [0, 1].
    """
    S = env.num_envs
    rng = np.random.default_rng(seed)
    env.single_action_space.seed(int(rng.integers(2**31)))
    obs = reset_slots(env, [seed + s for s in range(S)])
    frames: list[np.ndarray] = []
    while sum(len(f) for f in frames) < n:
        for _ in range(stride):
            actions = np.stack([np.asarray(env.single_action_space.sample()) for _ in range(S)])
            obs, *_ = env.step(actions)
        frames.append(np.array(obs))
    batch = np.concatenate(frames)[:n]
    x = torch.from_numpy(batch).float()
    return x.mul_(1.0 / 255.0) if batch.dtype == np.uint8 else x


def _lanes() -> Any:
    """rlsub.lanes, imported on first use (numba takes a while to import)."""
    from rlsub import lanes

    return lanes


class SlotStepper:
    """env.step for a rollout whose finished slots are masked: (obs, reward, term, trunc, n).

    A SyncVectorEnv (MuJoCo) is a Python loop over single envs, so only the slots
    still playing are stepped (n of them); a finished slot keeps its last
    observation and gets reward 0, and its env is reset by the next rollout's
    reset. Other vector envs step every slot (n = num_envs).
    """

    def __init__(self, env: gym.vector.VectorEnv, obs: np.ndarray) -> None:
        self.env = env
        self.sync = isinstance(env, gym.vector.SyncVectorEnv)
        if self.sync:
            S = env.num_envs
            self.obs = np.array(obs, copy=True)
            self.reward = np.zeros(S)
            self.term = np.zeros(S, dtype=bool)
            self.trunc = np.zeros(S, dtype=bool)

    def __call__(
        self, actions: np.ndarray, done: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        if not self.sync:
            obs, reward, term, trunc, _ = self.env.step(actions)
            return (
                np.asarray(obs),
                np.asarray(reward),
                np.asarray(term),
                np.asarray(trunc),
                len(done),
            )
        self.reward[:] = 0.0
        self.term[:] = False
        self.trunc[:] = False
        active = np.flatnonzero(~done)
        envs = self.env.envs  # type: ignore[attr-defined]
        for s in active:
            o, r, te, tr, _ = envs[s].step(actions[s])
            self.obs[s], self.reward[s], self.term[s], self.trunc[s] = o, r, te, tr
        return self.obs.copy(), self.reward, self.term, self.trunc, len(active)


@dataclass
class RolloutResult:
    returns: np.ndarray  # (N, K) episode returns
    lengths: np.ndarray  # (N, K) episode lengths
    env_steps: int  # useful steps (active slots only)
    slot_steps: int  # slot steps simulated: masked ones too, except in a SyncVectorEnv
    capped: int = 0  # episodes cut short by max_steps


@torch.no_grad()
def population_rollout(
    sub: Subspace,
    Z: Tensor,
    env: gym.vector.VectorEnv,
    dims: EnvDims,
    episodes: int,
    seed: int | None,
    obs_norm: RunningNorm | None = None,
    update_norm: bool = False,
    max_steps: int | None = None,
    kernels: bool = True,
    pairs: tuple[Tensor, Tensor] | None = None,
) -> RolloutResult:
    """Run N = len(Z) individuals x K = `episodes` episodes in `env` (N*K slots).

    Z: (N, d). Episode k of every individual starts from seed `seed + k`; seed
    None resets without seeding (each slot continues its RNG: no common random
    numbers, see `reset_slots`). `pairs` = (z, E) says that Z is ES's antithetic
    [z + E; z - E]: the policy is then built by `Subspace.antithetic_fn`.
    uint8 observations (pixels) are scaled to [0, 1] in torch, as SB3 does for
    images. `max_steps` cuts every episode after that many agent steps (its
    return so far counts; `capped` says how many were cut); None plays to the
    env's own episode end. MLP policies on flat observations on the CPU run
    through the compiled lane kernels of rlsub.lanes (same results, several
    times faster on CartPole); `kernels=False` keeps them in the torch loop.
    """
    N, K = Z.shape[0], episodes
    S = N * K
    if env.num_envs != S:
        raise ValueError(f"env has {env.num_envs} slots, need N*K = {S}")
    obs = reset_slots(env, None if seed is None else [seed + k for _ in range(N) for k in range(K)])
    lanes = _lanes() if kernels else None
    if lanes is not None and lanes.supported(sub, dims):
        rets, lens, slot_steps, capped = lanes.rollout(
            sub, Z, env, dims, K, obs, obs_norm, update_norm, max_steps
        )
        return RolloutResult(
            rets.reshape(N, K), lens.reshape(N, K), int(lens.sum()), slot_steps, capped
        )
    # theta once per rollout, not per step
    policy = full_policy = _population_policy(sub, Z, pairs)
    out_shape = (dims.n_actions,)  # logits (discrete) or the action vector (continuous)
    alive = torch.arange(N)
    stepper = SlotStepper(env, obs)
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    slot_steps = capped = 0
    seen: list[Tensor] = []  # raw observations of the steps, for the statistics update
    seen_active: list[np.ndarray] = []
    if obs_norm is not None:
        mean, inv_std = obs_norm.torch_normalizer()
    steps = 0
    while True:
        obs = np.asarray(obs)
        xt = _policy_input(obs, policy, obs_norm is None)
        if obs_norm is not None:
            if update_norm:
                seen.append(xt)
                seen_active.append(~done)
            xt = ((xt - mean) * inv_std).clamp_(-obs_norm.clip, obs_norm.clip)
        if policy.N < N:  # only the individuals still playing
            xs = xt.reshape(N, K, *dims.obs_shape)[alive]
            out = torch.zeros(N, K, *out_shape)
            out[alive] = policy(xs)
            out = out.reshape(S, -1)
        else:
            out = policy(xt.reshape(N, K, *dims.obs_shape)).reshape(S, -1)
        obs, reward, term, trunc, n = stepper(actions_from_outputs(out, dims), done)
        active = ~done
        returns += np.where(active, reward, 0.0)
        lengths += active
        slot_steps += n
        done |= np.asarray(term) | np.asarray(trunc)
        steps += 1
        if done.all():
            break
        if max_steps is not None and steps >= max_steps:
            capped = int((~done).sum())
            break
        playing = ~done.reshape(N, K).all(1)
        if 2 * int(playing.sum()) <= policy.N:  # compact once half the forward is wasted
            alive = torch.from_numpy(np.flatnonzero(playing))
            policy = full_policy.subset(alive)
    if obs_norm is not None and seen:
        xs = torch.cat(seen)[torch.from_numpy(np.concatenate(seen_active))].double()
        if len(xs):
            obs_norm.update_moments(xs.mean(0).numpy(), xs.var(0, correction=0).numpy(), len(xs))
    return RolloutResult(
        returns.reshape(N, K), lengths.reshape(N, K), int(lengths.sum()), slot_steps, capped
    )


def _policy_input(obs: np.ndarray, policy: Any, raw_ok: bool) -> Tensor:
    """Observations as the policy takes them: uint8 pixels scaled to [0, 1], or kept as
    uint8 for a ConvNet population (it scales them itself, in its first pass over them:
    rlsub.frames) when `raw_ok` (no observation normalisation)."""
    x = torch.from_numpy(obs)
    if obs.dtype == np.uint8:
        if raw_ok and getattr(policy, "takes_uint8", False):
            return x
        return x.float().mul_(1.0 / 255.0)
    return x.float()


def _population_policy(sub: Subspace, Z: Tensor, pairs: tuple[Tensor, Tensor] | None) -> Any:
    if pairs is None:
        return sub.population_fn(sub.split(sub.theta(Z)))
    z, E = pairs
    if Z.shape[0] != 2 * E.shape[0]:
        raise ValueError(f"pairs: Z has {Z.shape[0]} members, E {E.shape[0]} pairs")
    return sub.antithetic_fn(z, E)


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
        x = _policy_input(np.asarray(self.obs), self.policy, True)
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
    pairs: tuple[Tensor, Tensor] | None = None,
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
    full = _population_policy(sub, Z, pairs)
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
