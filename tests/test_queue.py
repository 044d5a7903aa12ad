"""The store as a work queue (rlsub.experiment.queue), claims with leases: who runs a trial, take-overs, heartbeats,
first finisher wins, schema 1 stores, concurrent creation, the network-filesystem journal."""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_store import record

import rlsub.experiment.queue as queue
import rlsub.experiment.store as store_module
from rlsub.core.errors import RlsubError
from rlsub.experiment.queue import Claimant, Heartbeat, abandoned, running_state
from rlsub.experiment.store import SCHEMA_VERSION, Store, trial_key

KEYS = [trial_key("h1", d, s) for d in ("direct", 1, 2) for s in (0, 1)]


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def rows_by_key(st: Store) -> dict[tuple, dict]:
    return {(r["config_hash"], r["d"], r["direct"], r["seed"]): r for r in st.rows()}


def test_two_claimants_take_different_trials(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    a, b = Claimant.here(), Claimant.here()
    assert a.token != b.token
    with Store(path) as sa, Store(path) as sb, Heartbeat(path, a), Heartbeat(path, b):
        got_a = sa.claim(KEYS, a)
        got_b = sb.claim(KEYS, b)
        assert got_a.key == KEYS[0] and got_b.key == KEYS[1]  # the next free one
        assert got_a.attempt == got_b.attempt == 1
        again = sb.claim(KEYS[:2], b)  # both held: by a (alive), and by b itself
        assert again.key is None and set(again.held) == {KEYS[0]} and again.mine == {KEYS[1]}
        assert sa.put(record("direct", 0), a) and sa.claim(KEYS[:1], b).finished == {KEYS[0]}
        with pytest.raises(RlsubError, match="held by"):
            sa.mark_running(KEYS[1])  # b is alive
        with pytest.raises(RlsubError, match="finished"):
            sa.mark_running(KEYS[0])
    with Store(path, readonly=True) as st:
        assert {k: r["attempts"] for k, r in rows_by_key(st).items()} == {KEYS[0]: 1, KEYS[1]: 1}


def test_abandoned_claims_are_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    here = socket.gethostname()
    with Store(path) as st:
        now = time.time()
        held = [  # (claimant, heartbeat age): which claims stand
            (Claimant(here, dead_pid(), "dead"), 0.0),  # pid gone on this host
            (Claimant("elsewhere", 1, "stale", lease_s=5.0), 10.0),  # heartbeat past its lease
            (Claimant("elsewhere", 1, "live", lease_s=60.0), 1.0),  # another machine, alive
            (Claimant(here, 1, "live-here"), 0.0),  # pid 1 is alive
            (Claimant(here, os.getpid(), "ended"), 0.0),  # this process, sweep over
        ]
        keys = [trial_key("h1", d, 0) for d in range(1, len(held) + 1)]
        for (who, age), k in zip(held, keys, strict=True):
            assert st.claim([k], who).key == k
            st.conn.execute(f"UPDATE trials SET heartbeat={now - age} WHERE d={k[1]}")
            st.conn.commit()
        rows = rows_by_key(st)
        assert [abandoned(rows[k]) for k in keys] == [True, True, False, False, True]
        assert running_state(list(rows.values())) == (2, 3)
        me = Claimant.here()
        with Heartbeat(path, me):
            taken = [st.claim(keys, me) for _ in range(4)]
        assert [t.key for t in taken] == [keys[0], keys[1], keys[4], None]
        assert [t.attempt for t in taken[:3]] == [2, 2, 2]
        assert set(taken[-1].held) == {keys[2], keys[3]}
        assert taken[-1].held[keys[2]] == "elsewhere:1"


def test_heartbeat_keeps_a_claim_alive_and_ends_with_the_sweep(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    who = Claimant.here(lease_s=0.2)
    with Store(path) as st:
        with Heartbeat(path, who):
            st.claim(KEYS[:1], who)
            first = st.rows()[0]["heartbeat"]
            time.sleep(0.5)  # longer than the lease: the heartbeat thread renewed it
            row = st.rows()[0]
            assert row["heartbeat"] > first and not abandoned(row)
        assert abandoned(st.rows()[0])  # its sweep ended: free at once (same process)
        with pytest.raises(ValueError):
            Claimant.here(lease_s=0)


def test_first_finisher_wins_after_a_take_over(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    slow = Claimant("elsewhere", 1, "slow", lease_s=0.05)
    fast = Claimant.here()
    with Store(path) as st:
        assert st.claim(KEYS[:1], slow).attempt == 1
        time.sleep(0.1)  # the slow one's heartbeat went stale
        with Heartbeat(path, fast):
            assert st.claim(KEYS[:1], fast).attempt == 2
            assert st.put(record("direct", 0, score=7.0), fast)
        assert not st.put(record("direct", 0, score=1.0), slow)  # late: the record stands
        assert st.put(dataclasses.replace(record("direct", 0), final_eval_mean=8.0), fast)
        (rec,) = st.records()
        assert rec.final_eval_mean == 8.0 and st.rows()[0]["attempts"] == 2
        st.release(KEYS[1], fast)  # nothing there: nothing happens


def test_schema_1_store_is_read_then_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    cols = [(c, t) for c, t in store_module._COLUMNS if c not in ("claim", "heartbeat", "lease_s")]
    conn = sqlite3.connect(path)  # a store as rlsub wrote it before claims
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        f"CREATE TABLE trials ({', '.join(f'{c} {t}' for c, t in cols)},"
        " PRIMARY KEY (config_hash, d, direct, seed));"
        "CREATE INDEX trials_status ON trials (config_hash, status);"
        f"PRAGMA application_id={store_module.APPLICATION_ID}; PRAGMA user_version=1;"
        "INSERT INTO trials (config_hash, d, direct, seed, status, attempts)"
        " VALUES ('h1', 2, 0, 0, 'running', 1), ('h1', 1, 0, 0, 'done', 1);"
    )
    conn.close()
    with Store(path, readonly=True) as st:
        assert len(st.records()) == 1 and running_state(st.rows()) == (0, 1)
    with Store(path) as st:
        assert st.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        who = Claimant.here()
        with Heartbeat(path, who):
            got = st.claim([trial_key("h1", 2, 0)], who)  # the old 'running' row: interrupted
    assert got.attempt == 2


def test_sweeps_creating_one_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new" / "s.sqlite"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        try:
            start.wait()
            with Store(path) as st:
                st.put(record(1, 0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert sorted(p.name for p in path.parent.iterdir() if "sqlite." in p.name) == []
    with Store(path, readonly=True) as st:
        assert len(st.records()) == 1


def test_network_filesystem_uses_the_rollback_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"server:/export {tmp_path} nfs4 rw 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    real_read = Path.read_text
    monkeypatch.setattr(
        Path, "read_text", lambda p, *a, **k: real_read(mounts if str(p) == "/proc/mounts" else p)
    )
    assert queue.network_filesystem(tmp_path / "a" / "s.sqlite")
    assert not queue.network_filesystem(Path("/usr/s.sqlite"))
    path = tmp_path / "s.sqlite"
    a, b = Claimant.here(), Claimant.here()
    with Store(path) as sa, Store(path) as sb, Heartbeat(path, a), Heartbeat(path, b):
        assert sa.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert sa.claim(KEYS, a).key != sb.claim(KEYS, b).key
