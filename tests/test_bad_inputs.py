"""The bad-input corpus: every case ends with one line on stderr, exit 2, no traceback,
and no file written (not a store, not a policy, not a runs/ folder, not a -wal/-shm
beside a refused store). Cases run `rlsub.cli.main` in-process, in a fresh folder;
a few run the real command in a subprocess, and the read-only cases on a read-only
folder (a read-only bind mount when the tests run as root)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlsub.cli.main import main
from rlsub.core.trust import reset as reset_trust

BASE: dict[str, Any] = {
    "name": "bad",
    "env": "cartpole",
    "algorithm": "es",
    "network": {"name": "mlp", "kwargs": {"hidden": [4], "activation": "tanh"}},
    "subspace": {"projection": "sparse"},
    "train": {"generations": 2, "population": 4, "eval_every": 2},
    "sweep": {"d_grid": [1, 2], "seeds": [0], "baseline": False},
}
PPO = {
    **BASE,
    "algorithm": "ppo",
    "train": {"total_timesteps": 64, "n_envs": 1, "hyperparams": {"n_steps": 32}},
}
DIGITS = {
    **BASE,
    "dataset": {"name": "digits"},
    "algorithm": "adam",
    "network": {"name": "mlp", "kwargs": {"in_dim": 64, "out_dim": 10, "hidden": [8]}},
    "train": {"epochs": 1},
}
del DIGITS["env"]


def cfg(base: dict[str, Any] | None = None, **changes: Any) -> str:
    """YAML of `base` with sections changed: section={key: value} merges, None deletes."""
    data = copy.deepcopy(base or BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return yaml.safe_dump(data)


def _foreign_wal_db() -> bytes:
    """Another program's SQLite database, in WAL mode."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rlsub-foreign-{os.getpid()}.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    path.unlink()
    return data


def _store_of_version(version: int) -> bytes:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rlsub-v{version}-{os.getpid()}.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE meta (k)")
    conn.execute("CREATE TABLE trials (k)")
    conn.execute(f"PRAGMA application_id={0x524C5342}")
    conn.execute(f"PRAGMA user_version={version}")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    path.unlink()
    return data


BINARY = bytes(range(256)) * 4
C = "c.yaml"  # the config file of a case

