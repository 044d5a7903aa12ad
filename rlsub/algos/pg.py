"""Policy gradients in a random subspace: stable-baselines3 PPO, A2C and DQN.

`train(cfg, d, seed)` trains SB3's algorithm with a subspace policy
(rlsub.algos.pg_policies: theta = theta0 + P z, only z and the directly trained
parts learn), records a learning curve every `eval_freq` env steps, evaluates
the final policy on the env spec's `eval_episodes` fresh deterministic
episodes, and hands back a `rlsub.algos.base.TrainResult`. Its `train:` section is
`rlsub.algos.pg_config.PGConfig`.

The network in the subspace is the config's `network` (the actor: obs ->
logits for discrete actions, obs -> action mean for continuous ones, or obs ->
Q-values for DQN): `mlp` (hidden sizes and activation become SB3's
``net_arch``/``activation_fn``), `nature_cnn` (SB3's NatureCNN features +
action head), or any other network, a user's by import path, as it is
(`rlsub.algos.pg_networks`; SB3's MLP critic is added beside it): `network_settings`
says which, for `build_model` and for `dimension` (D without training). Its init
(theta0) is the rlsub network's own init from the
trial's theta0 seed, so with ``parts: actor`` (and always for DQN) the
returned `Subspace` is that same rlsub network with the same P and z, and
`run_trial` writes the compact policy file (kilobytes) that replays it. With
``parts: all`` the subspace also spans the critic, which the compact rlsub
network cannot hold: the SB3 policy's state is written instead, without pickle
(rlsub.algos.sb3_file).

Env steps come from SB3's `DummyVecEnv` over `rlsub.envs.vector.make_env(spec)`
(Monitor-wrapped). Atari specs (``vector: ale``) run in ale-py's C++
`AtariVectorEnv` through `rlsub.algos.sb3_atari` (an SB3 VecEnv adapter that hands
over final observations), with exactly the settings ES uses (envs/pong.yaml).
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import VecEnv

from rlsub.algos.base import Trainer, TrainResult
from rlsub.algos.pg_config import (
    ALGOS,
    PGConfig,
    algorithm_kwargs,
    budget,
    check_config,
    describe,
    describe_q,
    spent,
)
from rlsub.algos.pg_envs import CurveCallback, eval_vec_env, evaluate, replay_extra, sb3_vec_env
from rlsub.algos.pg_networks import own_policy_kwargs
from rlsub.algos.pg_policies import SubspaceActorCriticPolicy, SubspaceDQNPolicy, subspace_kwargs
from rlsub.algos.sb3_file import SB3PolicyFile
from rlsub.algos.sizes import mlp_parameters, probe_env
from rlsub.algos.step_size import scale_at
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import resolve as resolve_device
from rlsub.core.errors import RlsubError
from rlsub.core.registry import build_network, count_parameters
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims, load_env_spec, policy_network_kwargs
from rlsub.nets.mlp import ACTIVATIONS

# SB3 policy_kwargs that reshape its networks (D is then known only to SB3)
SHAPES_POLICY = {
    "net_arch",
    "features_extractor_class",
    "features_extractor_kwargs",
    "share_features_extractor",
}
# the width of NatureCNN's features (its default): a shared-features critic's value head
NATURE_CNN_FEATURES = int(inspect.signature(NatureCNN.__init__).parameters["features_dim"].default)

# ------------------------------------------------------------------ model
MLP_DEFAULTS = {"hidden": [20, 20], "activation": "tanh"}  # `mlp` where the config is silent


def network_settings(
    cfg: ExperimentConfig[PGConfig], dims: EnvDims
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kwargs of the rlsub network in the subspace, sized for an env of `dims`; the SB3
    policy_kwargs that build the same network): `mlp` becomes SB3's net_arch and
    activation_fn, `nature_cnn` SB3's NatureCNN, any other network goes in as it is
    (rlsub.algos.pg_networks). `build_model` and `dimension` both read it."""
    algo, net, pgc = cfg.algorithm, cfg.network.name, cfg.train
    if algo == "dqn" and not dims.discrete:
        raise RlsubError(
            f"{cfg.source}: dqn needs a discrete action space; env {cfg.env!r} has a "
            f"continuous one ({dims.n_actions} dimensions)"
        )
    if net == "mlp":
        user = cfg.network.kwargs
        hidden = [int(h) for h in user.get("hidden", MLP_DEFAULTS["hidden"])]
        activation = str(user.get("activation", MLP_DEFAULTS["activation"]))
        net_kwargs = {**user, "hidden": hidden, "activation": activation}
        if activation not in ACTIVATIONS:
            raise RlsubError(f"{cfg.source}: unknown activation {activation!r}")
        policy_kwargs: dict[str, Any] = {"activation_fn": ACTIVATIONS[activation]}
        critic = hidden if pgc.critic_hidden is None else list(pgc.critic_hidden)
        policy_kwargs["net_arch"] = hidden if algo == "dqn" else {"pi": hidden, "vf": critic}
    elif net == "nature_cnn":
        net_kwargs = dict(cfg.network.kwargs)
        policy_kwargs = {"features_extractor_class": NatureCNN, "net_arch": []}
        if algo != "dqn":
            policy_kwargs["net_arch"] = {"pi": [], "vf": []}
    else:  # any other network is the actor / Q-network as it is (rlsub.algos.pg_networks)
        net_kwargs = dict(cfg.network.kwargs)
        policy_kwargs = own_policy_kwargs(algo, pgc.critic_hidden)
    return policy_network_kwargs(net, net_kwargs, dims), policy_kwargs


