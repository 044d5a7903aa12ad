"""Results store: round trip, running rows, schema checks, foreign files, concurrent readers."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from rlsub.core.errors import RlsubError
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.store import SCHEMA_VERSION, Store, default_path, trial_key


def record(d: int | str, seed: int, score: float = 1.0, status: str = "done") -> TrialRecord:
    direct = d == "direct"
    return TrialRecord(
        config_hash="h1",
        name="x",
        task="t",
        algorithm="es",
        network="mlp",
        projection="identity" if direct else "sparse",
        d=562 if direct else int(d),
        direct=direct,
        seed=seed,
        status=status,
        reason="" if status == "done" else "boom",
        D=562,
        final_eval_mean=score,
        best_eval_mean=score,
        solved_score=475.0,
        solved=False,
        curve=[{"step": 1.0, "value": score}],
        config={"sweep": {"threshold": 0.9}},
        versions={"python": "3"},
        git_rev="abc",
    )


def test_round_trip_and_running_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        assert st.mark_running(trial_key("h1", 4, 0)) == 1
        assert st.records() == []  # a running row is never read as finished
        assert st.statuses() == {("h1", 4, False, 0): "running"}
        st.put(record(4, 0, 3.5))
        st.mark_running(trial_key("h1", "direct", 1))
        st.put(record("direct", 1, 9.0))
        st.mark_running(trial_key("h1", 8, 0))
        st.put(record(8, 0, float("nan"), status="failed"))
        recs = {(r.d, r.direct, r.seed): r for r in st.records()}
    assert set(recs) == {(4, False, 0), (562, True, 1), (8, False, 0)}
    r = recs[(4, False, 0)]
    assert r.final_eval_mean == 3.5 and r.curve == [{"step": 1.0, "value": 3.5}]
    assert r.config == {"sweep": {"threshold": 0.9}} and r.git_rev == "abc" and r.D == 562
    assert r.solved is False and r.solved_score == 475.0
    assert recs[(562, True, 1)].direct and recs[(562, True, 1)].d == 562
    assert math.isnan(recs[(8, False, 0)].final_eval_mean)
    assert recs[(8, False, 0)].status == "failed" and recs[(8, False, 0)].reason == "boom"


def test_attempts_count_and_put_keeps_them(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        key = trial_key("h1", 2, 0)
        st.mark_running(key)
        assert st.mark_running(key) == 2  # interrupted once, rerun
        st.put(record(2, 0))
        row = st.rows()[0]
    assert row["attempts"] == 2 and row["status"] == "done"
    assert row["started_at"] <= row["finished_at"]


def test_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    Store(path).close()  # reopening an rlsub store works
    assert default_path("cartpole_es") == Path("runs/cartpole_es.sqlite")


def _unchanged(path: Path, match: str) -> None:
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(RlsubError, match=match):
        Store(path)
    with pytest.raises(RlsubError, match=match):
        Store(path, readonly=True)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert not Path(f"{path}-wal").exists()


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    _unchanged(path, "another program")


def test_non_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("name,score\nx,1\n")
    _unchanged(path, "not an SQLite file")


def test_corrupt_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Store(path) as st:
        st.put(record(1, 0))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:] = bytes((i * 7 + 3) % 256 for i in range(len(data) - 100))
    path.write_bytes(bytes(data))
    _unchanged(path, "corrupt")


def test_damaged_index_page_is_refused_untouched(tmp_path: Path) -> None:
    """A damaged page that counting rows does not read: PRAGMA quick_check finds it."""
    path = tmp_path / "d.sqlite"
    with Store(path) as st:
        for i in range(50):
            st.put(record(i + 1, 0))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='trials_status'").fetchone()
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    at = (root[0] - 1) * page + 8  # the index's cells, past the page header
    data[at : at + page - 8] = bytes((i * 7 + 3) % 256 for i in range(page - 8))
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM trials").fetchone()[0] == 50  # looks healthy
    conn.close()
    _unchanged(path, "damaged SQLite file")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RlsubError, match="schema version"):
        Store(path)


def test_empty_file_is_initialised_and_missing_readonly_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    Store(path).close()
    assert Store(path, readonly=True).records() == []
    with pytest.raises(RlsubError, match="no such results store"):
        Store(tmp_path / "missing.sqlite", readonly=True)
    with pytest.raises(RlsubError, match="read-only"):
        Store(path, readonly=True).put(record(1, 0))


def test_readers_while_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    n = 150
    errors: list[BaseException] = []
    seen: list[int] = []

    def write() -> None:
        with Store(path) as st:
            for i in range(n):
                st.mark_running(trial_key("h1", i + 1, 0))
                st.put(record(i + 1, 0, float(i)))

    def read() -> None:
        try:
            with Store(path, readonly=True) as st:
                while not seen or seen[-1] < n:
                    recs = st.records()
                    assert all(r.status == "done" for r in recs)
                    seen.append(len(recs))
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in [writer, *readers]:
        t.start()
    for t in [writer, *readers]:
        t.join(timeout=30)
    assert not errors, errors
    assert seen[-1] == n and len(seen) > 2
