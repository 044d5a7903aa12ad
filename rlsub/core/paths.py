"""Checks that a file or folder rlsub is about to write can be written, made before any
work starts (a training run, a store), so that a read-only folder or a file in the way
ends with one line instead of a traceback after the work.

Imports: nothing of rlsub but `core.errors`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from rlsub.core.errors import RlsubError


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise RlsubError(f"{what}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        try:
            readonly = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            readonly = False
        why = "is on a read-only filesystem" if readonly else "is not writable"
        raise RlsubError(f"{what}: the folder {folder} {why}; choose another place")


def check_can_write_folder(folder: str | Path, what: str) -> None:
    """`folder` exists as a writable folder, or can be made."""
    folder = Path(folder)
    _check_folder(_nearest_existing(folder.absolute()), what)


def check_can_write_file(path: str | Path, what: str) -> None:
    """`path` can be created, or (existing) written, with files beside it (-wal, .tmp)."""
    path = Path(path).absolute()
    if path.exists():
        if path.is_dir():
            raise RlsubError(f"{what}: {path} is a folder, not a file")
        if not os.access(path, os.W_OK):
            raise RlsubError(f"{what}: {path} is read-only; choose another place")
    check_can_write_folder(path.parent, what)


def os_error_line(exc: OSError) -> str:
    """A short reason for an OSError: 'disk full' for ENOSPC, else its strerror."""
    if exc.errno == errno.ENOSPC:
        return "disk full"
    return exc.strerror or type(exc).__name__


def write_error(path: str | Path, exc: BaseException) -> str:
    """Why writing `path` failed, in a few words: 'disk full' when it is (torch reports a
    full disk as a RuntimeError), else the error's first line."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "disk full"
    try:
        if os.statvfs(_nearest_existing(Path(path).absolute())).f_bavail == 0:
            return "disk full"
    except OSError:
        pass
    if isinstance(exc, OSError):
        return os_error_line(exc)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
