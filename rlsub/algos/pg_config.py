"""The `train:` section of SB3 PPO / A2C / DQN in a subspace (`PGConfig`), the SB3
constructor arguments it may hold (`algorithm_kwargs`: checked against the algorithm's
signature, rl-zoo3's ``lin_X`` schedules resolved), and what these trainers tell the
layers above without training (rlsub.algos.base): the config check, the budget in env
steps and the words that tell their table rows apart. D is `rlsub.algos.pg.dimension`.

Imports: algos.step_size, algos.base, core (SB3 beside them).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from rlsub.algos.base import Budget
from rlsub.algos.step_size import check_scale, describe_scale
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import ALLOWED as DEVICES
from rlsub.core.device import valid as device_valid
from rlsub.core.errors import RlsubError
from rlsub.core.schema import check, doc

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
    z_lr_scale: float | str | dict[int, float | str] = doc(
        "z's learning rate = the algorithm's learning_rate x this: a number, or "
        "'K*sqrt(D/d)' (D: parameters in the subspace) so that every d moves theta as far "
        "per step as direct training, times K (direct parts, and the direct baseline "
        "d = 'direct': x 1), or a mapping {d: either} per d (what `rlsub tune` writes; a d "
        "between mapped ones takes the nearest in log d)",
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
            check_scale(self.z_lr_scale)
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


# ------------------------------------------------- what the layers above ask (algos.base)
def check_config(cfg: ExperimentConfig) -> None:
    """What a PG trial refuses before it builds anything: no env, a hyperparameter SB3's
    constructor does not take, a `subspace.include` (PG chooses `train.parts` instead)."""
    if cfg.env is None:
        raise RlsubError(f"{cfg.source}: {cfg.algorithm} needs an env")
    algorithm_kwargs(cfg.algorithm, cfg.train.hyperparams)
    if cfg.subspace.include is not None:
        raise RlsubError(
            f"{cfg.source}: subspace.include is not used by {cfg.algorithm}; choose "
            "train.parts ('actor' or 'all') instead"
        )


def budget(cfg: ExperimentConfig) -> Budget:
    return Budget("env step", float(cfg.train.total_timesteps))


def spent(row: Mapping[str, Any]) -> float | None:
    """Env steps a finished trial took (fewer than the budget if it stopped when solved)."""
    return float(row.get("env_steps") or 0) or None


def describe(train: Mapping[str, Any], actor_critic: bool = True) -> list[str]:
    """Which parts are in the subspace (PPO / A2C; DQN's is always the Q-network) and z's
    step-size rule where the config sets one (the step-size protocol)."""
    out = [f"parts: {train.get('parts', 'actor')}"] if actor_critic else []
    if "z_lr_scale" in train:
        out.append(describe_scale(train["z_lr_scale"]))
    return out


def describe_q(train: Mapping[str, Any]) -> list[str]:
    """`describe` for DQN."""
    return describe(train, actor_critic=False)
