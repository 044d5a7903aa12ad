"""Results store: one SQLite file per sweep (default ``runs/NAME.sqlite``).

One row per trial, keyed by ``(config_hash, d, direct, seed)``; the direct
baseline is keyed with ``d = 0`` (its record's d is D, kept in column ``D``).
A row moves ``running -> done | failed``:

- a sweep *claims* a trial (`Store.claim`, rlsub.experiment.queue: host, pid,
  token, lease, heartbeat; one transaction, counting the attempt) just before
  it starts, and replaces the row with the finished record when it ends, in one
  transaction, so a half-written record is never read as finished;
- `Store.records` only ever returns ``done`` and ``failed`` rows; a ``running``
  row whose claimant is gone (a killed sweep) is taken over by the next claim.

Any number of sweeps may write one store at once (they split the trials through
their claims) while others read it. A new store is built in a temporary file
and linked into place, so two sweeps starting together never both create it.
The journal is WAL, except on a network filesystem, where WAL's shared memory
does not reach other machines: there it is the rollback journal (file locks).

Opening a file that is not an rlsub store -- not SQLite, a damaged SQLite file
(``PRAGMA quick_check`` runs first), or another program's database -- raises
one `RlsubError` and leaves the file untouched: it is first opened read-only to
check it, and tables are only ever created in a new or empty file. A schema 1
store (before claims) is read as it is, and upgraded in place when written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlsub.core.errors import RlsubError
from rlsub.experiment import meta, queue
from rlsub.experiment.queue import Claimant, ClaimResult, TrialKey
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.store_files import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    check_existing,
    connect_readonly,
    creating,
    disk_full,
)

# (column, SQL type); JSON columns hold lists or mappings as text
_COLUMNS: list[tuple[str, str]] = [
    ("config_hash", "TEXT NOT NULL"),
    ("d", "INTEGER NOT NULL"),  # 0 for the direct baseline
    ("direct", "INTEGER NOT NULL"),
    ("seed", "INTEGER NOT NULL"),
    ("status", "TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed'))"),
    ("reason", "TEXT NOT NULL DEFAULT ''"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("name", "TEXT"),
    ("task", "TEXT"),
    ("algorithm", "TEXT"),
    ("network", "TEXT"),
    ("projection", "TEXT"),
    ("D_full", "INTEGER"),  # D (SQLite names are case-insensitive: "D" would clash with d)
    ("final_eval_mean", "REAL"),
    ("final_eval_std", "REAL"),
    ("best_eval_mean", "REAL"),
    ("solved", "INTEGER"),
    ("solved_score", "REAL"),
    ("env_steps", "INTEGER"),
    ("wall_s", "REAL"),
    ("curve", "TEXT"),
    ("config", "TEXT"),
    ("versions", "TEXT"),
    ("git_rev", "TEXT"),
    ("info", "TEXT"),
    ("policy_path", "TEXT"),
    ("started_at", "REAL"),
    ("finished_at", "REAL"),
    ("host", "TEXT"),
    ("pid", "INTEGER"),
]
_CLAIM_COLUMNS = [("claim", "TEXT"), ("heartbeat", "REAL"), ("lease_s", "REAL")]  # version 2
_COLUMNS += _CLAIM_COLUMNS
_KEY = ("config_hash", "d", "direct", "seed")
_JSON = ("curve", "config", "versions", "info")
_SCORES = ("final_eval_mean", "final_eval_std", "best_eval_mean", "solved_score")
_AS_IS = (
    "config_hash",
    "direct",
    "status",
    "reason",
    "solved_score",
    "curve",
    "policy_path",
    "config",
    "versions",
    "git_rev",
    "info",
)
_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE trials ("
    + ", ".join(f"{c} {t}" for c, t in _COLUMNS)
    + ", PRIMARY KEY (config_hash, d, direct, seed))",
    "CREATE INDEX trials_status ON trials (config_hash, status)",
]


def default_path(name: str, root: str | Path = "runs") -> Path:
    """Where `rlsub sweep` keeps the store of experiment NAME."""
    return Path(root) / f"{name}.sqlite"


def trial_key(config_hash: str, d: int | str, seed: int) -> TrialKey:
    """The store key of trial (config, d, seed); d is an int or 'direct'."""
    direct = d == "direct"
    return (config_hash, 0 if direct else int(d), direct, int(seed))


def _num(x: Any) -> float:
    """SQLite keeps NaN as NULL: read it back as NaN."""
    return float("nan") if x is None else float(x)


def _create(conn: sqlite3.Connection) -> None:
    """Create the schema in one transaction (all or nothing), unless another process has."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            for stmt in _SCHEMA:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO meta VALUES ('app', 'rlsub'), ('schema', ?), ('created_at', ?)",
                (str(SCHEMA_VERSION), str(time.time())),
            )
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


