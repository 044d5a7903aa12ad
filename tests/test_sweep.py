"""Sweep controller with the fake trainer: grid, adaptive, failures, resume, pool, kill -9."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import fake_trainer
import pytest
import yaml

import rlsub.algos.es
import rlsub.experiment.trial
from rlsub.analysis.estimate import estimate_group
from rlsub.benches.sweep import compare, grid_steps_apart
from rlsub.cli.commands import format_summary
from rlsub.cli.main import main
from rlsub.core.config import ExperimentConfig, experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.experiment.queue import Claimant
from rlsub.experiment.store import Store, trial_key
from rlsub.sweep.adaptive import coarse_seeds
from rlsub.sweep.strategy import run_sweep
from rlsub.sweep.validate import validate

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_trainer.register(monkeypatch)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)
    monkeypatch.setenv("RLSUB_FAKE_FAST_VERSIONS", "1")  # for spawned workers


def make_cfg(**train: Any) -> ExperimentConfig:
    return experiment_from_dict(fake_trainer.config(**train))


def d_ints(summary: dict[str, Any]) -> tuple[Any, Any]:
    est = summary["estimate"]
    return tuple((est[k] or {}).get("d_int") for k in ("d_int90", "d_int100"))  # type: ignore[return-value]


def scores(path: Path) -> dict[tuple[int, bool, int], float]:
    with Store(path, readonly=True) as st:
        return {(r.d, r.direct, r.seed): r.final_eval_mean for r in st.records()}


def test_grid_then_rerun_skips_everything(fake: None, tmp_path: Path) -> None:
    cfg = make_cfg()
    first = run_sweep(cfg, tmp_path / "s.sqlite")
    assert first["trials"] == {
        "requested": 30,
        "run": 30,
        "skipped": 0,
        "failed": 0,
        "elsewhere": 0,
        "in_store": 30,
        "held_elsewhere": 0,
        "abandoned": 0,
    }
    assert d_ints(first) == (32, None)
    again = run_sweep(cfg, tmp_path / "s.sqlite")
    assert again["trials"]["run"] == 0 and again["trials"]["skipped"] == 30
    assert again["estimate"]["d_int90"] == first["estimate"]["d_int90"]


@pytest.mark.parametrize("crossing", [1.5, 5.0, 8.0, 40.0])
@pytest.mark.parametrize("solved", [None, 95.0])
def test_adaptive_within_one_grid_step_with_few_trials(
    fake: None, tmp_path: Path, crossing: float, solved: float | None
) -> None:
    # precision 2 (one step of this grid): refining further is the next test's subject
    cfg = make_cfg(crossing=crossing, noise=3.0, solved_score=solved, sweep={"precision": 2.0})
    grid = run_sweep(cfg, tmp_path / "g.sqlite", mode="grid")
    adaptive = run_sweep(cfg, tmp_path / "a.sqlite", mode="adaptive")
    for a, g in zip(d_ints(adaptive), d_ints(grid), strict=True):
        assert grid_steps_apart(cfg.sweep.d_grid, a, g) <= 1, (a, g)
    # one target: <= 40 % of the grid's trials; two targets (d_int90, d_int100): <= 50 %
    assert adaptive["trials"]["run"] <= (0.4 if solved is None else 0.5) * grid["trials"]["run"]
    same = scores(tmp_path / "g.sqlite")
    mine = scores(tmp_path / "a.sqlite")  # refinement may add d off the grid
    assert all(same[k] == v for k, v in mine.items() if k in same) and set(mine) & set(same)


def test_adaptive_all_fail_and_all_pass(fake: None, tmp_path: Path) -> None:
    low = run_sweep(make_cfg(crossing=5000.0), tmp_path / "low.sqlite", mode="adaptive")
    assert d_ints(low)[0] is None and "> 256" in low["estimate"]["d_int90"]["note"]
    high = run_sweep(make_cfg(crossing=0.01), tmp_path / "high.sqlite", mode="adaptive")
    assert d_ints(high)[0] == 1
    assert coarse_seeds(3) == 1 and coarse_seeds(5) == 2


def test_failures_are_recorded_and_the_sweep_goes_on(fake: None, tmp_path: Path) -> None:
    cfg = make_cfg(fail_d=[4], nan_d=[8], hang_d=[16], sweep={"trial_timeout_s": 0.3})
    t0 = time.perf_counter()
    out = run_sweep(cfg, tmp_path / "s.sqlite")
    assert time.perf_counter() - t0 < 10  # the 60 s hangs were cut at 0.3 s
    assert out["trials"]["run"] == 30 and out["trials"]["failed"] == 9
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        reasons = {(r.d, r.seed): r.reason for r in st.records() if r.status == "failed"}
    assert reasons[(4, 0)] == "RuntimeError: boom at d=4"
    assert reasons[(8, 1)].startswith("diverged")
    assert reasons[(16, 2)].startswith("timeout: exceeded trial_timeout_s=0.3")
    assert out["estimate"]["failed"] == 9
    assert out["estimate"]["d_int90"]["d_int"] == 32  # failed d are left out of the curve


def test_resume_after_a_crash_mid_trial(fake: None, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    cfg = make_cfg(interrupt_d=[8], log_file=str(log))
    path = tmp_path / "s.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, path)
    with Store(path, readonly=True) as st:
        statuses = st.statuses()
        assert [k for k, v in statuses.items() if v == "running"] == [(cfg.hash, 8, False, 0)]
        assert all(r.status == "done" for r in st.records())
    out = run_sweep(cfg, path)
    assert out["trials"]["skipped"] == 3 + 3 * 3 and out["trials"]["run"] == 30 - 12
    with Store(path, readonly=True) as st:
        attempts = {(r["d"], r["seed"]): r["attempts"] for r in st.rows()}
    assert attempts.pop((8, 0)) == 2 and set(attempts.values()) == {1}
    runs = collections.Counter(tuple(line.split()[:2]) for line in log.read_text().splitlines())
    assert runs.pop(("8", "0")) == 2 and set(runs.values()) == {1}
    assert d_ints(out) == d_ints(run_sweep(make_cfg(), tmp_path / "ref.sqlite"))


def test_process_pool_gives_the_same_records(fake: None, tmp_path: Path) -> None:
    sweep = {"d_grid": [2, 8, 32], "seeds": [0, 1]}
    cfg = make_cfg(hang_d=[2], sweep={**sweep, "trial_timeout_s": 1.0})
    pooled = run_sweep(cfg, tmp_path / "p.sqlite", workers=2)
    assert pooled["trials"]["run"] == 8 and pooled["trials"]["failed"] == 2
    run_sweep(cfg, tmp_path / "i.sqlite", workers=1)
    assert scores(tmp_path / "p.sqlite").keys() == scores(tmp_path / "i.sqlite").keys()
    with Store(tmp_path / "p.sqlite", readonly=True) as st:
        recs = st.records()
    assert {r.reason for r in recs if r.d == 2} == {"timeout: exceeded trial_timeout_s=1"}
    assert len({r.info.get("pid", 0) for r in recs}) == 1  # workers send plain records
    p, i = scores(tmp_path / "p.sqlite"), scores(tmp_path / "i.sqlite")
    assert all(p[k] == i[k] for k in p if p[k] == p[k])


@pytest.mark.slow
def test_ray_backend_on_a_tiny_sweep(
    fake: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason="ray (optional extra rlsub[ray]) is not installed")
    # Ray's worker processes import the fake trainer from tests/ too
    tests_dir = str(Path(__file__).resolve().parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    )
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        cfg = make_cfg(sweep={"d_grid": [2, 8, 32], "seeds": [0, 1]})
        out = run_sweep(cfg, tmp_path / "r.sqlite", backend="ray", workers=2)
        ref = run_sweep(cfg, tmp_path / "i.sqlite")
    finally:
        ray.shutdown()
    assert out["trials"]["run"] == 8 and scores(tmp_path / "r.sqlite") == scores(
        tmp_path / "i.sqlite"
    )
    assert d_ints(out) == d_ints(ref)


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is not None,
    reason="checks the one-line error for a missing ray, and ray is installed here",
)
def test_ray_missing_is_one_clear_error(fake: None, tmp_path: Path) -> None:
    with pytest.raises(RlsubError, match=r"rlsub\[ray\]"):
        run_sweep(make_cfg(), tmp_path / "r.sqlite", backend="ray")
    assert not (tmp_path / "r.sqlite").exists()


def test_cli_bad_workers_is_one_line(fake: None, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(fake_trainer.config()))
    assert main(["sweep", str(path), "--workers", "0", "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--workers must be >= 1" in err
    assert not (tmp_path / "s").exists()


DRIVER = """\
import os, sys
sys.path.insert(0, {tests!r})
os.environ["RLSUB_FAKE_FAST_VERSIONS"] = "1"
import fake_trainer
fake_trainer.register()
if __name__ == "__main__":
    from rlsub.cli import main
    raise SystemExit(main(sys.argv[1:]))
