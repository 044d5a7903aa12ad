"""Checks a sweep makes before it creates anything: the request (mode, backend, workers),
the env or the dataset files, the network's D, and every d of the grid against D.

`validate` runs before the store file is created and before any progress bar is
drawn, so a bad env id, a bad dataset file, ``--workers 0`` or a d larger than the
network allows ends with one error line and leaves nothing behind. The trainer
answers for its own config (rlsub.algos.base): `check(cfg)` refuses what its trials
would refuse, and `dimension(cfg)` gives the D its subspace will have, building the
env (one slot) or reading the dataset the way its trials do. A trainer that cannot
tell (a plug-in without these answers) has only the request checked.

Imports: algos, envs, core.
"""

from __future__ import annotations

from rlsub.algos.base import trainer_for
from rlsub.core.config import ExperimentConfig
from rlsub.core.device import resolve as resolve_device
from rlsub.core.errors import ConfigError, RlsubError
from rlsub.envs.spec import check_config_env
from rlsub.sweep.executors import import_ray

MODES = ("grid", "adaptive")
BACKENDS = ("local", "ray")


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


def network_D(cfg: ExperimentConfig, progress: bool = False, data: bool = True) -> int | None:
    """The D the trainer's subspace will have, its config, env or dataset checked on the
    way; None where the trainer cannot tell before training. `data=False`: supervised
    networks are sized from the dataset's known input shape, and no file is read or
    downloaded (`rlsub info`)."""
    check_config_env(cfg.env, cfg.source)
    trainer = trainer_for(cfg.algorithm)
    trainer.check(cfg)
    return trainer.dimension(cfg, data=data, progress=progress)


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