# (id, argv, files): files are written in the case's folder before it runs
CONFIG_CASES: list[tuple[str, dict[str, Any] | str | bytes]] = [
    ("hidden-big", {"network": {"name": "mlp", "kwargs": {"hidden": "big"}}}),
    ("hidden-negative", {"network": {"name": "mlp", "kwargs": {"hidden": [-3]}}}),
    ("hidden-float", {"network": {"name": "mlp", "kwargs": {"hidden": [2.5]}}}),
    ("activation-unknown", {"network": {"name": "mlp", "kwargs": {"activation": "swish9"}}}),
    ("network-kwarg-unknown", {"network": {"name": "mlp", "kwargs": {"widthh": 3}}}),
    ("network-unknown", {"network": {"name": "resnet"}}),
    ("network-kwargs-list", {"network": {"name": "mlp", "kwargs": [1, 2]}}),
    ("network-key-unknown", {"network": {"name": "mlp", "size": 3}}),
    ("network-import-missing", {"network": {"name": "nosuch_pkg.nets:make"}}),
    ("binary-file", BINARY),
    ("empty-file", ""),
    ("yaml-list", "- 1\n- 2\n"),
    ("yaml-broken", "name: [unclosed\n"),
    ("yaml-scalar", "42\n"),
    ("unknown-top-key", {"nmae": "x"}),
    ("missing-algorithm", {"algorithm": None}),
    ("unknown-algorithm", {"algorithm": "sgdx"}),
    ("algorithm-import-missing", {"algorithm": "nosuch_pkg.algos:T"}),
    ("unknown-env", {"env": "nosuch_env"}),
    ("env-and-dataset", {"dataset": {"name": "digits"}}),
    ("env-variant-unknown", {"env_variant": "v9"}),
    ("lr-inf", {"train": {"lr": float("inf")}}),
    ("lr-nan", {"train": {"lr": float("nan")}}),
    ("lr-negative", {"train": {"lr": -0.1}}),
    ("lr-string", {"train": {"lr": "fast"}}),
    ("sigma-inf", {"train": {"sigma": float("inf")}}),
    ("sigma-zero", {"train": {"sigma": 0}}),
    ("l2-nan", {"train": {"l2": float("nan")}}),
    ("population-1e12", {"train": {"population": 1e12}}),
    ("population-odd", {"train": {"population": 5}}),
    ("population-zero", {"train": {"population": 0}}),
    ("episodes-per-member-huge", {"train": {"episodes_per_member": 10**9}}),
    ("generations-zero", {"train": {"generations": 0}}),
    ("generations-2e70", {"train": {"generations": 2**70}}),
    ("eval-every-zero", {"train": {"eval_every": 0}}),
    ("eval-episodes-1e20", {"train": {"eval_episodes": 1e20}}),
    ("obs-clip-negative", {"train": {"obs_clip": -1}}),
    ("train-key-unknown", {"train": {"popsize": 8}}),
    ("train-not-mapping", {"train": [1]}),
    ("threads-zero", {"train": {"threads": 0}}),
    ("device-unknown", {"train": {"device": "tpu"}}),
    ("seeds-negative", {"sweep": {"seeds": [-1]}}),
    ("seeds-2e70", {"sweep": {"seeds": [2**70]}}),
    ("seeds-empty", {"sweep": {"seeds": []}}),
    ("seeds-string", {"sweep": {"seeds": "abc"}}),
    ("seeds-float", {"sweep": {"seeds": [0.5]}}),
    ("d-grid-zero", {"sweep": {"d_grid": [0]}}),
    ("d-grid-negative", {"sweep": {"d_grid": [-3]}}),
    ("d-grid-too-large", {"sweep": {"d_grid": [100000]}}),
    ("d-grid-empty", {"sweep": {"d_grid": []}}),
    ("threshold-two", {"sweep": {"threshold": 2}}),
    ("threshold-zero", {"sweep": {"threshold": 0}}),
    ("precision-one", {"sweep": {"precision": 1}}),
    ("batch-zero", {"sweep": {"batch": 0}}),
    ("max-trials-zero", {"sweep": {"max_trials": 0}}),
    ("timeout-negative", {"sweep": {"trial_timeout_s": -1}}),
    ("timeout-nan", {"sweep": {"trial_timeout_s": float("nan")}}),
    ("sweep-key-unknown", {"sweep": {"grid": [1]}}),
    ("projection-unknown", {"subspace": {"projection": "gauss"}}),
    ("dense-limit-zero", {"subspace": {"dense_limit_gib": 0}}),
    ("rest-unknown", {"subspace": {"rest": "thawed"}}),
    ("projection-seed-negative", {"subspace": {"projection_seed": -1}}),
    ("projection-seed-2e70", {"subspace": {"projection_seed": 2**70}}),
    ("subspace-key-unknown", {"subspace": {"kind": "dense"}}),
    ("name-escapes-runs", {"name": "../../etc/x"}),
    ("name-absolute", {"name": "/tmp/x"}),
    ("name-slash", {"name": "a/b"}),
    ("name-dotdot", {"name": ".."}),
    ("name-empty", {"name": ""}),
    ("name-nul", {"name": "a\0b"}),
    ("name-number", {"name": 7}),
    ("ppo-lr-inf", cfg(PPO, train={"hyperparams": {"learning_rate": float("inf")}})),
    ("ppo-lin-inf", cfg(PPO, train={"hyperparams": {"learning_rate": "lin_inf"}})),
    ("ppo-hyper-unknown", cfg(PPO, train={"hyperparams": {"n_stepz": 8}})),
    ("ppo-timesteps-zero", cfg(PPO, train={"total_timesteps": 0})),
    ("ppo-n-envs-1e9", cfg(PPO, train={"n_envs": 10**9})),
    ("dqn-continuous", cfg(PPO, algorithm="dqn", env="inverted_pendulum", train={})),
    ("digits-variant-bad", cfg(DIGITS, dataset={"name": "digits", "variant": "mirrored"})),
    ("dataset-unknown", cfg(DIGITS, dataset={"name": "imagenet"})),
    ("digits-lr-inf", cfg(DIGITS, train={"lr": float("inf")})),
    ("digits-epochs-zero", cfg(DIGITS, train={"epochs": 0})),
    ("adam-with-env", cfg(DIGITS, env="cartpole", dataset=None)),
]


