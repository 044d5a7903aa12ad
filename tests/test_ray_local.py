"""No Ray process outlives a sweep that started its own local Ray (rlsub.core.ray_local),
whether the sweep ends or is killed with SIGKILL mid-trial. The Ray of each sweep is found
by the session of the processes that name its folder (RAY_TMPDIR, a fresh one per test),
never by process names: other Ray runs on the machine are left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray_procs
import yaml

ROOT = Path(__file__).resolve().parents[1]
GONE_S = 10.0  # "within a few seconds"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)"),
]


def _config(path: Path, generations: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "ray_local",
                "env": "cartpole",
                "algorithm": "es",
                "network": {"name": "mlp", "kwargs": {"hidden": [4], "activation": "tanh"}},
                "subspace": {"projection": "sparse"},
                "train": {
                    "generations": generations,
                    "population": 8,
                    "eval_every": 5,
                    "stop_when_solved": False,
                },
                "sweep": {"d_grid": [1, 2], "seeds": [0], "baseline": False},
            }
        )
    )
    return path


def _sweep(cfg: Path, store: Path, ray_dir: Path, err: Path) -> subprocess.Popen:
    """`rlsub sweep CFG --backend ray` (no --address: the sweep starts its own Ray), in a
    session of its own, with Ray's files under `ray_dir`."""
    env = {**os.environ, "RAY_TMPDIR": str(ray_dir), "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    argv = ["sweep", str(cfg), "--store", str(store), "--backend", "ray", "--workers", "2"]
    with open(err, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "rlsub.cli", *argv, "--json"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=fh, start_new_session=True,
        )  # fmt: skip


@pytest.fixture
def ray_dir():
    pytest.importorskip(
        "ray", reason="ray is not installed (optional extra: pip install 'rlsub[ray]')"
    )
    root = ray_procs.short_dir()
    seen: set[int] = set()
    try:
        yield root, seen
    finally:
        ray_procs.kill_sessions(seen | ray_procs.sessions_of_files_under(root))
        ray_procs.remove(root)


def test_no_ray_process_outlives_a_sweep_that_ends(tmp_path: Path, ray_dir) -> None:
    root, seen = ray_dir
    proc = _sweep(_config(tmp_path / "c.yaml", 20), tmp_path / "s.sqlite", root, tmp_path / "e")
    seen.add(proc.pid)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= ray_procs.sessions_of_files_under(root)
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert proc.returncode == 0, (tmp_path / "e").read_text()[-3000:]
    assert json.loads(out)["trials"]["run"] == 2
    assert len(seen) > 1, "no process named Ray's folder: is RAY_TMPDIR honoured?"
    left, waited = ray_procs.wait_gone(seen, GONE_S)
    print(f"Ray's processes gone {waited:.1f} s after the sweep ended")
    assert not left, f"left after {GONE_S} s: {ray_procs.describe(left)}"


def test_no_ray_process_outlives_a_sweep_killed_mid_trial(tmp_path: Path, ray_dir) -> None:
    root, seen = ray_dir
    cfg = _config(tmp_path / "c.yaml", 5000)  # trials far longer than the test
    proc = _sweep(cfg, tmp_path / "s.sqlite", root, tmp_path / "e")
    seen.add(proc.pid)
    deadline = time.monotonic() + 240
    running: list[int] = []
    while not running:
        assert proc.poll() is None, (tmp_path / "e").read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial started within 240 s"
        time.sleep(0.2)
        seen |= ray_procs.sessions_of_files_under(root)
        running = [
            p for p in ray_procs.in_sessions(seen) if ray_procs.cmdline(p).startswith("ray::work")
        ]
    seen |= ray_procs.sessions_of_files_under(root)
    before = ray_procs.in_sessions(seen)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left, waited = ray_procs.wait_gone(seen, GONE_S)
    print(f"{len(before)} processes (a trial running); gone {waited:.1f} s after the SIGKILL")
    assert not left, f"left after {GONE_S} s: {ray_procs.describe(left)}"


def test_no_ray_process_outlives_an_es_trial_on_ray_killed_mid_trial(
    tmp_path: Path, ray_dir
) -> None:
    """`rlsub train` with train.backend: ray and no ray_address starts its Ray through the
    same guard (rlsub.algos.es_ray): SIGKILLed while its actors play, it leaves nothing."""
    root, seen = ray_dir
    cfg = _config(tmp_path / "c.yaml", 100000)
    data = yaml.safe_load(cfg.read_text())
    data["train"].update({"backend": "ray", "workers": 2, "obs_norm": False})
    cfg.write_text(yaml.safe_dump(data))
    env = {**os.environ, "RAY_TMPDIR": str(root), "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    argv = ["train", str(cfg), "--d", "2", "--out", str(tmp_path / "out"), "--quiet"]
    with open(tmp_path / "e", "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlsub.cli", *argv],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True,
        )  # fmt: skip
    seen.add(proc.pid)
    deadline = time.monotonic() + 240
    actors: list[int] = []
    while not actors:
        assert proc.poll() is None, (tmp_path / "e").read_text()[-3000:]
        assert time.monotonic() < deadline, "no actor started within 240 s"
        time.sleep(0.2)
        seen |= ray_procs.sessions_of_files_under(root)
        actors = [p for p in ray_procs.in_sessions(seen) if "ESShard" in ray_procs.cmdline(p)]
    seen |= ray_procs.sessions_of_files_under(root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left, waited = ray_procs.wait_gone(seen, GONE_S)
    print(f"gone {waited:.1f} s after the SIGKILL of the trial")
    assert not left, f"left after {GONE_S} s: {ray_procs.describe(left)}"
