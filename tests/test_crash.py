"""A worker that dies mid-trial (SIGKILL) loses nothing: its trial runs again in a fresh
worker, up to MAX_ATTEMPTS, and is recorded once with its attempts counted; a trial's own
error is not retried; the trial running beside it is not touched (pool and Ray). On a
real Ray cluster (three nodes on this machine), a whole worker node killed mid-trial
loses nothing either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fake_trainer
import pytest
import ray_procs
import yaml

import rlsub.experiment.trial
from rlsub.core.config import experiment_from_dict
from rlsub.experiment.store import Store
from rlsub.sweep.executors import MAX_ATTEMPTS
from rlsub.sweep.strategy import run_sweep

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_trainer.register(monkeypatch)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)
    monkeypatch.setenv("RLSUB_FAKE_FAST_VERSIONS", "1")  # for spawned workers
    monkeypatch.setenv(  # Ray's workers import the fake trainer from tests/ too
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    )


def _sweep(tmp_path: Path, backend: str = "local", **train: Any) -> tuple[dict, dict, list]:
    """d 1 (the one that crashes or fails) beside d 2, one seed, two workers, no baseline:
    the two trials start together. Returns (summary, rows by d, started (d, seed) list)."""
    log = tmp_path / "starts.log"
    log.touch()
    sweep = {"d_grid": [1, 2], "seeds": [0], "baseline": False}
    cfg = experiment_from_dict(
        fake_trainer.config(log_file=str(log), sleep_s=2.0, sweep=sweep, **train)
    )
    out = run_sweep(cfg, tmp_path / "s.sqlite", workers=2, backend=backend)
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        rows = {r["d"]: r for r in st.rows()}
    starts = [tuple(ln.split()[:2]) for ln in log.read_text().splitlines()]
    return out, rows, starts


def test_pool_worker_killed_mid_trial_runs_again_and_the_other_is_untouched(
    fake: None, tmp_path: Path
) -> None:
    out, rows, starts = _sweep(tmp_path, crash_d=[1])
    assert out["trials"]["run"] == 2 and out["trials"]["failed"] == 0
    assert rows[1]["status"] == "done" and rows[1]["attempts"] == 2
    assert rows[1]["info"]["worker_crashes"] == 1
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert starts.count(("2", "0")) == 1  # the trial beside the crash ran once, to its end
    assert starts.count(("1", "0")) == 2


def test_pool_worker_that_keeps_dying_is_recorded_failed_once(fake: None, tmp_path: Path) -> None:
    out, rows, starts = _sweep(tmp_path, crash_d=[1], crashes=99)
    assert rows[1]["status"] == "failed" and rows[1]["attempts"] == MAX_ATTEMPTS
    assert "worker process died (killed by SIGKILL)" in rows[1]["reason"]
    assert f"gave up after {MAX_ATTEMPTS} attempts" in rows[1]["reason"]
    assert starts.count(("1", "0")) == MAX_ATTEMPTS
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert len(rows) == 2 and out["trials"]["failed"] == 1


def test_a_trials_own_error_is_not_retried(fake: None, tmp_path: Path) -> None:
    _, rows, starts = _sweep(tmp_path, fail_d=[1])
    assert rows[1]["status"] == "failed" and rows[1]["attempts"] == 1
    assert rows[1]["reason"] == "RuntimeError: boom at d=1"
    assert starts.count(("1", "0")) == 1 and rows[2]["status"] == "done"


@pytest.mark.slow
def test_ray_worker_killed_mid_trial_runs_again(fake: None, tmp_path: Path, ray_local) -> None:
    out, rows, starts = _sweep(tmp_path, backend="ray", crash_d=[1])
    assert out["trials"]["failed"] == 0
    assert rows[1]["status"] == "done" and rows[1]["attempts"] == 2
    assert "worker_crashes" in rows[1]["info"]
    assert rows[2]["status"] == "done" and rows[2]["attempts"] == 1
    assert starts.count(("2", "0")) == 1


# ------------------------------------------------------------- a real Ray cluster
NODE_CONFIG = {  # CartPole ES, a few seconds a trial
    "name": "cluster",
    "env": "cartpole",
    "algorithm": "es",
    "network": {"name": "mlp", "kwargs": {"hidden": [4], "activation": "tanh"}},
    "subspace": {"projection": "sparse"},
    "train": {"generations": 300, "population": 8, "eval_every": 5, "stop_when_solved": False},
    "sweep": {"d_grid": [1, 2, 3, 4], "seeds": [0], "baseline": False},
}


@pytest.fixture
def cluster():
    """A Ray cluster on this machine: a head with no CPU (trials land on the workers) and
    two worker nodes of 1 CPU, each `ray start` in a session of its own, so that a node is
    exactly the processes of its session (tests/ray_procs.py). Yields (address, {name:
    session id}, env); ends its own sessions, and nothing else, afterwards."""
    pytest.importorskip(
        "ray", reason="ray is not installed (optional extra: pip install 'rlsub[ray]')"
    )
    root = ray_procs.short_dir()
    # Token authentication is turned on by `ray start --head` only when ~/.ray holds a
    # token, and never by a node or client given an address: one explicit mode for all.
    env = {**os.environ, "RAY_TMPDIR": str(root), "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(TESTS.parent)}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    small = ["--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    address = f"127.0.0.1:{ray_procs.free_port()}"
    nodes: dict[str, int] = {}
    try:
        nodes["head"] = ray_procs.start_node(
            ["--head", "--port", address.split(":")[1], "--node-ip-address", "127.0.0.1",
             "--num-cpus", "0", "--include-dashboard", "false", "--temp-dir", str(root), *small],
            env, root / "head.log",
        )  # fmt: skip
        for name in ("w1", "w2"):
            nodes[name] = ray_procs.start_node(
                ["--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1", *small],
                env, root / f"{name}.log",
            )  # fmt: skip
        yield address, nodes, env
    finally:
        ray_procs.kill_sessions(nodes.values())
        ray_procs.remove(root)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_ray_node_killed_mid_sweep_its_trial_runs_again_on_the_other(
    tmp_path: Path, cluster
) -> None:
    """`rlsub sweep --backend ray --address`: SIGKILL to every process of a worker node
    (raylet, agents, the worker running a trial) while a trial runs there; the sweep ends,
    every trial finished once, the lost one's attempts counted, and its result the same
    as a run of that trial in this process."""
    address, nodes, env = cluster
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(NODE_CONFIG))
    argv = ["sweep", str(tmp_path / "c.yaml"), "--store", str(tmp_path / "s.sqlite"),
            "--backend", "ray", "--address", address, "--workers", "2", "--json"]  # fmt: skip
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlsub.cli", *argv], env=env, stdout=subprocess.PIPE,
            stderr=err, start_new_session=True,
        )  # fmt: skip
    killed = None
    try:
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 300:
            time.sleep(0.1)
            for name in ("w1", "w2") if killed is None else ():
                busy = ray_procs.in_sessions([nodes[name]])
                if any(ray_procs.cmdline(p).startswith("ray::work") for p in busy):
                    ray_procs.kill_sessions([nodes[name]])
                    killed = name
                    break
        out, _ = proc.communicate(timeout=max(1.0, 300 - (time.monotonic() - t0)))
    finally:
        ray_procs.kill_sessions([proc.pid])
    print(f"node {killed} killed; sweep {time.monotonic() - t0:.1f} s")
    assert killed is not None, "no trial ran on a worker node"
    assert proc.returncode == 0, (tmp_path / "err").read_text()[-3000:]
    assert ray_procs.in_sessions([nodes[killed]]) == []
    assert out.strip().startswith(b"{"), out[:2000]  # --json: Ray's messages on stderr
    summary = json.loads(out)["trials"]
    assert summary["run"] == 4 and summary["failed"] == 0
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        rows = st.rows()
    assert sorted((r["d"], r["seed"]) for r in rows) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert all(r["status"] == "done" and r["finished_at"] for r in rows)
    for r in rows:
        assert r["attempts"] == 1 + r["info"].get("worker_crashes", 0) <= MAX_ATTEMPTS
    lost = [r for r in rows if r["attempts"] > 1]
    assert lost, "the trial of the killed node was not run again"
    cfg = experiment_from_dict(NODE_CONFIG)
    for r in lost:
        again = rlsub.experiment.trial.run_trial(cfg, r["d"], 0, progress=False)
        assert (r["final_eval_mean"], r["env_steps"], r["curve"]) == (
            again.final_eval_mean,
            again.env_steps,
            again.curve,
        )
