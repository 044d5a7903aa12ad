"""Checks a sweep makes before it creates anything: the request (mode, backend, workers),
the env or the dataset files, the network's D, and every d of the grid against D.

`validate` runs before the store file is created and before any progress bar is
drawn, so a bad env id, a bad dataset file, ``--workers 0`` or a d larger than the
network allows ends with one error line and leaves nothing behind. D is computed
the way the trainer builds its `Subspace`: RL networks get their input and output
sizes from a 1-slot env of the spec (`policy_network_kwargs`, `env_dims`),
supervised ones from the dataset. A plug-in trainer (an import path outside
rlsub.algos) decides itself what its env and network are, so only the request is
checked for it.

Imports: algos, data, envs, nets, core.
"""

from __future__ import annotations

from typing import Any

from rlsub.algos.es_setup import is_pixels
from rlsub.algos.supervised import _check_fit, network_kwargs
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import resolve as resolve_device
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.core.registry import TRAINERS, build_network, count_parameters
from rlsub.core.subspace import Subspace
from rlsub.data.datasets import load_dataset, shape_only
from rlsub.envs.spec import (
    EnvDims,
    check_config_env,
    env_dims,
    load_env_spec,
    policy_network_kwargs,
)
from rlsub.envs.vector import make_vec_env
from rlsub.sweep.executors import import_ray

MODES = ("grid", "adaptive")
BACKENDS = ("local", "ray")
PG_ALGORITHMS = ("ppo", "a2c", "dqn")
NATURE_CNN_FEATURES = 512  # SB3 NatureCNN's features_dim: its value head is Linear(512, 1)

# SB3 policy_kwargs that change which parameters the networks have
_SHAPES_POLICY = {
    "net_arch",
    "features_extractor_class",
    "features_extractor_kwargs",
    "share_features_extractor",
}
_KINDS = {  # module of a trainer's train function -> how it builds its network
    "rlsub.algos.es": "es",
    "rlsub.algos.cmaes": "es",
    "rlsub.algos.es_solo": "es",
    "rlsub.algos.pg": "pg",
    "rlsub.algos.supervised": "supervised",
}


def check_request(mode: str, backend: str, workers: int) -> None:
    """Mode, backend and worker count (Ray: that it is installed)."""
    if mode not in MODES:
        raise RlsubError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if backend not in BACKENDS:
        raise RlsubError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RlsubError(f"--workers must be >= 1, got {workers}")
    if backend == "ray":
        import_ray()


def trainer_kind(cfg: ExperimentConfig) -> str | None:
    """'es', 'pg' or 'supervised' for rlsub's own trainers; None for a plug-in."""
    train = getattr(TRAINERS.resolve(cfg.algorithm), "train", None)
    return _KINDS.get(getattr(train, "__module__", ""))


def _subspace_D(cfg: ExperimentConfig, kwargs: dict[str, Any]) -> Subspace:
    """The trainer's Subspace at d = 'direct' (identity P: cheap), for its D."""
    return Subspace.from_spec(
        cfg.network.name,
        kwargs,
        0,
        "direct",
        include=cfg.subspace.include,
        rest=cfg.subspace.rest,
    )


def _env_dims(cfg: ExperimentConfig) -> EnvDims:
    spec = load_env_spec(cfg.env or "", cfg.env_variant)
    env = make_vec_env(spec, 1)
    try:
        dims = env_dims(env)
        if getattr(cfg.train, "obs_norm", False) and is_pixels(env):
            raise RlsubError(
                f"{cfg.source}: train.obs_norm must be false for pixel observations "
                f"(env {spec.name!r}: uint8 {dims.obs_shape}); the policy sees them divided by 255"
            )
    finally:
        env.close()
    return dims


