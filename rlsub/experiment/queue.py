"""The results store as a work queue: claims with leases say which process runs a trial of
the store, and whether it still does.

A sweep process claims a trial in one transaction: the trial's row becomes
``running`` with its claimant -- host, pid, a token unique to that sweep, its
lease and a heartbeat. `Heartbeat` (a thread of the claimant) refreshes the
heartbeat of every row the claimant holds every lease / 4 seconds. A claim is
*abandoned*, and any sweep may take it over (counting a new attempt), when

- its heartbeat is older than its lease (the claimant hung, was killed, or its
  machine went away), or
- the claimant ran on this host and its pid is gone (killed: no need to wait
  for the lease), or it is this very process, in a sweep that has ended.

Everything else held by another process is left alone: a second sweep on the
same store takes the next free trial instead. `claim` is the one claim path:
every executor gets its trials through it. Machines that share a store (a
folder on a network filesystem: `network_filesystem`, where the store keeps a
rollback journal, not WAL) must agree on the time to well within the lease
(default `LEASE_S` = 60 s).

Imports: nothing of rlsub (the standard library only: sqlite3, os, socket, threading).
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEASE_S = 60.0
NETWORK_FS = (
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "fuse.sshfs",
    "9p",
    "afs",
)
TrialKey = tuple[str, int, bool, int]  # (config_hash, d (0: direct), direct, seed)

_LIVE: set[str] = set()  # tokens of this process's claimants whose sweep is running
_KEY_WHERE = "config_hash=? AND d=? AND direct=? AND seed=?"


@dataclass(frozen=True)
class Claimant:
    """Who holds a claim: host, pid, a token unique to one sweep, and its lease."""

    host: str
    pid: int
    token: str
    lease_s: float = LEASE_S

    @classmethod
    def here(cls, lease_s: float = LEASE_S) -> Claimant:
        """A new claimant for this process."""
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        host, pid = socket.gethostname(), os.getpid()
        return cls(host, pid, f"{host}:{pid}:{secrets.token_hex(6)}", float(lease_s))


def pid_alive(pid: int) -> bool:
    """Is process `pid` (of this host) running? A zombie counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return not stat.rpartition(")")[2].strip().startswith("Z")


