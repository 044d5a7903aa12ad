"""rlsub: intrinsic dimension of RL and supervised objective landscapes.

theta = theta0 + P z: a network is trained only inside a random d-dimensional
subspace (Li, Farkhoor, Liu, Yosinski, "Measuring the Intrinsic Dimension of
Objective Landscapes", ICLR 2018), and the smallest d that solves the task is its
intrinsic dimension.

The public API (everything else is private by convention):

- `Subspace`: wrap any `torch.nn.Module` (theta = theta0 + P z, only z trains);
  `Subspace.from_spec(network, kwargs, ...)` builds it from a network name or an
  import path `"pkg.module:builder"`, so `save`/`load` rebuild it compactly.
- `make_projection`: the dense, sparse and Fastfood projections P.
- `train(config, d, seed)`: one trial (ES, CMA-ES, PPO, A2C, DQN, supervised Adam)
  from a bundled config's name, a YAML path or a dict -> `TrialRecord`;
  `evaluate_policy_file(path, episodes)`: replay its policy file (`rlsub eval`).
- `run_sweep`, `load_experiment`: the sweep of a config into a results store.
- `sweep_function(f, d_grid, seeds, store)`: sweep a user's own `f(d, seed) -> score`.
- `estimate_group`, `estimate_all`: d_int90 / d_int100 with intervals from records;
  `Store`: the SQLite results store.
- `Trainer`, `TrainResult`: the trainer protocol, to plug in a training algorithm;
  `NETWORKS`, `TRAINERS`, `DATASETS`, `ENV_SPECS`: the plug-in registries.

Names are imported on first use, so `import rlsub` stays light.

Importing rlsub before torch and numpy pins their CPU dispatch to AVX2 on x86-64 CPUs
with AVX2 and FMA (`pin_cpu_dispatch`), so that trials give the same bits on AVX2 and
AVX-512 machines (issue 31).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Chosen per CPU unless pinned, and each changed results on an AVX-512 machine: torch's
# kernels and MKL's code branch (digits trials), numpy's SIMD loops and OpenBLAS's kernels
# (InvertedPendulum CMA-ES: pycma). Pinned to AVX2 (x86-64-v3): numpy's loops above it
# (numpy >= 2.4's names) are disabled. Each is read once, when its module loads.
CPU_DISPATCH = (  # (variable, value, the module that reads it)
    ("ATEN_CPU_CAPABILITY", "avx2", "torch"),
    ("MKL_CBWR", "AVX2", "torch"),
    ("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR", "numpy"),
    ("OPENBLAS_CORETYPE", "Haswell", "numpy"),
)


def _has_avx2_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return {"avx2", "fma"} <= set(line.split())
    except OSError:
        pass
    return False


def pin_cpu_dispatch() -> bool:
    """Set the `CPU_DISPATCH` variables (keeping values already set) on a CPU with AVX2 and
    FMA (Linux); True when every one is in place before its module loads. A variable whose
    module is already imported is left alone: it would change nothing."""
    if not _has_avx2_fma():
        return False
    for key, value, module in CPU_DISPATCH:
        if module not in sys.modules:
            os.environ.setdefault(key, value)
    return all(os.environ.get(key) == value for key, value, _ in CPU_DISPATCH)


pin_cpu_dispatch()  # before anything imports torch or numpy

# numba's on-disk cache checks only the file that defines a kernel, so a kernel that
# inlines functions of another file (rollout.fused uses rollout.lanes) kept stale
# machine code after that file changed. One cache folder per version of the compiled
# sources makes any change recompile everything (issue 31).
_KERNEL_SOURCES = (
    "rollout/lanes.py",
    "rollout/fused.py",
    "rollout/classic.py",
    "rollout/classic_fused.py",
    "core/sparse_ell.py",
    "core/fastfood_kernels.py",
    "algos/dqn_kernels.py",
    "nets/frames.py",
)


def numba_cache_dir() -> str | None:
    """Point NUMBA_CACHE_DIR (unless already set) at a folder named for the hash of the
    kernels' sources, under $XDG_CACHE_HOME/rlsub (~/.cache/rlsub); None if none is
    writable (numba then caches beside the sources, as before)."""
    import hashlib

    if "numba" in sys.modules or os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ.get("NUMBA_CACHE_DIR")
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for rel in _KERNEL_SOURCES:
        try:
            with open(os.path.join(here, rel), "rb") as f:
                digest.update(f.read())
        except OSError:
            return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "rlsub", "numba-" + digest.hexdigest()[:16])
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None
    os.environ["NUMBA_CACHE_DIR"] = path
    return path


numba_cache_dir()

from rlsub.core.version import __version__  # noqa: E402

_EXPORTS = {
    "Subspace": "rlsub.core.subspace",
    "make_projection": "rlsub.core.projections",
    "ExperimentConfig": "rlsub.core.config",
    "load_experiment": "rlsub.core.config",
    "experiment_from_dict": "rlsub.core.config",
    "NETWORKS": "rlsub.core.registry",
    "TRAINERS": "rlsub.core.registry",
    "DATASETS": "rlsub.core.registry",
    "ENV_SPECS": "rlsub.core.registry",
    "build_network": "rlsub.core.registry",
    "RlsubError": "rlsub.core.errors",
    "Trainer": "rlsub.algos.base",
    "TrainResult": "rlsub.algos.base",
    "train": "rlsub.experiment.trial",
    "evaluate_policy_file": "rlsub.algos.evaluate",
    "run_trial": "rlsub.experiment.trial",
    "TrialRecord": "rlsub.experiment.record",
    "Store": "rlsub.experiment.store",
    "estimate_group": "rlsub.analysis.estimate",
    "estimate_all": "rlsub.analysis.estimate",
    "run_sweep": "rlsub.sweep.strategy",
    "sweep_function": "rlsub.sweep.function",
}
__all__ = ["__version__", "pin_cpu_dispatch", "numba_cache_dir", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rlsub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