"""


def _done_rows(path: Path) -> int:
    try:
        with Store(path, readonly=True) as st:
            return sum(1 for r in st.rows() if r["status"] == "done")
    except RlsubError:  # not created yet
        return 0


@pytest.mark.slow
def test_kill_9_then_same_command_resumes(fake: None, tmp_path: Path) -> None:
    """A real `rlsub sweep` process killed with SIGKILL mid-sweep, then run again."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    log = tmp_path / "runs.log"
    config = fake_trainer.config(
        sleep_s=0.15, log_file=str(log), sweep={"d_grid": [1, 2, 4, 8, 16, 32, 64], "seeds": [0, 1]}
    )
    cfg_path = tmp_path / "fake.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, str(driver), "sweep", str(cfg_path), "--store", str(store), "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while _done_rows(store) < 6 and time.time() < deadline:  # reading while it writes
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    with Store(store, readonly=True) as st:
        before = {(r["d"], r["direct"], r["seed"]): r for r in st.rows()}
    done_before = {k for k, r in before.items() if r["status"] == "done"}
    running = {k for k, r in before.items() if r["status"] == "running"}
    assert 6 <= len(done_before) < 16 and len(running) <= 1

    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["store"] == str(store) and out["trials"]["skipped"] == len(done_before)
    assert out["trials"]["run"] == 16 - len(done_before) and out["trials"]["failed"] == 0
    with Store(store, readonly=True) as st:
        after = {(r["d"], r["direct"], r["seed"]): r for r in st.rows()}
    assert len(after) == 16 and all(r["status"] == "done" for r in after.values())
    for k in done_before:  # untouched: not run twice
        assert after[k]["attempts"] == 1 and after[k]["finished_at"] == before[k]["finished_at"]
    for k in running:
        assert after[k]["attempts"] == 2
    starts = collections.Counter(tuple(ln.split()[:2]) for ln in log.read_text().splitlines())
    for (d, direct, seed), r in after.items():
        assert starts[("direct" if direct else str(d), str(seed))] <= r["attempts"]
    ref = run_sweep(make_cfg(sweep=config["sweep"]), tmp_path / "ref.sqlite")
    assert out["estimate"]["d_int90"]["d_int"] == ref["estimate"]["d_int90"]["d_int"] == 32
    with Store(store, readonly=True) as st:
        again = estimate_group(st.records())["d_int90"]
    assert out["estimate"]["d_int90"] == json.loads(json.dumps(again))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie is gone for our purpose
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the watchdog is POSIX")
def test_pool_workers_end_when_the_sweep_process_is_killed(fake: None, tmp_path: Path) -> None:
    """SIGKILL the sweep mid-trial: its pool workers must not go on running trials."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    log = tmp_path / "runs.log"
    config = fake_trainer.config(
        sleep_s=30.0, log_file=str(log), sweep={"d_grid": [1, 2], "seeds": [0]}
    )
    cfg_path = tmp_path / "fake.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, str(driver), "sweep", str(cfg_path), "--store",
           str(tmp_path / "s.sqlite"), "--workers", "2", "--mode", "grid"]  # fmt: skip
    # no pipes: orphaned workers would hold them open and hang communicate()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    pids: set[int] = set()
    while len(pids) < 2 and time.time() < deadline:  # both workers are inside a trial
        time.sleep(0.1)
        if log.exists():
            pids = {int(ln.split()[2]) for ln in log.read_text().splitlines()}
    assert len(pids) == 2 and proc.pid not in pids
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for p in left:  # do not leave them behind when the check fails
        os.kill(p, signal.SIGKILL)
    assert not left  # well before their 30 s trials would end


def test_bench_sweep_logic_with_the_fake_trainer(fake: None, tmp_path: Path) -> None:
    cfg = make_cfg(crossing=6.0, noise=3.0, solved_score=95.0, sweep={"precision": 2.0})
    r = compare(cfg, tmp_path)
    assert r["grid"]["trials"] == 30 and r["adaptive"]["trials"] < r["grid"]["trials"]
    # the adaptive sweep may add a d to close an open interval (d_int100 near the top)
    assert r["within_one_step"] and r["informative"] and r["trial_ratio"] <= 0.5
    assert r["meets_target"] == (r["trial_ratio"] <= 0.4)
    assert set(r["grid"]["curve"]) == set(cfg.sweep.d_grid)
    assert r["trial_ratio"] == r["adaptive"]["trials"] / 30
    assert grid_steps_apart([1, 2, 4, 8], 2, 8) == 2 and grid_steps_apart([1, 2], None, 2) == 1
    with pytest.raises(RlsubError, match="fresh stores"):
        compare(cfg, tmp_path)
    never = compare(make_cfg(crossing=1e6, sweep={"d_grid": [1, 4], "seeds": [0]}), tmp_path / "n")
    assert never["informative"] is False and never["meets_target"] is None


# ------------------------------------------------------- the store as a shared work queue
def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("mode", ["grid", "adaptive"])
def test_two_sweeps_at_once_split_the_work(fake: None, tmp_path: Path, mode: str) -> None:
    """Two sweeps (threads here; processes below) on one new store: every trial runs once."""
    log = tmp_path / "runs.log"
    sweep = {"d_grid": [1, 2, 4, 8, 16, 32], "seeds": [0, 1, 2]}
    cfg = make_cfg(sleep_s=0.1, log_file=str(log), sweep=sweep)
    path = tmp_path / "s.sqlite"
    outs: list[Any] = [None, None]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def go(i: int) -> None:
        try:
            start.wait()
            outs[i] = run_sweep(cfg, path, mode=mode)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with Store(path, readonly=True) as st:
        rows = st.rows()
    starts = collections.Counter(tuple(ln.split()[:2]) for ln in log.read_text().splitlines())
    ref = run_sweep(make_cfg(sweep=sweep), tmp_path / "r.sqlite", mode=mode)
    assert len(rows) == sum(o["trials"]["run"] for o in outs) == ref["trials"]["run"]
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    assert len(starts) == len(rows) and set(starts.values()) == {1}
    assert all(o["trials"]["run"] > 0 for o in outs)  # both did some of the work
    for o in outs:
        t = o["trials"]
        assert t["run"] + t["elsewhere"] + t["skipped"] == t["requested"]  # skipped: a late start
        assert t["held_elsewhere"] == 0
        assert _same(o["estimate"]["d_int90"], outs[0]["estimate"]["d_int90"])
        assert _same(o["estimate"]["d_int100"], outs[0]["estimate"]["d_int100"])
        assert _same(o["estimate"]["d_int90"], ref["estimate"]["d_int90"])  # as one sweep alone


def _es_config(**over: Any) -> dict[str, Any]:
    """A small ES config on CartPole (D = 562 with the 4-20-20-2 network)."""
    return {
        "name": "es_small",
        "env": "cartpole",
        "algorithm": "es",
        "network": {"name": "mlp", "kwargs": {"hidden": [20, 20], "activation": "tanh"}},
        "train": {"generations": 1, "population": 4},
        "sweep": {"d_grid": [1, 2], "seeds": [0], "baseline": True},
        **over,
    }


def _bad_input(tmp_path: Path, case: str) -> tuple[dict[str, Any], list[str], str]:
    """(config, extra CLI args, the error it gives) for one bad input."""
    if case == "env":
        return _es_config(env="no_such_env"), [], "unknown env 'no_such_env'"
    if case == "gym_id":
        spec = tmp_path / "bogus.yaml"
        spec.write_text("name: bogus\nid: NoSuchEnv-v9\n")
        return _es_config(env=str(spec)), [], "NoSuchEnv"
    if case == "mnist":
        data = tmp_path / "data"
        data.mkdir()
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # fmt: skip
            (data / name).write_bytes(b"not mnist")
        cfg = {
            "name": "mnist_bad",
            "algorithm": "adam",
            "dataset": {"name": "mnist", "data_dir": str(data)},
            "network": {"name": "mlp", "kwargs": {"hidden": [8]}},
            "sweep": {"d_grid": [1, 2], "seeds": [0]},
        }
        return cfg, [], "does not match the expected"
    if case == "workers":
        return _es_config(), ["--workers", "0"], "--workers must be >= 1"
    assert case == "d_grid"  # D = 4*4+4 + 4*2+2 = 30
    net = {"name": "mlp", "kwargs": {"hidden": [4]}}
    cfg = _es_config(network=net, sweep={"d_grid": [8, 64, 32], "seeds": [0]})
    return cfg, [], "sweep.d_grid: d = 32, 64 too large for a sparse projection"


@pytest.mark.parametrize("case", ["env", "gym_id", "mnist", "workers", "d_grid"])
def test_bad_input_is_one_line_and_creates_nothing(tmp_path: Path, capsys: Any, case: str) -> None:
    config, extra, message = _bad_input(tmp_path, case)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    store = tmp_path / "out" / "s.sqlite"
    assert main(["sweep", str(path), "--store", str(store), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlsub: error: ") and err.count("\n") == 1, err  # no bar either
    assert message in err
    assert not (tmp_path / "out").exists()
    if case == "d_grid":
        assert err.startswith(f"rlsub: error: {path}: sweep.d_grid: ")
        assert "(D = 30); the largest allowed d is 30" in err


def test_d_grid_limits_follow_the_projection() -> None:
    cfg = experiment_from_dict(_es_config(sweep={"d_grid": [600], "seeds": [0]}))
    with pytest.raises(RlsubError, match="largest allowed d is 562"):
        validate(cfg, "grid", "local", 1)

    def dense(limit_gib: float, d_grid: list[int]) -> ExperimentConfig:
        sub = {"projection": "dense", "dense_limit_gib": limit_gib}
        return experiment_from_dict(_es_config(subspace=sub, sweep={"d_grid": d_grid}))

    with pytest.raises(RlsubError, match=r"d = 128 too large .* the largest allowed d is 100$"):
        validate(dense(2.1e-4, [64, 128]), "grid", "local", 1)  # 100 x 562 x 4 bytes fit
    assert validate(dense(2.1e-4, [64, 100]), "grid", "local", 1) == 562
    with pytest.raises(RlsubError, match="does not fit in subspace.dense_limit_gib = 1e-06"):
        validate(dense(1e-6, [1]), "grid", "local", 1)
    fast = experiment_from_dict(
        _es_config(subspace={"projection": "fastfood"}, sweep={"d_grid": [5000], "seeds": [0]})
    )
    assert validate(fast, "grid", "local", 1) == 562  # fastfood stacks blocks past D


def test_failed_trials_keep_D_d_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("env exploded")

    monkeypatch.setattr(rlsub.algos.es_loop, "build_setup", broken)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)
    cfg = experiment_from_dict(_es_config())
    path = tmp_path / "s.sqlite"
    out = run_sweep(cfg, path)
    assert out["trials"]["failed"] == 3
    with Store(path, readonly=True) as st:
        recs = {("direct" if r.direct else r.d, r.seed): r for r in st.records()}
    assert {(r.D, r.d) for r in recs.values()} == {(562, 562), (562, 1), (562, 2)}
    assert recs[("direct", 0)].direct and recs[(1, 0)].reason == "RuntimeError: env exploded"
    assert all(r.config == cfg.to_dict() for r in recs.values())
    # two trials left 'running': one by a live sweep (pid 1), one by a dead one
    with Store(path) as st:
        st.claim([trial_key(cfg.hash, 4, 0)], Claimant(socket.gethostname(), 1, "alive"))
        st.claim([trial_key(cfg.hash, 8, 0)], Claimant(socket.gethostname(), 0, "gone"))  # no pid 0
    capsys.readouterr()
    assert main(["dint", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (res["running"], res["abandoned"]) == (1, 1) and res["groups"][0]["D"] == 562
    assert (res["groups"][0]["running"], res["groups"][0]["abandoned"]) == (1, 1)
    assert main(["dint", str(path)]) == 0
    text = capsys.readouterr().out
    assert "D=562" in text and "1 trial(s) still running" in text
    assert "1 trial(s) abandoned" in text


@pytest.mark.slow
def test_two_sweep_processes_one_killed_mid_trial(fake: None, tmp_path: Path) -> None:
    """Two `rlsub sweep` processes on one new store; one is killed (SIGKILL) inside a
    trial: the other takes the killed trial over, and nothing runs twice otherwise."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    log = tmp_path / "runs.log"
    sweep = {"d_grid": [1, 2, 4, 8, 16, 32, 64], "seeds": [0, 1]}
    config = fake_trainer.config(sleep_s=0.6, log_file=str(log), sweep=sweep)
    cfg_path = tmp_path / "fake.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, str(driver), "sweep", str(cfg_path), "--store", str(store), "--json"]
    a = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = None
    deadline = time.time() + 60
    while killed is None and time.time() < deadline:
        time.sleep(0.02)
        try:
            with Store(store, readonly=True) as st:
                rows = st.rows()
        except RlsubError:  # not created yet
            continue
        done = sum(r["status"] == "done" for r in rows)
        lines = log.read_text().splitlines() if log.exists() else []
        inside = {tuple(w[:2]) for w in map(str.split, lines) if w[2:] == [str(a.pid)]}
        for r in rows:  # a's trial, its trainer started (logged) just now: well inside it
            fresh = r["started_at"] is not None and time.time() - r["started_at"] < 0.3
            logged = ("direct" if r["direct"] else str(r["d"]), str(r["seed"])) in inside
            if r["status"] == "running" and r["pid"] == a.pid and fresh and logged and done >= 2:
                os.kill(a.pid, signal.SIGKILL)
                killed = (r["d"], r["direct"], r["seed"])
                break
    a.wait()
    out_b, err_b = b.communicate(timeout=90)
    assert killed is not None and b.returncode == 0, err_b
    out = json.loads(out_b)
    with Store(store, readonly=True) as st:
        after = {(r["d"], r["direct"], r["seed"]): r for r in st.rows()}
    assert len(after) == 16 and all(r["status"] == "done" for r in after.values())
    assert after[killed]["attempts"] == 2 and after[killed]["pid"] == b.pid
    assert all(r["attempts"] == 1 for k, r in after.items() if k != killed)
    starts = collections.Counter(tuple(ln.split()[:2]) for ln in log.read_text().splitlines())
    for (d, direct, seed), r in after.items():
        assert starts[("direct" if direct else str(d), str(seed))] == r["attempts"]
    t = out["trials"]
    assert t["run"] + t["elsewhere"] + t["skipped"] == 16 and t["in_store"] == 16
    assert t["held_elsewhere"] == 0 and t["abandoned"] == 0
    ref = run_sweep(make_cfg(sweep=sweep), tmp_path / "ref.sqlite")
    assert _same(out["estimate"]["d_int90"], ref["estimate"]["d_int90"])