def _mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def _pg_D(cfg: ExperimentConfig, dims: EnvDims) -> int | None:
    """D of rlsub.algos.pg's subspace: the actor (the rlsub network, or any other network
    as it is), plus the critic with ``parts: all`` (PPO / A2C). None where it cannot be
    known without building SB3's model: policy_kwargs that change SB3's networks."""
    from rlsub.algos.pg import algorithm_kwargs  # imports SB3: only for these trainers
    from rlsub.algos.pg_networks import CRITIC_HIDDEN, is_own

    algo, tc = cfg.algorithm, cfg.train
    algorithm_kwargs(algo, tc.hyperparams)  # a bad key fails here, as at the trial
    if cfg.subspace.include is not None:
        raise RlsubError(
            f"{cfg.source}: subspace.include is not used by {algo}; choose train.parts "
            "('actor' or 'all') instead"
        )
    if set(tc.hyperparams.get("policy_kwargs") or {}) & _SHAPES_POLICY:
        return None
    if algo == "dqn" and not dims.discrete:
        raise RlsubError(
            f"{cfg.source}: dqn needs a discrete action space; env {cfg.env!r} has a "
            f"continuous one ({dims.n_actions} dimensions)"
        )
    user = cfg.network.kwargs
    kwargs = dict(user)
    if is_own(cfg.network.name):  # the network as it is, beside SB3's MLP critic
        D = count_parameters(
            build_network(cfg.network.name, policy_network_kwargs(cfg.network.name, kwargs, dims))
        )
        if tc.parts == "all" and algo != "dqn":
            critic = CRITIC_HIDDEN if tc.critic_hidden is None else list(tc.critic_hidden)
            D += _mlp_params([dims.obs_dim, *critic, 1])
        return D
    if cfg.network.name == "mlp":  # pg's defaults for SB3's net_arch and activation_fn
        kwargs["hidden"] = [int(h) for h in user.get("hidden", [20, 20])]
        kwargs["activation"] = str(user.get("activation", "tanh"))
    net = build_network(cfg.network.name, policy_network_kwargs(cfg.network.name, kwargs, dims))
    D = count_parameters(net)
    if tc.parts == "all" and algo != "dqn":
        if cfg.network.name == "mlp":
            critic = kwargs["hidden"] if tc.critic_hidden is None else list(tc.critic_hidden)
            D += _mlp_params([dims.obs_dim, *critic, 1])
        else:  # shared NatureCNN features: the critic adds its value head
            D += NATURE_CNN_FEATURES + 1
    return D


def network_D(cfg: ExperimentConfig, progress: bool = False, data: bool = True) -> int | None:
    """The D the trainer's subspace will have, checking the env or dataset on the way;
    None for a plug-in trainer (or where pg's D cannot be known cheaply). `data=False`:
    supervised networks are sized from the dataset's known input shape, and no file is
    read or downloaded (`rlsub info`)."""
    check_config_env(cfg.env, cfg.source)
    kind = trainer_kind(cfg)
    if kind == "supervised":
        if cfg.dataset is None:
            raise RlsubError(f"{cfg.source}: algorithm {cfg.algorithm!r} needs a 'dataset' section")
        ds = cfg.dataset
        found = (
            load_dataset(ds.name, ds.variant, ds.data_dir, progress=progress)
            if data
            else shape_only(ds.name, ds.variant)
        )
        sub = _subspace_D(cfg, network_kwargs(cfg, found))
        _check_fit(cfg, sub, found)
        return sub.D
    if kind is None:
        return None
    dims = _env_dims(cfg)
    if kind == "pg" and cfg.algorithm in PG_ALGORITHMS:
        return _pg_D(cfg, dims)
    if kind == "pg":  # pg given by an import path: pg itself refuses it at the trial
        return None
    return _subspace_D(cfg, policy_network_kwargs(cfg.network.name, cfg.network.kwargs, dims)).D


def largest_d(cfg: ExperimentConfig, D: int) -> int | None:
    """The largest d the config's projection allows for D (None: no limit; fastfood
    stacks blocks past D)."""
    kind = cfg.subspace.projection
    if kind == "sparse":
        return D
    if kind == "dense":
        return min(D, int(cfg.subspace.dense_limit_gib * 2**30 // (4 * D)))
    return None


def check_d_grid(cfg: ExperimentConfig, D: int | None) -> None:
    """Every d of sweep.d_grid against D: one error naming the largest allowed d."""
    limit = None if D is None else largest_d(cfg, D)
    if limit is None:
        return
    bad = sorted(d for d in set(cfg.sweep.d_grid) if d > limit)
    if not bad:
        return
    kind = cfg.subspace.projection
    why = f"D = {D:,}"
    if kind == "dense" and limit < (D or 0):
        why += f", dense_limit_gib = {cfg.subspace.dense_limit_gib:g}"
    if limit < 1:
        raise ConfigError(
            f"{cfg.source}: sweep.d_grid: a dense projection of D = {D:,} does not fit in "
            f"subspace.dense_limit_gib = {cfg.subspace.dense_limit_gib:g} for any d; "
            "use sparse or fastfood"
        )
    raise ConfigError(
        f"{cfg.source}: sweep.d_grid: d = {', '.join(map(str, bad))} too large for a {kind} "
        f"projection of network {cfg.network.name!r} ({why}); the largest allowed d is {limit:,}"
    )


def validate(
    cfg: ExperimentConfig, mode: str, backend: str, workers: int, progress: bool = False
) -> int | None:
    """Everything a sweep checks before it creates its store; returns D (None: unknown)."""
    check_request(mode, backend, workers)
    device = getattr(cfg.train, "device", None)
    if isinstance(device, str) and device != "auto" and backend == "local":
        resolve_device(device, f"{cfg.source}: train.device")  # a GPU that is not here
    D = network_D(cfg, progress)
    check_d_grid(cfg, D)
    return D