def build_model(
    cfg: ExperimentConfig[PGConfig], d: int | str, seed: int, env: VecEnv
) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """The SB3 algorithm with a subspace policy; returns (model, subspace kwargs)."""
    check_config(cfg)
    pgc, algo = cfg.train, cfg.algorithm
    kwargs = algorithm_kwargs(algo, pgc.hyperparams)
    space = env.action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    obs_shape = tuple(env.observation_space.shape or ())
    n_out = int(space.n) if discrete else int(np.prod(space.shape or ()))  # type: ignore[attr-defined]
    net_kwargs, policy_kwargs = network_settings(cfg, EnvDims(obs_shape, discrete, n_out))
    seeds = _seeds(cfg, seed)
    sub = subspace_kwargs(
        d,
        cfg.network.name,
        net_kwargs,
        theta0_seed=seeds["theta0"],
        projection=cfg.subspace.projection,
        projection_seed=seeds["projection"],
        parts=pgc.parts,
        rest=cfg.subspace.rest,
        dense_limit_gib=cfg.subspace.dense_limit_gib,
        # the direct baseline trains theta itself at the algorithm's own learning rate
        z_lr_scale=1.0 if d == "direct" else scale_at(pgc.z_lr_scale, d),
    )
    policy_kwargs.update(kwargs.pop("policy_kwargs", {}))
    policy_kwargs["subspace"] = sub
    policy = SubspaceDQNPolicy if algo == "dqn" else SubspaceActorCriticPolicy
    model = ALGOS[algo](
        policy,
        env,
        seed=seeds["sb3"],
        device=sb3_device(pgc.device, obs_shape, f"{cfg.source}: train.device"),
        verbose=0,
        policy_kwargs=policy_kwargs,
        **kwargs,
    )
    return model, sub


def dimension(
    cfg: ExperimentConfig[PGConfig], data: bool = True, progress: bool = False
) -> int | None:
    """D of the subspace `build_model` builds, from a 1-slot env of the spec: the actor (or
    DQN's Q-network) and, with ``parts: all`` (PPO / A2C), the critic's value network on
    the features beside it. None where SB3 alone knows: policy_kwargs that reshape its
    networks (net_arch, features extractor)."""
    if set(cfg.train.hyperparams.get("policy_kwargs") or {}) & SHAPES_POLICY:
        return None
    dims = probe_env(cfg)
    net_kwargs, policy_kwargs = network_settings(cfg, dims)
    D = count_parameters(build_network(cfg.network.name, net_kwargs))
    arch = policy_kwargs["net_arch"]
    if cfg.train.parts == "all" and isinstance(arch, dict):  # an actor-critic's value net
        extractor = policy_kwargs.get("features_extractor_class")
        features = dims.obs_dim if extractor is not NatureCNN else NATURE_CNN_FEATURES
        D += mlp_parameters([features, *arch["vf"], 1])
    return D


def sb3_device(name: str, obs_shape: tuple[int, ...], where: str) -> torch.device:
    """SB3's device: `name` resolved (rlsub.core.device); auto is CUDA only for images
    (SB3 runs small MLP policies faster on the CPU)."""
    if name == "auto" and len(obs_shape) < 3:
        return torch.device("cpu")
    return resolve_device(name, where)


def _seeds(cfg: ExperimentConfig, seed: int) -> dict[str, int]:
    pin = cfg.subspace.projection_seed
    return trial_seeds(seed, None if pin is None else {"projection": pin})


