import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def run_cli(
    *args: str, check: bool = True, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m rlsub.cli ARGS` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "rlsub.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"rlsub {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def ray_local():
    """A local Ray of 2 CPUs for the test (skipped, with the reason shown, without ray)."""
    ray = pytest.importorskip(
        "ray", reason="ray is not installed (optional extra: pip install 'rlsub[ray]')"
    )
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        yield ray
    finally:
        ray.shutdown()