def _config_text(spec: dict[str, Any] | str | bytes) -> str | bytes:
    return cfg(**spec) if isinstance(spec, dict) else spec


CASES: list[tuple[str, list[str], dict[str, str | bytes]]] = []
for _id, _spec in CONFIG_CASES:
    CASES.append((f"sweep-{_id}", ["sweep", C], {C: _config_text(_spec)}))
for _id in ("hidden-big", "binary-file", "lr-inf", "population-1e12", "name-escapes-runs"):
    CASES.append(
        (
            f"train-{_id}",
            ["train", C, "--d", "2", "--quiet"],
            {C: _config_text(dict(CONFIG_CASES)[_id])},
        )
    )

GOOD = {C: cfg()}
CASES += [
    # train flags
    ("train-d-zero", ["train", C, "--d", "0"], GOOD),
    ("train-d-word", ["train", C, "--d", "abc"], GOOD),
    ("train-d-too-large", ["train", C, "--d", "100000", "--quiet"], GOOD),
    ("train-seed-negative", ["train", C, "--d", "2", "--seed", "-1"], GOOD),
    ("train-seed-2e70", ["train", C, "--d", "2", "--seed", str(2**70)], GOOD),
    ("train-device-tpu", ["train", C, "--d", "2", "--device", "tpu"], GOOD),
    ("train-out-is-file", ["train", C, "--d", "2", "--out", "f.txt"], {**GOOD, "f.txt": "x"}),
    ("train-missing-config", ["train", "nosuch.yaml", "--d", "2"], {}),
    ("train-config-is-dir", ["train", "adir", "--d", "2"], {"adir/x": "1"}),
    # sweep flags and stores
    ("sweep-workers-zero", ["sweep", C, "--workers", "0"], GOOD),
    ("sweep-workers-negative", ["sweep", C, "--workers", "-2"], GOOD),
    ("sweep-mode-unknown", ["sweep", C, "--mode", "random"], GOOD),
    ("sweep-backend-unknown", ["sweep", C, "--backend", "mpi"], GOOD),
    ("sweep-store-is-dir", ["sweep", C, "--store", "adir"], {**GOOD, "adir/x": "1"}),
    ("sweep-store-text", ["sweep", C, "--store", "s.sqlite"], {**GOOD, "s.sqlite": "hello"}),
    ("sweep-store-binary", ["sweep", C, "--store", "s.sqlite"], {**GOOD, "s.sqlite": BINARY}),
    (
        "sweep-store-foreign-wal",
        ["sweep", C, "--store", "s.db"],
        {**GOOD, "s.db": _foreign_wal_db()},
    ),
    (
        "sweep-store-version-9",
        ["sweep", C, "--store", "s.db"],
        {**GOOD, "s.db": _store_of_version(9)},
    ),
    (
        "sweep-store-parent-is-file",
        ["sweep", C, "--store", "f.txt/s.sqlite"],
        {**GOOD, "f.txt": "x"},
    ),
    ("sweep-missing-config", ["sweep", "nosuch.yaml"], {}),
    ("sweep-ray-unreachable", ["sweep", C, "--backend", "ray", "--address", "127.0.0.1:1"], GOOD),
    ("sweep-ray-address-garbage", ["sweep", C, "--backend", "ray", "--address", "nohost"], GOOD),
    ("sweep-device-tpu", ["sweep", C, "--device", "tpu"], GOOD),
    # eval
    ("eval-episodes-1e20", ["eval", "p.pt", "--episodes", "1e20"], {"p.pt": "x"}),
    ("eval-episodes-10e20", ["eval", "p.pt", "--episodes", str(10**20)], {"p.pt": "x"}),
    ("eval-episodes-zero", ["eval", "p.pt", "--episodes", "0"], {"p.pt": "x"}),
    ("eval-missing", ["eval", "nosuch.pt"], {}),
    ("eval-dir", ["eval", "adir"], {"adir/x": "1"}),
    ("eval-text", ["eval", "p.pt"], {"p.pt": "not a policy"}),
    ("eval-binary", ["eval", "p.pt"], {"p.pt": BINARY}),
    ("eval-empty", ["eval", "p.pt"], {"p.pt": b""}),
    ("eval-zip-no-sidecar", ["eval", "m.zip"], {"m.zip": BINARY}),
    # random-score
    ("random-score-unknown-env", ["random-score", "nosuch_env"], {}),
    ("random-score-episodes-zero", ["random-score", "cartpole", "--episodes", "0"], {}),
    ("random-score-episodes-huge", ["random-score", "cartpole", "--episodes", str(10**20)], {}),
    ("random-score-env-import", ["random-score", "nosuch_pkg:SPEC"], {}),
    # dint, report, curves
    ("dint-missing", ["dint", "nosuch.sqlite"], {}),
    ("dint-text", ["dint", "s.sqlite"], {"s.sqlite": "hello"}),
    ("dint-empty", ["dint", "s.sqlite"], {"s.sqlite": b""}),
    ("dint-dir", ["dint", "adir"], {"adir/x": "1"}),
    ("dint-foreign-wal", ["dint", "s.db"], {"s.db": _foreign_wal_db()}),
    ("dint-version-9", ["dint", "s.db"], {"s.db": _store_of_version(9)}),
    ("dint-rule-unknown", ["dint", "s.db", "--rule", "best"], {}),
    ("report-missing", ["report", "nosuch.sqlite"], {}),
    ("report-binary", ["report", "s.sqlite"], {"s.sqlite": BINARY}),
    ("curves-missing", ["curves", "r.json", "--out", "c.png"], {}),
    ("curves-not-json", ["curves", "r.json", "--out", "c.png"], {"r.json": "{nope"}),
    ("curves-bad-suffix", ["curves", "r.json", "--out", "c.gif"], {"r.json": "{}"}),
    # info, suite, the parser
    ("info-network-unknown", ["info", "--network", "resnet", "--d", "3"], {}),
    ("info-d-zero", ["info", "--network", "mlp", "--d", "0"], {}),
    (
        "info-projection-unknown",
        ["info", "--network", "mlp", "--projection", "gauss", "--d", "3"],
        {},
    ),
    ("info-missing-config", ["info", "nosuch.yaml"], {}),
    ("info-binary-config", ["info", C], {C: BINARY}),
    ("suite-missing", ["suite", "nosuch.yaml"], {}),
    ("suite-binary", ["suite", "s.yaml"], {"s.yaml": BINARY}),
    ("bench-unknown", ["bench", "nosuch"], {}),
    ("command-unknown", ["frobnicate"], {}),
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return int(exc.code or 0)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 90 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "files"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(
    argv: list[str], files: dict[str, str | bytes], tmp_path: Path, monkeypatch, capsys
) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    reset_trust()
    rc = run_main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("rlsub"), err
    assert _files(tmp_path) == before  # no store, policy, folder or -wal/-shm left


# ------------------------------------------------------------ as a user runs them
def _cli(*args: str, cwd: Path, prefix: list[str] | None = None, timeout: float = 120):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "rlsub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize("case", ["sweep-lr-inf", "train-hidden-big", "sweep-binary-file"])
def test_bad_inputs_in_a_subprocess(case: str, tmp_path: Path) -> None:
    _, argv, files = next(c for c in CASES if c[0] == case)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = _cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def _readonly_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which `folder` is read-only, or None (then skip)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        return None
    script = f'mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec "$@"'
    prefix = ["unshare", "-rm", "sh", "-c", script, "sh"]
    probe = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True)
    return prefix if probe.returncode != 0 and not (folder / "probe").exists() else None