@pytest.mark.slow
def test_pool_sweep_ends_without_leaked_semaphores(fake: None, tmp_path: Path) -> None:
    """Workers holding a multiprocessing lock (as tqdm's does) exit on their own at the end."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    config = fake_trainer.config(mp_lock=True, sweep={"d_grid": [1, 2], "seeds": [0, 1]})
    cfg_path = tmp_path / "fake.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, str(driver), "sweep", str(cfg_path), "--store",
           str(tmp_path / "s.sqlite"), "--workers", "2", "--json"]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["trials"]["run"] == 6
    assert "leaked" not in res.stderr, res.stderr


def test_adaptive_refines_to_the_stated_precision(fake: None, tmp_path: Path) -> None:
    """Between grid points 4 apart the refinement adds d until the interpolated interval's
    hi/lo is <= sweep.precision, or says that the trial budget stopped it."""
    cfg = make_cfg(crossing=10.0, noise=1.0, sweep={"d_grid": [1, 4, 16, 64], "precision": 1.3})
    out = run_sweep(cfg, tmp_path / "p.sqlite", mode="adaptive")
    assert out["refinement"]["d_int90"].startswith("precision reached")
    lo, hi = out["estimate"]["d_int90"]["interpolated_interval"]
    assert hi / lo <= 1.3 and lo <= 30 <= hi  # the fake task crosses 90 % at d = 30
    added = {p["d"] for p in out["estimate"]["curve"]} - {1, 4, 16, 64}
    assert added, "no d was added between the grid points"
    tight = make_cfg(
        crossing=10.0,
        noise=1.0,
        sweep={"d_grid": [1, 4, 16, 64], "precision": 1.01, "max_trials": 3},
    )
    out = run_sweep(tight, tmp_path / "b.sqlite", mode="adaptive")
    assert out["refinement"]["d_int90"].startswith("trial budget of 3 spent")
    # the printed summary says why the sweep ran no more (a rerun that runs 0 trials too)
    assert "adaptive refinement of d_int90 stopped: trial budget of 3 spent" in (
        format_summary(out)
    )


def test_a_gymnasium_id_without_a_spec_gets_a_measured_random_score(tmp_path: Path) -> None:
    """A config naming only `Acrobot-v1` (no random score anywhere): the sweep measures
    one before its trials, keeps it in the store, and d_int90's line is built on it."""
    from rlsub.core.config import experiment_from_dict

    data = {
        "name": "acrobot_tiny",
        "env": "Acrobot-v1",
        "algorithm": "es",
        "network": {"name": "mlp", "kwargs": {"hidden": [8]}},
        "train": {"generations": 1, "population": 4, "episodes_per_member": 1},
        "sweep": {"d_grid": [2], "seeds": [0], "baseline": True},
    }
    out = run_sweep(experiment_from_dict(data), tmp_path / "a.sqlite")
    with Store(tmp_path / "a.sqlite", readonly=True) as store:
        floors = store.floors()
    (kept,) = floors.values()
    assert kept["episodes"] == 100 and -500.0 <= kept["mean"] < -100.0  # random Acrobot
    e = out["estimate"]
    assert e["floor"] == kept["mean"]
    assert e["d_int90"]["line"].startswith(f"random ({kept['mean']:.4g})")
    assert any("measured for this store" in n for n in e["notes"])


