"""The file side of a results store: what an existing file is before rlsub touches it
(SQLite? rlsub's? damaged? which schema?), opening it read-only (also on a read-only
folder or mount), and one clear line when a new store cannot be made.

A file that is refused is left exactly as it was: -wal / -shm files that opening it
read-only made beside it are removed again.

Imports: core.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from rlsub.core.errors import RlsubError
from rlsub.core.paths import os_error_line

SCHEMA_VERSION = 2  # 2: claims (claim, heartbeat, lease_s); 1 is read, and upgraded on write
APPLICATION_ID = 0x524C5342  # "RLSB", stored in the SQLite header
SQLITE_MAGIC = b"SQLite format 3\x00"


def _sidecars(path: Path) -> list[Path]:
    return [Path(f"{path}-wal"), Path(f"{path}-shm")]


@contextlib.contextmanager
def leaving_no_sidecars(path: Path) -> Iterator[None]:
    """On an error inside, remove the -wal / -shm files that appeared beside `path`
    meanwhile (an empty -wal only: it holds no data; then its -shm)."""
    had = {p for p in _sidecars(path) if p.exists()}
    try:
        yield
    except BaseException:
        wal, shm = _sidecars(path)
        with contextlib.suppress(OSError):
            if wal not in had and wal.exists() and wal.stat().st_size == 0:
                wal.unlink()
            if shm not in had and shm.exists() and not wal.exists():
                shm.unlink()
        raise


def connect_readonly(path: Path, timeout: float = 10) -> sqlite3.Connection:
    """A read-only connection. In a folder nobody can write (a read-only mount) SQLite
    cannot make the -shm a WAL reader needs, and nobody can be writing the store: it
    is then opened as immutable."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    wal = Path(f"{path}-wal")
    if not os.access(path.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size):
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=timeout)


@contextlib.contextmanager
def creating(path: Path) -> Iterator[None]:
    """One line when a new store cannot be made (a read-only folder, a full disk)."""
    try:
        yield
    except OSError as exc:
        raise RlsubError(
            f"{path}: cannot create the results store ({os_error_line(exc)})"
        ) from None
    except sqlite3.OperationalError as exc:
        why = "disk full" if disk_full(path, exc) else str(exc)
        raise RlsubError(f"{path}: cannot create the results store ({why})") from None


def disk_full(path: Path, exc: Exception) -> bool:
    """Whether SQLite error `exc` on the store at `path` comes from a full disk."""
    text = str(exc)
    if "full" in text:
        return True
    if "I/O" not in text:
        return False
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def check_existing(path: Path) -> bool:
    """Check an existing file read-only; True when it is an empty database to initialise.
    A refused file is left as it was (`leaving_no_sidecars`)."""
    with leaving_no_sidecars(path):
        return _check_existing(path)


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """The first problem `PRAGMA quick_check` finds, or None."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
    if rows == ["ok"]:
        return None
    lines = [ln for r in rows for ln in r.splitlines() if ln and not ln.startswith("***")]
    return (lines[0] if lines else "failed")[:200]


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
    try:
        conn = connect_readonly(path)
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            damage = _quick_check(conn) if tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if disk_full(path, exc):
            raise RlsubError(f"{path}: cannot open the results store: disk full") from None
        raise RlsubError(
            f"{path}: corrupt SQLite file ({exc}); not an rlsub results store"
        ) from None
    if damage is not None:
        raise RlsubError(
            f"{path}: damaged SQLite file (quick_check: {damage}); refused and left as it is"
        )
    if not tables and app == 0 and version == 0:
        return True
    if app != APPLICATION_ID or not {"meta", "trials"} <= tables:
        raise RlsubError(
            f"{path}: an SQLite database of another program (tables: "
            f"{', '.join(sorted(tables)) or 'none'}), not an rlsub results store"
        )
    if version not in (1, SCHEMA_VERSION):
        raise RlsubError(
            f"{path}: results store schema version {version}; this rlsub reads "
            f"versions 1 to {SCHEMA_VERSION}"
        )
    return False