@pytest.fixture
def readonly(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def test_readonly_folder_new_store_and_train_out(tmp_path: Path, readonly: Path) -> None:
    (tmp_path / C).write_text(cfg(train={"generations": 10**6}))  # training would never end
    prefix = _readonly_prefix(readonly)
    if prefix is None:
        pytest.skip("no way to make a read-only folder here (root without unshare)")
    for argv in (
        ["sweep", C, "--store", str(readonly / "s.sqlite")],
        ["sweep", C, "--store", str(readonly / "sub" / "s.sqlite")],
        ["train", C, "--d", "2", "--quiet", "--out", str(readonly / "policies")],
    ):
        proc = _cli(*argv, cwd=tmp_path, prefix=prefix, timeout=60)
        assert proc.returncode == 2, proc.stderr
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1 and ("read-only" in line or "writ" in line), line
    assert list(readonly.iterdir()) == []


def test_a_good_store_on_a_readonly_folder_can_be_read(tmp_path: Path, readonly: Path) -> None:
    (tmp_path / C).write_text(cfg(train={"generations": 1, "population": 2, "eval_every": 1}))
    made = _cli("sweep", C, "--store", str(readonly / "s.sqlite"), "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    for p in readonly.glob("s.sqlite-*"):  # a closed store: no -wal / -shm
        p.unlink()
    shutil.rmtree(readonly / "policies", ignore_errors=True)
    before = sorted(p.name for p in readonly.iterdir())
    prefix = _readonly_prefix(readonly)
    if prefix is None:
        pytest.skip("no way to make a read-only folder here (root without unshare)")
    dint = _cli("dint", str(readonly / "s.sqlite"), "--json", cwd=tmp_path, prefix=prefix)
    assert dint.returncode == 0, dint.stderr
    assert json.loads(dint.stdout)["groups"][0]["name"] == "bad"
    rep = _cli(
        "report",
        str(readonly / "s.sqlite"),
        "--out",
        "plots",
        "--json",
        cwd=tmp_path,
        prefix=prefix,
    )
    assert rep.returncode == 0, rep.stderr
    assert sorted(p.name for p in readonly.iterdir()) == before


FULL_DISK = """
set -u
mount -t tmpfs -o size=2m tmpfs {mnt} || exit 97
{py} sweep one.yaml --store {mnt}/s.sqlite --json > /dev/null || exit 98
for free in 0 16 32 48 64 96; do
  rm -rf {mnt}/policies
  dd if=/dev/zero of={mnt}/fill bs=1k 2>/dev/null
  truncate -s -${{free}}K {mnt}/fill
  {py} sweep three.yaml --store {mnt}/s.sqlite --json > /dev/null 2> err-$free.txt
  echo $? > rc-$free.txt
  rm {mnt}/fill
  {py} dint {mnt}/s.sqlite --json > dint-$free.json 2>&1
  ls {mnt}/policies > pol-$free.txt 2>/dev/null
done
{py} sweep three.yaml --store {mnt}/s.sqlite --json > /dev/null 2> err-after.txt || exit 99
{py} dint {mnt}/s.sqlite --json > dint-after.json
"""


@pytest.mark.slow
def test_a_full_disk_says_so_and_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (a small tmpfs in a user namespace)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    one = cfg(train={"generations": 1, "population": 2, "eval_every": 1})
    (tmp_path / "one.yaml").write_text(one)
    more = "".join(f"  - {d}\n" for d in range(1, 13))
    (tmp_path / "three.yaml").write_text(one.replace("  - 1\n  - 2\n", more))
    py = f"{sys.executable} -m rlsub.cli"
    script = FULL_DISK.format(mnt=mnt, py=py)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 97:
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    assert proc.returncode == 0, proc.stderr + (tmp_path / "err-after.txt").read_text()
    before, written = 2, []
    for free in (0, 16, 32, 48, 64, 96):
        err = (tmp_path / f"err-{free}.txt").read_text().strip()
        rc = (tmp_path / f"rc-{free}.txt").read_text().strip()
        assert rc in ("0", "2"), err
        if rc == "2":
            assert len(err.splitlines()) == 1 and "disk full" in err, err
            written.append("the store is as it was" in err)
        dint = json.loads((tmp_path / f"dint-{free}.json").read_text())
        assert dint["running"] == 0  # at most an abandoned claim (SQLite found no room to
        # release it), which the next sweep takes over
        trials = dint["groups"][0]["trials"]
        assert trials >= before and (free > 0 or trials == before)  # free 0: nothing written
        before = trials
        pol = tmp_path / f"pol-{free}.txt"  # the tmpfs is gone: its listing, made inside
        assert ".tmp" not in (pol.read_text() if pol.exists() else "")  # no half-written file
    assert written and any(written)  # a write into the open store failed, and said so
    after = json.loads((tmp_path / "dint-after.json").read_text())  # with room again: all
    assert after["groups"][0]["trials"] == 12 and after["running"] == after["abandoned"] == 0
