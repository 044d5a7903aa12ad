"""Results store: one SQLite file per sweep (default ``runs/NAME.sqlite``).

One row per trial, keyed by ``(config_hash, d, direct, seed)``; the direct
baseline is keyed with ``d = 0`` (its record's d is D, kept in column ``D``).
A row moves ``running -> done | failed``:

- the driver marks a trial ``running`` (and counts the attempt) just before it
  starts, and replaces the row with the finished record when it ends, in one
  transaction, so a half-written record is never read as finished;
- `Store.records` only ever returns ``done`` and ``failed`` rows; a ``running``
  row left by a killed sweep is an interrupted trial, which the sweep reruns.

The file is written by one process (the sweep driver) and read by any number
of others at the same time (WAL journal). Opening a file that is not an rlsub
store -- not SQLite, a corrupt SQLite file, or another program's database --
raises one `RlsubError` and leaves the file untouched: it is first opened
read-only to check the schema, and tables are only ever created in a new or
empty file.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlsub.core.errors import RlsubError
from rlsub.experiment.record import TrialRecord

SCHEMA_VERSION = 1
APPLICATION_ID = 0x524C5342  # "RLSB", stored in the SQLite header
SQLITE_MAGIC = b"SQLite format 3\x00"
STATUSES = ("running", "done", "failed")

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
_JSON = ("curve", "config", "versions", "info")
_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE trials ("
    + ", ".join(f"{c} {t}" for c, t in _COLUMNS)
    + ", PRIMARY KEY (config_hash, d, direct, seed))",
    "CREATE INDEX trials_status ON trials (config_hash, status)",
]

TrialKey = tuple[str, int, bool, int]  # (config_hash, d (0: direct), direct, seed)


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


def _check_existing(path: Path) -> bool:
    """Check an existing file read-only; True when it is an empty database to initialise."""
    try:
        with path.open("rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise RlsubError(f"{path}: cannot read the results store ({exc.strerror})") from None
    if len(head) == 0:
        return True
    if not head.startswith(SQLITE_MAGIC):
        raise RlsubError(f"{path}: not an SQLite file, so not an rlsub results store")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if app == APPLICATION_ID and "trials" in tables:
                conn.execute("SELECT count(*) FROM trials").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise RlsubError(
            f"{path}: corrupt SQLite file ({exc}); not an rlsub results store"
        ) from None
    if not tables and app == 0 and version == 0:
        return True
    if app != APPLICATION_ID or not {"meta", "trials"} <= tables:
        raise RlsubError(
            f"{path}: an SQLite database of another program (tables: "
            f"{', '.join(sorted(tables)) or 'none'}), not an rlsub results store"
        )
    if version != SCHEMA_VERSION:
        raise RlsubError(
            f"{path}: results store schema version {version}; this rlsub reads "
            f"version {SCHEMA_VERSION}"
        )
    return False


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
        fresh = _check_existing(self.path) if exists else True
        if readonly:
            if fresh:
                raise RlsubError(f"{self.path}: an empty file, not an rlsub results store")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if fresh:
                self._create()
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.row_factory = sqlite3.Row

    def _create(self) -> None:
        """Create the schema in one transaction (all or nothing)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA:
                self.conn.execute(stmt)
            self.conn.execute(
                "INSERT INTO meta VALUES ('app', 'rlsub'), ('schema', ?), ('created_at', ?)",
                (str(SCHEMA_VERSION), str(time.time())),
            )
            self.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
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
    def mark_running(self, key: TrialKey) -> int:
        """Record that trial `key` starts now; returns its attempt number (1 the first time)."""
        self._writable()
        with self.conn:
            self.conn.execute(
                "INSERT INTO trials (config_hash, d, direct, seed, status, attempts, started_at,"
                " host, pid) VALUES (?, ?, ?, ?, 'running', 1, ?, ?, ?)"
                " ON CONFLICT (config_hash, d, direct, seed) DO UPDATE SET status='running',"
                " reason='', attempts=attempts + 1, started_at=excluded.started_at,"
                " finished_at=NULL, host=excluded.host, pid=excluded.pid",
                (*key, time.time(), socket.gethostname(), os.getpid()),
            )
            row = self.conn.execute(
                "SELECT attempts FROM trials WHERE config_hash=? AND d=? AND direct=? AND seed=?",
                key,
            ).fetchone()
        return int(row[0])

    def put(self, rec: TrialRecord) -> None:
        """Write a finished record (status 'done' or 'failed'), replacing its 'running' row."""
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
        for c in ("final_eval_mean", "final_eval_std", "best_eval_mean", "solved_score"):
            if values[c] is not None and not math.isfinite(values[c]):
                values[c] = None
        values["solved"] = None if rec.solved is None else int(rec.solved)
        values["finished_at"] = time.time()
        cols = list(values)
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in key_columns())
        with self.conn:
            self.conn.execute(
                f"INSERT INTO trials ({', '.join(cols)}, attempts) VALUES "
                f"({', '.join('?' for _ in cols)}, 1) ON CONFLICT "
                f"(config_hash, d, direct, seed) DO UPDATE SET {updates}",
                [values[c] for c in cols],
            )

    def abandon(self, key: TrialKey) -> None:
        """Forget a 'running' row whose trial never ran to the end (a user error stopped it)."""
        self._writable()
        with self.conn:
            self.conn.execute(
                "DELETE FROM trials WHERE config_hash=? AND d=? AND direct=? AND seed=?"
                " AND status='running'",
                key,
            )

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
            direct = row["direct"]
            out.append(
                TrialRecord(
                    config_hash=row["config_hash"],
                    name=row["name"] or "",
                    task=row["task"] or "",
                    algorithm=row["algorithm"] or "",
                    network=row["network"] or "",
                    projection=row["projection"] or "",
                    d=int(row["D_full"] or 0) if direct else int(row["d"]),
                    direct=direct,
                    seed=int(row["seed"]),
                    status=row["status"],
                    reason=row["reason"],
                    D=int(row["D_full"] or 0),
                    final_eval_mean=_num(row["final_eval_mean"]),
                    final_eval_std=_num(row["final_eval_std"]),
                    best_eval_mean=_num(row["best_eval_mean"]),
                    solved=None if row["solved"] is None else bool(row["solved"]),
                    solved_score=row["solved_score"],
                    env_steps=int(row["env_steps"] or 0),
                    wall_s=float(row["wall_s"] or 0.0),
                    curve=row["curve"],
                    policy_path=row["policy_path"],
                    config=row["config"],
                    versions=row["versions"],
                    git_rev=row["git_rev"],
                    info=row["info"],
                )
            )
        return out

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.records())


def key_columns() -> tuple[str, ...]:
    return ("config_hash", "d", "direct", "seed")