def policy_subspace(model: BaseAlgorithm) -> Subspace:
    """The subspace of the network that picks actions (actor, or DQN's Q-network)."""
    policy: Any = model.policy
    sub = policy.q_net.subspace if isinstance(policy, SubspaceDQNPolicy) else policy.subspace
    assert isinstance(sub, Subspace)
    return sub


def compact_subspace(model: BaseAlgorithm, sub_kwargs: dict[str, Any]) -> Subspace | None:
    """The rlsub network equivalent to the trained actor (same theta0, P and z), or None
    when the subspace also spans the critic (parts: all with PPO / A2C)."""
    if isinstance(model.policy, SubspaceActorCriticPolicy) and sub_kwargs["parts"] == "all":
        return None
    trained = policy_subspace(model)
    out = Subspace.from_spec(
        sub_kwargs["network"],
        sub_kwargs["network_kwargs"],
        sub_kwargs["theta0_seed"],
        sub_kwargs["d"],
        sub_kwargs["projection"],
        sub_kwargs["projection_seed"],
        dense_limit_gib=float("inf"),
    )
    if out.D != trained.D or not torch.equal(out.theta0, trained.theta0):
        raise RuntimeError("rlsub: compact actor does not match the SB3 actor's theta0")
    with torch.no_grad():
        out.z.copy_(trained.z)
    return out


# ------------------------------------------------------------------ train
def train(
    cfg: ExperimentConfig[PGConfig], d: int | str, seed: int, progress: bool = True
) -> TrainResult:
    """Train `cfg` (ppo / a2c / dqn) at subspace dimension d ("direct": all D) with `seed`."""
    check_config(cfg)  # fail on a bad key before any work
    pgc = cfg.train
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    seeds = _seeds(cfg, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # SB3's small batches run fastest on one thread
    try:
        env = sb3_vec_env(spec, pgc.n_envs, seeds["env"])
        model, sub_kwargs = build_model(cfg, d, seed, env)
        eval_env = eval_vec_env(spec, spec.eval_episodes)
        curve: list[dict[str, float]] = []

        def point(step: int) -> float:
            mean, _ = evaluate(model, eval_env, seeds["eval"] + 1 + len(curve))
            curve.append({"step": float(step), "value": mean})
            return mean

        stop_at = spec.solved_score if pgc.stop_when_solved else None
        callback = CurveCallback(pgc.total_timesteps, pgc.eval_freq, point, progress, stop_at)
        model.learn(total_timesteps=pgc.total_timesteps, callback=callback)
        final_mean, final_std = evaluate(model, eval_env, seeds["eval"])
        steps = int(model.num_timesteps)
        if not curve or curve[-1]["step"] < steps:
            curve.append({"step": float(steps), "value": final_mean})
        trained = policy_subspace(model)
        compact = compact_subspace(model, sub_kwargs)
        extra = replay_extra(env)
        env.close()
        eval_env.close()
    finally:
        torch.set_num_threads(threads)
    direct = [p for n, p in model.policy.named_parameters() if not n.endswith("subspace.z")]
    info: dict[str, Any] = {
        "parts": pgc.parts,
        "rest": cfg.subspace.rest,
        "trained_directly": int(sum(p.numel() for p in direct if p.requires_grad)),
        "policy_file": "compact rlsub subspace"
        if compact is not None
        else "SB3 state (parts: all)",
        "seeds": seeds,
    }
    if pgc.stop_when_solved:
        info["stopped_when_solved_at"] = callback.stopped_at
    return TrainResult(
        final_eval_mean=final_mean,
        final_eval_std=final_std,
        best_eval_mean=max([final_mean, *(c["value"] for c in curve)]),
        D=trained.D,
        d=trained.d,
        env_steps=steps,
        curve=curve,
        solved_score=spec.solved_score,
        subspace=compact if compact is not None else SB3PolicyFile(model, d, seed),
        extra={**extra, "env": cfg.env, "env_variant": cfg.env_variant, "algorithm": cfg.algorithm},
        info=info,
    )


_HOOKS: dict[str, Any] = {
    "family": "pg",
    "check": check_config,
    "dimension": dimension,
    "budget": budget,
    "spent": spent,
}
PPO_TRAINER = Trainer(PGConfig, train, describe=describe, **_HOOKS)
A2C_TRAINER = Trainer(PGConfig, train, describe=describe, **_HOOKS)
DQN_TRAINER = Trainer(PGConfig, train, describe=describe_q, **_HOOKS)
