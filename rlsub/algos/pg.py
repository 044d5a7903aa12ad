"""Policy gradients in a random subspace: stable-baselines3 PPO, A2C and DQN.

`train(cfg, d, seed)` trains SB3's algorithm with a subspace policy
(rlsub.pg_policies: theta = theta0 + P z, only z and the directly trained
parts learn), records a learning curve every `eval_freq` env steps, evaluates
the final policy on the env spec's `eval_episodes` fresh deterministic
episodes, and hands back a `rlsub.trial.TrainResult`.

The network in the subspace is the config's `network` (the actor: obs ->
logits for discrete actions, obs -> action mean for continuous ones, or obs ->
Q-values for DQN): `mlp` (hidden sizes and activation become SB3's
``net_arch``/``activation_fn``), `nature_cnn` (SB3's NatureCNN features +
action head), or any other network, a user's by import path, as it is
(`rlsub.algos.pg_networks`; SB3's MLP critic is added beside it). Its init (theta0) is the rlsub network's own init from the
trial's theta0 seed, so with ``parts: actor`` (and always for DQN) the
returned `Subspace` is that same rlsub network with the same P and z, and
`run_trial` writes the compact policy file (kilobytes) that replays it. With
``parts: all`` the subspace also spans the critic, which the compact rlsub
network cannot hold: the SB3 policy's state is written instead, without pickle
(rlsub.algos.sb3_file).

Env steps come from SB3's `DummyVecEnv` over `rlsub.envs.make_env(spec)`
(Monitor-wrapped). Atari specs (``vector: ale``) run in ale-py's C++
`AtariVectorEnv` through `rlsub.sb3_atari` (an SB3 VecEnv adapter that hands
over final observations), with exactly the settings ES uses (envs/pong.yaml).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from rlsub.algos.base import Trainer, TrainResult
from rlsub.algos.pg_envs import _Curve, _eval_env, _replay_extra, evaluate, sb3_vec_env
from rlsub.algos.pg_networks import own_policy_kwargs
from rlsub.algos.pg_policies import (
    SubspaceActorCriticPolicy,
    SubspaceDQNPolicy,
    resolve_z_lr_scale,
    subspace_kwargs,
)
from rlsub.algos.sb3_file import SB3PolicyFile
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import ALLOWED as DEVICES
from rlsub.core.device import resolve as resolve_device
from rlsub.core.device import valid as device_valid
from rlsub.core.errors import RlsubError
from rlsub.core.schema import check, doc
from rlsub.core.seeding import trial_seeds
from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims, load_env_spec, policy_network_kwargs
from rlsub.nets.mlp import ACTIVATIONS

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
# constructor arguments that rlsub sets itself
_RESERVED = ("policy", "env", "seed", "device", "verbose", "_init_setup_model", "tensorboard_log")
# policy_kwargs that come from the network config or the subspace settings
_RESERVED_POLICY = ("subspace", "net_arch", "activation_fn", "features_extractor_class")
_SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")


MAX_ENVS = 4096  # training envs (each a Python env object in SB3's DummyVecEnv)


@dataclass(frozen=True)
class PGConfig:
    """Hyperparameters of SB3 PPO / A2C / DQN in a subspace (the config's `train:`)."""

    total_timesteps: int = doc("env steps of training (all envs together)", default=100_000)
    n_envs: int = doc("parallel training envs (SB3 DummyVecEnv)", default=8)
    eval_freq: int = doc(
        "env steps between learning-curve evaluations (0: final evaluation only)", default=10_000
    )
    hyperparams: dict[str, Any] = doc(
        "keyword arguments of the SB3 constructor (e.g. n_steps, learning_rate); "
        "'lin_X' for learning_rate / clip_range / clip_range_vf is a linear decay from X "
        "to 0 (rl-zoo3's convention); policy_kwargs may hold extra policy options "
        "(ortho_init, log_std_init, ...)",
        default_factory=dict,
    )
    critic_hidden: list[int] | None = doc(
        "hidden sizes of the actor-critic value network (null: the actor's)", default=None
    )
    z_lr_scale: float | str = doc(
        "z's learning rate = the algorithm's learning_rate x this: a number, or "
        "'K*sqrt(D/d)' (D: parameters in the subspace) so that every d moves theta as far "
        "per step as direct training, times K (direct parts, and the direct baseline "
        "d = 'direct': x 1)",
        default=1.0,
    )
    parts: Literal["actor", "all"] = doc(
        "what goes into the subspace: 'actor' (the action network; the critic and log_std "
        "follow subspace.rest) or 'all' (every network parameter, critic included); DQN: "
        "both mean the whole Q-network",
        default="actor",
    )
    stop_when_solved: bool = doc(
        "end training at the first learning-curve evaluation that reaches the env's "
        "solved score (OpenAI baselines' CartPole deepq example stops the same way); the "
        "final evaluation then runs on fresh episodes. Needs eval_freq > 0",
        default=False,
    )
    device: str = doc(
        "SB3's device (rlsub.core.device): auto, cpu, cuda, cuda:N. auto: CUDA for "
        "pixel observations (nature_cnn) where a GPU is present, else the CPU (SB3 runs "
        "MLP policies faster there)",
        default="auto",
    )

    def __post_init__(self) -> None:
        check(device_valid(self.device), f"device must be one of {DEVICES}, got {self.device!r}")
        check(self.total_timesteps > 0, f"total_timesteps must be > 0, got {self.total_timesteps}")
        check(0 < self.n_envs <= MAX_ENVS, f"n_envs must be in 1..{MAX_ENVS:,}, got {self.n_envs}")
        try:
            resolve_z_lr_scale(self.z_lr_scale, 1, 1)
        except ValueError as exc:
            check(False, str(exc))
        check(self.eval_freq >= 0, f"eval_freq must be >= 0, got {self.eval_freq}")
        check(
            not self.stop_when_solved or self.eval_freq > 0,
            "stop_when_solved needs eval_freq > 0 (the stop is decided at evaluations)",
        )
        check(
            self.critic_hidden is None or all(h > 0 for h in self.critic_hidden),
            f"critic_hidden must hold positive sizes, got {self.critic_hidden}",
        )


@dataclass(frozen=True)
class LinearSchedule:
    """rl-zoo3's ``lin_X``: X * progress_remaining (1 at the start, 0 at the end)."""

    start: float

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start


def algorithm_kwargs(algorithm: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Check `hyperparams` against the SB3 constructor of `algorithm`; resolve schedules."""
    if algorithm not in ALGOS:
        raise RlsubError(f"unknown PG algorithm {algorithm!r}; allowed: {', '.join(ALGOS)}")
    allowed = [n for n in inspect.signature(ALGOS[algorithm].__init__).parameters if n != "self"]
    out: dict[str, Any] = {}
    for key, value in hyperparams.items():
        if key in _RESERVED:
            raise RlsubError(f"train.hyperparams: {key!r} is set by rlsub, remove it")
        if key not in allowed:
            names = ", ".join(n for n in allowed if n not in _RESERVED)
            raise RlsubError(
                f"train.hyperparams: unknown key {key!r} for {algorithm} "
                f"(stable_baselines3.{ALGOS[algorithm].__name__}); allowed: {names}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise RlsubError(f"train.hyperparams.{key}: expected a finite number, got {value}")
        if isinstance(value, str) and value.startswith("lin_"):
            if key not in _SCHEDULED:
                raise RlsubError(f"train.hyperparams.{key}: a 'lin_' schedule is not allowed here")
            try:
                value = LinearSchedule(float(value[4:]))
                if not math.isfinite(value.start):
                    raise ValueError
            except ValueError:
                raise RlsubError(f"train.hyperparams.{key}: bad schedule {value!r}") from None
        if key == "policy_kwargs":
            if not isinstance(value, dict):
                raise RlsubError("train.hyperparams.policy_kwargs must be a mapping")
            bad = [k for k in value if k in _RESERVED_POLICY]
            if bad:
                raise RlsubError(
                    f"train.hyperparams.policy_kwargs: {bad[0]!r} comes from the network "
                    "and subspace sections, remove it"
                )
        out[key] = value
    return out


# ------------------------------------------------------------------ model
def build_model(
    cfg: ExperimentConfig, d: int | str, seed: int, env: VecEnv
) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """The SB3 algorithm with a subspace policy; returns (model, subspace kwargs)."""
    pgc: PGConfig = cfg.train
    algo = cfg.algorithm
    kwargs = algorithm_kwargs(algo, pgc.hyperparams)
    if cfg.subspace.include is not None:
        raise RlsubError(
            f"{cfg.source}: subspace.include is not used by {algo}; choose train.parts "
            "('actor' or 'all') instead"
        )
    net = cfg.network.name
    space = env.action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    if algo == "dqn" and not discrete:
        raise RlsubError(
            f"{cfg.source}: dqn needs a discrete action space; env {cfg.env!r} has {space}"
        )
    obs_shape = tuple(env.observation_space.shape or ())
    n_out = int(space.n) if discrete else int(np.prod(space.shape or ()))  # type: ignore[attr-defined]
    if net == "mlp":
        user = cfg.network.kwargs
        hidden = [int(h) for h in user.get("hidden", [20, 20])]
        activation = str(user.get("activation", "tanh"))
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
    seeds = _seeds(cfg, seed)
    sub = subspace_kwargs(
        d,
        net,
        policy_network_kwargs(net, net_kwargs, EnvDims(obs_shape, discrete, n_out)),
        theta0_seed=seeds["theta0"],
        projection=cfg.subspace.projection,
        projection_seed=seeds["projection"],
        parts=pgc.parts,
        rest=cfg.subspace.rest,
        dense_limit_gib=cfg.subspace.dense_limit_gib,
        # the direct baseline trains theta itself at the algorithm's own learning rate
        z_lr_scale=1.0 if d == "direct" else pgc.z_lr_scale,
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
def train(cfg: ExperimentConfig, d: int | str, seed: int, progress: bool = True) -> TrainResult:
    """Train `cfg` (ppo / a2c / dqn) at subspace dimension d ("direct": all D) with `seed`."""
    pgc: PGConfig = cfg.train
    if cfg.env is None:
        raise RlsubError(f"{cfg.source}: {cfg.algorithm} needs an env")
    algorithm_kwargs(cfg.algorithm, pgc.hyperparams)  # fail on a bad key before any work
    spec = load_env_spec(cfg.env, cfg.env_variant)
    seeds = _seeds(cfg, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # SB3's small batches run fastest on one thread
    try:
        env = sb3_vec_env(spec, pgc.n_envs, seeds["env"])
        model, sub_kwargs = build_model(cfg, d, seed, env)
        eval_env = _eval_env(spec, spec.eval_episodes)
        curve: list[dict[str, float]] = []

        def point(step: int) -> float:
            mean, _ = evaluate(model, eval_env, seeds["eval"] + 1 + len(curve))
            curve.append({"step": float(step), "value": mean})
            return mean

        stop_at = spec.solved_score if pgc.stop_when_solved else None
        callback = _Curve(pgc.total_timesteps, pgc.eval_freq, point, progress, stop_at)
        model.learn(total_timesteps=pgc.total_timesteps, callback=callback)
        final_mean, final_std = evaluate(model, eval_env, seeds["eval"])
        steps = int(model.num_timesteps)
        if not curve or curve[-1]["step"] < steps:
            curve.append({"step": float(steps), "value": final_mean})
        trained = policy_subspace(model)
        compact = compact_subspace(model, sub_kwargs)
        extra = _replay_extra(env)
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


def subspace_parameters(model: BaseAlgorithm) -> list[nn.Parameter]:
    """The tensors the optimizer updates (z plus what is trained directly)."""
    return [p for g in model.policy.optimizer.param_groups for p in g["params"]]


PPO_TRAINER = Trainer(PGConfig, train)
A2C_TRAINER = Trainer(PGConfig, train)
DQN_TRAINER = Trainer(PGConfig, train)
