"""Environment specs (envs/*.yaml) and vector-env factories.

A spec names the gymnasium id and kwargs, the episode cap, the number of
evaluation episodes, the solved score and the random-policy score (with the
command that measured it), and how to vectorise:

- ``native``: the env's own vector implementation (`gymnasium.make_vec`
  with ``vector_entry_point``; CartPole steps all slots in numpy);
- ``sync``: `gymnasium.vector.SyncVectorEnv` (one process, a Python loop);
- ``async``: `gymnasium.vector.AsyncVectorEnv` (one process per slot);
- ``ale``: ale-py's `AtariVectorEnv` (C++ threads, Atari preprocessing built in).

All vector envs use gymnasium's next-step autoreset; rollouts here run each
slot for exactly one episode and mask it once done, so no reward leaks across
episodes. A spec may declare a fast path of rlsub's rollouts for its vector env
(``fast_path``: ``cartpole``, ``ale``); the rollouts read that declaration from the
env (`rlsub.envs.vector.fast_path`), never the env's class.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rlsub.core.bundled import ENV_DIR
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.registry import ENV_SPECS, NETWORKS
from rlsub.core.schema import check, doc, from_mapping, read_yaml
from rlsub.core.trust import check_import, reading_file

CARTPOLE_IDS = ("CartPole-v0", "CartPole-v1")  # gymnasium's, with a native vector env
REQUIRES_HINT = {
    "mujoco": "pip install 'gymnasium[mujoco]'",
    "ale_py": "pip install 'rlsub[atari]' (ale-py ships the Atari ROMs)",
}


@dataclass(frozen=True)
class EnvSpec:
    name: str = doc("short name (the file's stem)")
    id: str = doc("gymnasium id")
    kwargs: dict[str, Any] = doc(
        "keyword arguments for gymnasium.make / make_vec", default_factory=dict
    )
    max_episode_steps: int = doc("episode cap in agent steps", default=1000)
    eval_episodes: int = doc("deterministic evaluation episodes", default=10)
    solved_score: float = doc(
        "mean evaluation return that counts as solved (d_int100)", default=0.0
    )
    random_score: float | None = doc("mean return of a uniformly random policy", default=None)
    vector: Literal["native", "sync", "async", "ale"] = doc("vectorisation", default="sync")
    fast_path: Literal["cartpole", "ale"] | None = doc(
        "rlsub's own rollout path for this vector env (rlsub.rollout): 'cartpole' "
        "(gymnasium's native CartPole vector env: each slot's start state drawn from its "
        "own seed, and whole rollouts compiled with the physics in the kernel), 'ale' "
        "(ale-py's AtariVectorEnv: one seed per slot, as an array); null: the generic path, "
        "or the one implied by vector: ale and by a native CartPole-v0/v1",
        default=None,
    )
    requires: str | None = doc("python package the env needs (clear error if absent)", default=None)
    variants: dict[str, Any] = doc("named overrides of the fields above", default_factory=dict)
    variant: str | None = doc("the variant applied (set by the loader)", default=None)

    def __post_init__(self) -> None:
        check(
            self.max_episode_steps > 0,
            f"max_episode_steps must be > 0, got {self.max_episode_steps}",
        )
        check(self.eval_episodes > 0, f"eval_episodes must be > 0, got {self.eval_episodes}")
        check(
            self.fast_path != "ale" or self.vector == "ale",
            "fast_path: ale needs vector: ale (ale-py's AtariVectorEnv)",
        )
        check(
            self.fast_path != "cartpole" or self.vector == "native",
            "fast_path: cartpole needs vector: native (gymnasium's CartPole vector env)",
        )
        if self.fast_path is None:  # the path these vector envs always take (frozen: set once)
            object.__setattr__(self, "fast_path", implied_fast_path(self.vector, self.id))


def implied_fast_path(vector: str, env_id: str) -> Literal["cartpole", "ale"] | None:
    """The fast path of a spec that names none: ale-py's vector env takes its seeds one per
    slot, and gymnasium's native CartPole vector env seeds all slots from one seed, so
    rlsub starts its slots itself (rlsub.rollout.slots.reset_slots)."""
    if vector == "ale":
        return "ale"
    if vector == "native" and env_id in CARTPOLE_IDS:
        return "cartpole"
    return None


def inline_spec(data: dict[str, Any], where: str | None = None) -> EnvSpec:
    """An env spec written inline in a config (`env: {id: Acrobot-v1, random_score: ...}`),
    checked against `EnvSpec` as a spec file is. Its name defaults to the id; fields it
    leaves out come from gymnasium's registration of the id where there is one
    (`gymnasium_spec`: episode cap, solved score), else from `EnvSpec`'s defaults.
    `where` names the config in errors (`check_config_env`)."""
    env_id = data.get("id")
    label = env_id if isinstance(env_id, str) else repr(data)
    where = f"{where} (inline spec {label})" if where else f"inline env spec {label}"
    if not isinstance(env_id, str):
        raise ConfigError(f"{where}: needs 'id' (a gymnasium id)")
    base: dict[str, Any] = {}
    if env_id in gym.envs.registry:
        base = dataclasses.asdict(gymnasium_spec(env_id))
        base.pop("variant")
    return from_mapping(EnvSpec, {**base, "name": data.get("name") or env_id, **data}, where)


def check_config_env(env: Any, where: str) -> None:
    """A config's inline env spec checked now, its errors naming the config (`where`:
    the config's source); names and paths are checked where they are loaded."""
    if isinstance(env, dict):
        inline_spec(env, f"{where}: env")