def test_refinement_never_steps_outside_the_grid(fake: None, tmp_path: Path) -> None:
    """The crossing near the top of the grid: refinement adds d only between swept d."""
    cfg = make_cfg(crossing=40.0, noise=6.0, sweep={"d_grid": [1, 4, 16, 64], "precision": 1.1})
    out = run_sweep(cfg, tmp_path / "r.sqlite", mode="adaptive")
    ds = {p["d"] for p in out["estimate"]["curve"]}
    assert min(ds) >= 1 and max(ds) <= 64, ds


@pytest.mark.parametrize("mode", ["grid", "adaptive"])
def test_progress_total_is_fixed_from_the_start(
    fake: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """The sweep's bar shows its total from the first draw and never raises it (adaptive:
    the most it can run, cut to what ran at the end)."""
    summary = run_sweep(make_cfg(), tmp_path / "p.sqlite", mode=mode, progress=True)
    totals = [int(t) for t in re.findall(r"\| *\d+/(\d+) \[", capsys.readouterr().err)]
    ran = summary["trials"]["run"]
    assert totals and totals[-1] == ran
    assert set(totals[:-1]) <= {totals[0]} and totals[0] >= ran
    if mode == "grid":
        assert set(totals) == {30}


def test_a_trials_thread_setting_ends_with_it(fake: None, tmp_path: Path) -> None:
    """A trainer that sets torch's threads (as ES and SB3 do) leaves the in-process sweep
    as it found it: the next trial, and the caller, start from the same setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_sweep(
            make_cfg(threads=1, sweep={"d_grid": [1, 2], "seeds": [0]}), tmp_path / "t.sqlite"
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
