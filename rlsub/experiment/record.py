"""The trial record: what one (config, d, seed) gave, with its resolved config, the git
revision and package versions.

Imports: core only.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrialRecord:
    config_hash: str
    name: str
    task: str
    algorithm: str
    network: str
    projection: str
    d: int  # subspace dimension; for the direct baseline d == D and direct is True
    direct: bool
    seed: int
    status: str  # "done" | "failed"
    reason: str = ""
    D: int = 0
    final_eval_mean: float = float("nan")
    final_eval_std: float = float("nan")
    best_eval_mean: float = float("nan")
    solved: bool | None = None
    solved_score: float | None = None
    env_steps: int = 0
    wall_s: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)
    policy_path: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git_rev: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def versions() -> dict[str, str]:
    """Installed package versions, read from metadata (no heavy imports), and the CPU
    dispatch of torch, MKL, numpy and OpenBLAS."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "rlsub",
        "torch",
        "numpy",
        "gymnasium",
        "stable_baselines3",
        "mujoco",
        "ale_py",
        "cma",
        "numba",
        "scikit_learn",
    ):
        try:
            out[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            continue
    # the CPU dispatch that results depend on (rlsub.pin_cpu_dispatch)
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_cpu"] = torch.backends.cpu.get_cpu_capability()
    for key in ("MKL_CBWR", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE"):
        out[key] = os.environ.get(key, "")
    return out


def git_revision() -> str | None:
    """The checkout's HEAD when this process first asked (the first record it makes), kept
    for the process: a long sweep's records name the code it loaded, not a later HEAD."""
    global _REVISION
    if _REVISION is None:
        _REVISION = (_read_revision(),)
    return _REVISION[0]


_REVISION: tuple[str | None] | None = None


def _read_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None