def load_env_spec(name_or_path: str | dict[str, Any], variant: str | None = None) -> EnvSpec:
    """An env spec with an optional variant applied: a name registered in
    `rlsub.core.registry.ENV_SPECS` (the bundled envs/NAME.yaml), a path to a YAML spec,
    an import path "pkg.module:attr" to an EnvSpec, a mapping, or a function returning
    either, or any registered gymnasium id (`gymnasium_spec`); or an inline mapping
    (`inline_spec`)."""
    if isinstance(name_or_path, dict):
        spec = inline_spec(name_or_path)
        return _variant(spec, variant, Path(f"inline env spec {spec.id}"))
    path = Path(name_or_path)
    entry = ENV_SPECS.entry(name_or_path)
    if (
        ":" in name_or_path
        and not path.suffix
        or (entry is not None and not isinstance(entry, str))
    ):
        obj = ENV_SPECS.resolve(name_or_path)
        obj = obj() if callable(obj) and not isinstance(obj, EnvSpec) else obj
        spec = obj if isinstance(obj, EnvSpec) else from_mapping(EnvSpec, obj, name_or_path)
        path = Path(name_or_path)
    else:
        if not path.suffix:
            path = ENV_DIR / (entry if isinstance(entry, str) else f"{name_or_path}.yaml")
        if path.is_file():
            spec = from_mapping(EnvSpec, read_yaml(path), str(path))
        elif not Path(name_or_path).suffix and name_or_path in gym.envs.registry:
            spec = gymnasium_spec(name_or_path)
        else:
            known = ", ".join(
                sorted({*ENV_SPECS.names(), *(p.stem for p in ENV_DIR.glob("*.yaml"))})
            )
            raise RlsubError(
                f"unknown env {name_or_path!r}: no spec at {path} and no gymnasium id of that "
                f"name; known specs: {known}"
            )
    return _variant(spec, variant, path)


def _variant(spec: EnvSpec, variant: str | None, path: Path) -> EnvSpec:
    """`spec` with its variant `variant` applied (None: as it is), its id and requirements
    checked (an import path read from a file must be trusted: rlsub.core.trust)."""
    spec = _with_variant(spec, variant, path)
    if reading_file() is not None and ":" in spec.id:  # gymnasium imports "module:Env-v0"
        check_import(spec.id, "env id")
    _check_requires(spec)
    return spec


def _with_variant(spec: EnvSpec, variant: str | None, path: Path) -> EnvSpec:
    if variant is None:
        return spec
    if variant not in spec.variants:
        raise ConfigError(
            f"{path}: unknown variant {variant!r}; known: {', '.join(spec.variants) or 'none'}"
        )
    over = dict(spec.variants[variant])
    return from_mapping(
        EnvSpec,
        {**dataclasses.asdict(spec), **over, "variant": variant},
        f"{path}: variants.{variant}",
    )