class Store:
    """An rlsub results store. `readonly=True` for readers (never creates the file).

    Use as a context manager, or call `close()`.
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        exists = self.path.exists()
        if readonly and not exists:
            raise RlsubError(f"{self.path}: no such results store")
        if exists and self.path.is_dir():
            raise RlsubError(f"{self.path}: is a directory, not a results store")
        journal = "delete" if queue.network_filesystem(self.path) else "wal"
        if not exists:
            with creating(self.path):
                self._create_new(journal)
        fresh = check_existing(self.path)
        if readonly:
            if fresh:
                raise RlsubError(f"{self.path}: an empty file, not an rlsub results store")
            self.conn = connect_readonly(self.path, timeout=30)
        else:
            self.conn = sqlite3.connect(self.path, timeout=30)
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != journal:
                self.conn.execute(f"PRAGMA journal_mode={journal}")
            self.conn.execute(f"PRAGMA synchronous={'NORMAL' if journal == 'wal' else 'FULL'}")
            if fresh:
                _create(self.conn)
            if self.conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                self._upgrade()
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.row_factory = sqlite3.Row

    def _create_new(self, journal: str) -> None:
        """Build a new store in a temporary file and link it into place: of several
        processes creating the same store at once, one wins and the others open its file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            conn = sqlite3.connect(tmp)
            try:
                conn.execute(f"PRAGMA journal_mode={journal}")
                _create(conn)
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another sweep created it first
            except OSError:  # a filesystem without hard links
                if not self.path.exists():
                    os.replace(tmp, self.path)
        finally:
            for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                p.unlink(missing_ok=True)

    def _upgrade(self) -> None:
        """Schema 1 -> 2: add the claim columns (one transaction; another process may have)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self.conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                have = {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}
                for c, t in _CLAIM_COLUMNS:
                    if c not in have:
                        self.conn.execute(f"ALTER TABLE trials ADD COLUMN {c} {t}")
                self.conn.execute(
                    "UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),)
                )
                self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self) -> None:
        if self.readonly:
            raise RlsubError(f"{self.path}: opened read-only")

    # --------------------------------------------------------------- writes
    def claim(self, keys: list[TrialKey], who: Claimant) -> ClaimResult:
        """Claim the first free (or abandoned) trial of `keys` for `who`: the one claim path."""
        self._writable()
        with self._disk():
            return queue.claim(self.conn, keys, who)

    def restart(self, key: TrialKey, who: Claimant) -> int:
        """Count a new attempt of a trial `who` holds (its worker was lost); the attempt number."""
        self._writable()
        with self._disk():
            return queue.restart(self.conn, key, who)

    def mark_running(self, key: TrialKey, who: Claimant | None = None) -> int:
        """Claim trial `key` now (for `who`, else a claimant of its own); its attempt number.

        Refuses a finished trial, and one that another live sweep holds.
        """
        res = self.claim([key], who or Claimant.here())
        if res.key is None:
            where = "finished" if key in res.finished else f"held by {res.held.get(key)}"
            raise RlsubError(f"{self.path}: trial {key} is {where}")
        return res.attempt

    def put(self, rec: TrialRecord, who: Claimant | None = None) -> bool:
        """Write a finished record (status 'done' or 'failed'), replacing its 'running' row.

        With `who`, only when the row is still running (whoever holds it now) or `who`
        finished it: another sweep's finished record is kept. True when written.
        """
        self._writable()
        if rec.status not in ("done", "failed"):
            raise ValueError(f"a finished record has status done or failed, not {rec.status!r}")
        key = trial_key(rec.config_hash, "direct" if rec.direct else rec.d, rec.seed)
        data = rec.to_dict()
        values: dict[str, Any] = {c: data.get(c) for c, _ in _COLUMNS if c in data}
        values["D_full"] = rec.D
        values.update(config_hash=key[0], d=key[1], direct=int(key[2]), seed=key[3])
        for c in _JSON:
            values[c] = json.dumps(data[c], sort_keys=True, default=str)
        for c in _SCORES:
            if values[c] is not None and not math.isfinite(values[c]):
                values[c] = None
        values["solved"] = None if rec.solved is None else int(rec.solved)
        values["finished_at"] = time.time()
        guard, args = "", []
        if who is not None:
            values["claim"] = who.token
            guard, args = " WHERE trials.status='running' OR trials.claim=?", [who.token]
        cols = list(values)
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in _KEY)
        with self._disk(), self.conn:
            cur = self.conn.execute(
                f"INSERT INTO trials ({', '.join(cols)}, attempts) VALUES "
                f"({', '.join('?' for _ in cols)}, 1) ON CONFLICT "
                f"(config_hash, d, direct, seed) DO UPDATE SET {updates}{guard}",
                [values[c] for c in cols] + args,
            )
        return cur.rowcount > 0

    @contextlib.contextmanager
    def _disk(self) -> Iterator[None]:
        """A write that fails for want of disk space is rolled back by SQLite: say so."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not disk_full(self.path, exc):
                raise
            raise RlsubError(
                f"{self.path}: disk full; the store is as it was before this write ({exc})"
            ) from None

    def give_back(self, key: TrialKey, who: Claimant, tries: int = 10) -> bool:
        """`release`, also on a full disk: each try first folds the WAL into the store and
        truncates it, which frees the space the release needs (the heartbeat's connection
        may hold it back for a moment). False when it could not."""
        for _ in range(tries):
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try:
                self.release(key, who)
                return True
            except RlsubError:
                time.sleep(0.1)
        return False

    def release(self, key: TrialKey, who: Claimant | None = None) -> None:
        """Forget a 'running' row (held by `who`; by anyone when None) whose trial never ran
        to the end (a user error stopped it)."""
        self._writable()
        with self._disk():
            queue.release(self.conn, key, who)

    # ---------------------------------------------------------------- reads
    def statuses(self, config_hash: str | None = None) -> dict[TrialKey, str]:
        """Status of every row (including 'running'), by key."""
        sql = "SELECT config_hash, d, direct, seed, status FROM trials"
        args: tuple[Any, ...] = ()
        if config_hash is not None:
            sql += " WHERE config_hash=?"
            args = (config_hash,)
        return {(r[0], r[1], bool(r[2]), r[3]): r[4] for r in self.conn.execute(sql, args)}

    def rows(
        self, config_hash: str | None = None, status: str | tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        """Raw rows as dicts (JSON columns decoded), ordered by key."""
        where, args = [], []
        if config_hash is not None:
            where.append("config_hash=?")
            args.append(config_hash)
        if status is not None:
            sts = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({', '.join('?' for _ in sts)})")
            args.extend(sts)
        sql = "SELECT * FROM trials" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY config_hash, direct DESC, d, seed"
        out = []
        for r in self.conn.execute(sql, args):
            row = dict(r)
            for c in _JSON:
                row[c] = json.loads(row[c]) if row[c] else ({} if c != "curve" else [])
            row["direct"] = bool(row["direct"])
            out.append(row)
        return out

    def records(self, config_hash: str | None = None) -> list[TrialRecord]:
        """Finished trials ('done' and 'failed') as `TrialRecord`s; 'running' rows never."""
        out = []
        for row in self.rows(config_hash, status=("done", "failed")):
            D = int(row["D_full"] or 0)
            f: dict[str, Any] = {c: row[c] or "" for c in ("name", "task", "algorithm", "network")}
            f.update({c: row[c] for c in _AS_IS}, projection=row["projection"] or "")
            f.update({c: _num(row[c]) for c in _SCORES[:3]}, seed=int(row["seed"]), D=D)
            f.update(
                d=D if row["direct"] else int(row["d"]),
                solved=None if row["solved"] is None else bool(row["solved"]),
                env_steps=int(row["env_steps"] or 0),
                wall_s=float(row["wall_s"] or 0.0),
            )
            out.append(TrialRecord(**f))
        return meta.attach(out, self.conn)

    # ------------------------------------------- per-config facts (`meta`)
    def put_floor(self, config_hash: str, floor: dict[str, Any]) -> None:
        """Keep a measured floor score (a random policy's returns) with the results."""
        self.put_meta("floor", config_hash, floor)

    def floors(self) -> dict[str, dict[str, Any]]:
        """Measured floors by config hash (`put_floor`); plain JSON, nothing imported."""
        return meta.read(self.conn, "floor")

    def put_meta(self, kind: str, config_hash: str, data: dict[str, Any]) -> None:
        """Keep a fact of kind `kind` (`meta.KINDS`) about a config with the results."""
        self._writable()
        with self._disk():
            meta.put(self.conn, kind, config_hash, data)