def network_filesystem(path: Path) -> bool:
    """Is `path`'s folder on a network filesystem (Linux: /proc/mounts)? Then no WAL."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    where = str(path.resolve().parent)
    best, kind = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mnt = parts[1].replace("\\040", " ")
            if (where == mnt or where.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, parts[2]
    return kind in NETWORK_FS


def abandoned(row: Mapping[str, Any], now: float | None = None) -> bool:
    """Is the claim on this 'running' row abandoned (free to take over)?"""
    beat, lease = row.get("heartbeat"), row.get("lease_s")
    if beat is None or lease is None:  # left by an rlsub without claims: interrupted
        return True
    if (time.time() if now is None else now) - beat > lease:
        return True
    if row.get("host") == socket.gethostname():
        if row.get("pid") == os.getpid():
            return row.get("claim") not in _LIVE
        return not pid_alive(int(row.get("pid") or 0))
    return False


@dataclass
class ClaimResult:
    """What `claim` found: the trial now ours (or None) and where the others stand."""

    key: TrialKey | None = None
    attempt: int = 0
    finished: set[TrialKey] = field(default_factory=set)  # done or failed
    held: dict[TrialKey, str] = field(default_factory=dict)  # running elsewhere: host:pid
    mine: set[TrialKey] = field(default_factory=set)  # running, held by this claimant


def _rows(conn: sqlite3.Connection, keys: Sequence[TrialKey]) -> dict[TrialKey, dict[str, Any]]:
    out: dict[TrialKey, dict[str, Any]] = {}
    wanted = set(keys)
    for h in sorted({k[0] for k in keys}):
        cur = conn.execute(
            "SELECT config_hash, d, direct, seed, status, claim, host, pid, heartbeat, lease_s,"
            " attempts FROM trials WHERE config_hash=?",
            (h,),
        )
        names = [c[0] for c in cur.description]
        for r in cur:
            row = dict(zip(names, r, strict=True))
            k = (row["config_hash"], row["d"], bool(row["direct"]), row["seed"])
            if k in wanted:
                out[k] = row
    return out


def _survey(
    rows: dict[TrialKey, dict[str, Any]], keys: Sequence[TrialKey], who: Claimant, now: float
) -> tuple[ClaimResult, list[TrialKey]]:
    res, free = ClaimResult(), []
    for k in keys:
        row = rows.get(k)
        if row is None:
            free.append(k)
        elif row["status"] != "running":
            res.finished.add(k)
        elif row["claim"] == who.token:
            res.mine.add(k)
        elif abandoned(row, now):
            free.append(k)
        else:
            res.held[k] = f"{row['host']}:{row['pid']}"
    return res, free


def claim(conn: sqlite3.Connection, keys: Sequence[TrialKey], who: Claimant) -> ClaimResult:
    """Claim the first of `keys` that is free (no row) or abandoned, in one transaction.

    Looks first without a lock (a sweep that waits on others polls cheaply), then
    claims under ``BEGIN IMMEDIATE`` after checking the row again.
    """
    keys = list(dict.fromkeys(keys))
    res, free = _survey(_rows(conn, keys), keys, who, time.time())
    if not free:
        return res
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = time.time()
        res, free = _survey(_rows(conn, keys), keys, who, now)
        if free:
            k = free[0]
            conn.execute(
                "INSERT INTO trials (config_hash, d, direct, seed, status, attempts, started_at,"
                " host, pid, claim, heartbeat, lease_s) VALUES (?, ?, ?, ?, 'running', 1, ?, ?,"
                " ?, ?, ?, ?) ON CONFLICT (config_hash, d, direct, seed) DO UPDATE SET"
                " status='running', reason='', attempts=attempts + 1,"
                " started_at=excluded.started_at, finished_at=NULL, host=excluded.host,"
                " pid=excluded.pid, claim=excluded.claim, heartbeat=excluded.heartbeat,"
                " lease_s=excluded.lease_s",
                (*k, now, who.host, who.pid, who.token, now, who.lease_s),
            )
            row = conn.execute(f"SELECT attempts FROM trials WHERE {_KEY_WHERE}", k).fetchone()
            res.key, res.attempt = k, int(row[0])
            res.mine.add(k)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return res


def restart(conn: sqlite3.Connection, key: TrialKey, who: Claimant) -> int:
    """Count another attempt of a trial `who` holds (a worker lost it); its attempt number."""
    with conn:
        conn.execute(
            "UPDATE trials SET attempts=attempts + 1, started_at=?, heartbeat=?"
            f" WHERE {_KEY_WHERE} AND claim=? AND status='running'",
            (time.time(), time.time(), *key, who.token),
        )
        row = conn.execute(f"SELECT attempts FROM trials WHERE {_KEY_WHERE}", key).fetchone()
    return int(row[0]) if row else 0


def release(conn: sqlite3.Connection, key: TrialKey, who: Claimant | None) -> None:
    """Forget a 'running' row (held by `who`, or by anyone when None) that never ran to the end."""
    sql = f"DELETE FROM trials WHERE {_KEY_WHERE} AND status='running'"
    with conn:
        if who is None:
            conn.execute(sql, key)
        else:
            conn.execute(sql + " AND claim=?", (*key, who.token))


def beat(conn: sqlite3.Connection, who: Claimant) -> int:
    """Refresh the heartbeat of every trial `who` holds; how many rows it holds."""
    with conn:
        cur = conn.execute(
            "UPDATE trials SET heartbeat=? WHERE claim=? AND status='running'",
            (time.time(), who.token),
        )
    return cur.rowcount


def running_state(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(held, abandoned): 'running' rows whose claimant is alive, and those left by a dead one."""
    now = time.time()
    running = [r for r in rows if r["status"] == "running"]
    gone = sum(1 for r in running if abandoned(r, now))
    return len(running) - gone, gone


class Heartbeat:
    """The claimant's heartbeat: a daemon thread with its own connection to the store.

    Use as a context manager around the sweep; while it runs, this process's
    claims by `who` count as alive.
    """

    def __init__(self, path: str | Path, who: Claimant) -> None:
        self.path, self.who = Path(path), who
        self.every_s = max(0.05, who.lease_s / 4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rlsub-heartbeat", daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.every_s, check_same_thread=False)
        try:
            while not self.stop.wait(self.every_s):
                try:
                    beat(conn, self.who)
                except sqlite3.Error:  # busy or briefly unreadable: next time
                    continue
        finally:
            conn.close()

    def __enter__(self) -> Heartbeat:
        _LIVE.add(self.who.token)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        _LIVE.discard(self.who.token)