def env_spec_data(name: str | dict[str, Any], variant: str | None = None) -> EnvSpec | None:
    """Spec `name` read as data only: a bundled name, a YAML file, a registered gymnasium
    id or an inline mapping; None for anything else (an import path) or a spec that does
    not load. Imports nothing and checks no package: for reading stores and records,
    which run no code they name (rlsub.core.trust)."""
    if isinstance(name, dict):  # an inline spec: data, unless its id names a module
        if ":" in str(name.get("id", "")):
            return None
        try:
            return _with_variant(inline_spec(name), variant, Path("inline env spec"))
        except RlsubError:
            return None
    entry = ENV_SPECS.entry(name)
    if entry is not None and not isinstance(entry, str) or ":" in name and not Path(name).suffix:
        return None
    path = Path(name) if Path(name).suffix else ENV_DIR / (entry or f"{name}.yaml")
    try:
        if path.is_file():
            spec = from_mapping(EnvSpec, read_yaml(path), str(path))
        elif entry is None and not Path(name).suffix and name in gym.envs.registry:
            spec = gymnasium_spec(name)
        else:
            return None
        return _with_variant(spec, variant, path)
    except (RlsubError, OSError):
        return None


def gymnasium_spec(env_id: str) -> EnvSpec:
    """A spec for any registered gymnasium id (e.g. "Acrobot-v1"): its own episode cap,
    its `reward_threshold` as the solved score (none: +inf, so d_int100 is never
    claimed), no random score (run `rlsub random-score ID` and write a YAML spec to
    have one: the d_int90 line then uses it), 10 evaluation episodes, a sync vector env."""
    gspec = gym.envs.registry[env_id]
    threshold = gspec.reward_threshold
    return EnvSpec(
        name=env_id,
        id=env_id,
        max_episode_steps=int(gspec.max_episode_steps or 1000),
        eval_episodes=10,
        solved_score=float("inf") if threshold is None else float(threshold),
        random_score=None,
        vector="sync",
    )


def _check_requires(spec: EnvSpec) -> None:
    if spec.requires is None:
        return
    if spec.requires not in REQUIRES_HINT:  # a file being read may not name code
        check_import(spec.requires, "required package")
    try:
        importlib.import_module(spec.requires)
    except ImportError:
        hint = REQUIRES_HINT.get(spec.requires, f"pip install {spec.requires}")
        raise RlsubError(f"env {spec.name!r} needs the {spec.requires} package: {hint}") from None


@dataclass(frozen=True)
class EnvDims:
    """Observation shape and action space, for sizing networks."""

    obs_shape: tuple[int, ...]
    discrete: bool
    n_actions: int  # discrete: number of actions; continuous: action dimension
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))


def env_dims(env: gym.vector.VectorEnv) -> EnvDims:
    obs = env.single_observation_space
    act = env.single_action_space
    if isinstance(act, gym.spaces.Discrete):
        return EnvDims(tuple(obs.shape or ()), True, int(act.n))
    if isinstance(act, gym.spaces.Box):
        return EnvDims(tuple(obs.shape or ()), False, int(np.prod(act.shape)), act.low, act.high)
    raise RlsubError(f"unsupported action space {act}")


def policy_network_kwargs(net_name: str, kwargs: dict[str, Any], dims: EnvDims) -> dict[str, Any]:
    """Fill the env-dependent sizes into a network's kwargs (mlp: in_dim, out_dim; a user's
    builder given as an import path: whichever of in_dim, obs_shape, in_channels, out_dim,
    n_actions its signature names)."""
    out = dict(kwargs)
    if net_name == "mlp":
        out.setdefault("in_dim", dims.obs_dim)
        out.setdefault("out_dim", dims.n_actions)
    elif net_name in ("es_pong", "nature_cnn"):
        out.setdefault("in_channels", dims.obs_shape[0])
        out.setdefault("n_actions", dims.n_actions)
    elif ":" in net_name:  # a user's builder: fill the sizes it asks for by name
        params = inspect.signature(NETWORKS.resolve(net_name)).parameters
        sizes = {
            "in_dim": dims.obs_dim,
            "obs_shape": tuple(dims.obs_shape),
            "in_channels": dims.obs_shape[0],
            "out_dim": dims.n_actions,
            "n_actions": dims.n_actions,
        }
        for key, value in sizes.items():
            if key in params:
                out.setdefault(key, value)
    return out
