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

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims
from rlsub.rollout.pairs import PairsArg, pairs_policy
from rlsub.rollout.slots import (
    RolloutResult,
    RunningNorm,
    SlotStepper,
    actions_from_outputs,
    reset_slots,
)


def _lanes() -> Any:
    """rlsub.rollout.lanes, imported on first use (numba takes a while to import)."""
    from rlsub.rollout import lanes

    return lanes


def _classic() -> Any:
    """rlsub.rollout.classic_fused (compiled classic-control rollouts), imported on first use."""
    from rlsub.rollout import classic_fused

    return classic_fused


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
    pairs: PairsArg | None = None,
) -> RolloutResult:
    """Run N = len(Z) individuals x K = `episodes` episodes in `env` (N*K slots).

    Z: (N, d). Episode k of every individual starts from seed `seed + k`; seed
    None resets without seeding (each slot continues its RNG: no common random
    numbers, see `reset_slots`). `pairs` = (z, E) says that Z is ES's antithetic
    [z + E; z - E]: the policy is then built by `rlsub.rollout.pairs`.
    uint8 observations (pixels) are scaled to [0, 1] in torch, as SB3 does for
    images. `max_steps` cuts every episode after that many agent steps (its
    return so far counts; `capped` says how many were cut); None plays to the
    env's own episode end. MLP policies on flat observations on the CPU run
    through the compiled lane kernels of rlsub.rollout.lanes (same results, several
    times faster on CartPole); `kernels=False` keeps them in the torch loop.
    """
    N, K = Z.shape[0], episodes
    S = N * K
    if env.num_envs != S:
        raise ValueError(f"env has {env.num_envs} slots, need N*K = {S}")
    seeds = None if seed is None else [seed + k for _ in range(N) for k in range(K)]
    lanes = _lanes() if kernels else None
    if lanes is not None and lanes.supported(sub, dims):
        from rlsub.rollout import fused

        if seeds is not None and fused.supported(env):  # CartPole: physics in the kernel too
            # the kernel never steps `env`: seed its RNG as a seeded reset would, so that
            # later unseeded resets (reseed false or N) follow from these seeds alone
            env.reset(seed=seeds[0])
            n_obs = dims.obs_shape[0]
            norms = lanes.LaneNorms([obs_norm], np.zeros(S, np.int64), n_obs, update_norm)
            rets, lens, slot_steps, cut = fused.rollout(
                sub.module, lanes.lane_weights(sub, Z, K), env, dims, seeds, norms, max_steps
            )
            capped = int(cut.sum())
        elif seeds is not None and _classic().supported(env):  # Acrobot, Pendulum, MountainCar
            n_obs = dims.obs_shape[0]
            norms = lanes.LaneNorms([obs_norm], np.zeros(S, np.int64), n_obs, update_norm)
            rets, lens, slot_steps, cut = _classic().rollout(
                sub.module, lanes.lane_weights(sub, Z, K), env, dims, seeds, norms, max_steps
            )
            capped = int(cut.sum())
        else:
            rets, lens, slot_steps, capped = lanes.rollout(
                sub, Z, env, dims, K, reset_slots(env, seeds), obs_norm, update_norm, max_steps
            )
        return RolloutResult(
            rets.reshape(N, K), lens.reshape(N, K), int(lens.sum()), slot_steps, capped
        )
    obs = reset_slots(env, seeds)
    # theta once per rollout, not per step
    policy = full_policy = population_policy(sub, Z, pairs)
    out_shape = (dims.n_actions,)  # logits (discrete) or the action vector (continuous)
    device = sub.theta0.device
    alive = torch.arange(N, device=device)
    stepper = SlotStepper(env, obs)
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    slot_steps = capped = 0
    seen: list[Tensor] = []  # raw observations of the steps, for the statistics update
    seen_active: list[np.ndarray] = []
    if obs_norm is not None:
        mean, inv_std = (t.to(device) for t in obs_norm.torch_normalizer())
    steps = 0
    while True:
        obs = np.asarray(obs)
        xt = policy_input(obs, policy, obs_norm is None)
        if obs_norm is not None:
            if update_norm:
                seen.append(xt)
                seen_active.append(~done)
            xt = ((xt - mean) * inv_std).clamp_(-obs_norm.clip, obs_norm.clip)
        if policy.N < N:  # only the individuals still playing
            xs = xt.reshape(N, K, *dims.obs_shape)[alive]
            out = torch.zeros(N, K, *out_shape, device=device)
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
            alive = torch.from_numpy(np.flatnonzero(playing)).to(device)
            policy = full_policy.subset(alive)
    if obs_norm is not None and seen:
        mask = torch.from_numpy(np.concatenate(seen_active)).to(device)
        xs = torch.cat(seen)[mask].double()
        if len(xs):
            obs_norm.update_moments(
                xs.mean(0).cpu().numpy(), xs.var(0, correction=0).cpu().numpy(), len(xs)
            )
    return RolloutResult(
        returns.reshape(N, K), lengths.reshape(N, K), int(lengths.sum()), slot_steps, capped
    )


def policy_input(obs: np.ndarray, policy: Any, raw_ok: bool) -> Tensor:
    """Observations as the policy takes them: uint8 pixels scaled to [0, 1], or kept as
    uint8 for a ConvNet population (it scales them itself, in its first pass over them:
    rlsub.nets.frames) when `raw_ok` (no observation normalisation)."""
    x = torch.from_numpy(obs)
    device = getattr(policy, "device", None)
    if device is not None and device.type != "cpu":
        x = x.to(device)  # over once per step, as uint8 for pixels
    if obs.dtype == np.uint8:
        if raw_ok and getattr(policy, "takes_uint8", False):
            return x
        return x.float().mul_(1.0 / 255.0)
    return x.float()


def population_policy(sub: Subspace, Z: Tensor, pairs: PairsArg | None) -> Any:
    """The policy of population Z, or of ES's antithetic `pairs` (rlsub.rollout.pairs), on
    the Subspace's device (Z and the pairs are drawn on the CPU)."""
    device = sub.theta0.device
    if pairs is None:
        return sub.population_fn(sub.split(sub.theta(Z.to(device))))
    pairs = (pairs[0].to(device), pairs[1].to(device), *pairs[2:])  # type: ignore[assignment]
    E = pairs[1]
    if Z.shape[0] != 2 * E.shape[0]:
        raise ValueError(f"pairs: Z has {Z.shape[0]} members, E {E.shape[0]} pairs")
    return pairs_policy(sub, pairs)
