"""Which code a file may make rlsub run: by default, none.

Policy files, stores, records and SB3 policies are shared between users, so they
name plug-ins only as data. While rlsub reads such a file (`reading(path)`), a
plug-in named by a bundled name resolves as usual, but an import path
`"package.module:attr"` is refused with one line that says how to allow it, unless
its module is trusted:

- `rlsub eval FILE --trust MODULE` (repeatable), or
- the environment variable `RLSUB_TRUSTED_MODULES=pkg_a,pkg_b.nets` (comma separated).

A trusted prefix covers the module and its submodules (`mypkg` trusts `mypkg.nets`).
Import paths a user writes in their own config on the command line are the user's
choice and need no trust. Pickled files (SB3's `.zip`) are refused unless
`--trust-pickle` (or `RLSUB_TRUST_PICKLE=1`) says the file's author is trusted.

Imports: nothing of rlsub but `core.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterable, Iterator

from rlsub.core.errors import RlsubError

ENV_VAR = "RLSUB_TRUSTED_MODULES"
PICKLE_ENV_VAR = "RLSUB_TRUST_PICKLE"

_reading: contextvars.ContextVar[str | None] = contextvars.ContextVar("rlsub_reading", default=None)
_also: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("rlsub_also", default=())
_trusted: set[str] = set()
_pickle_trusted = False


class UntrustedError(RlsubError):
    """A file names code (an import path, a pickle) that nobody trusted."""


def allow(modules: Iterable[str] = (), pickle: bool = False) -> None:
    """Trust `modules` (prefixes) for the rest of this process; `pickle`: trust pickles."""
    global _pickle_trusted
    _trusted.update(m.strip() for m in modules if m.strip())
    _pickle_trusted = _pickle_trusted or pickle


def reset() -> None:
    """Forget what `allow` trusted (tests)."""
    global _pickle_trusted
    _trusted.clear()
    _pickle_trusted = False


def trusted_modules() -> set[str]:
    env = {m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()}
    return _trusted | env | set(_also.get())


def is_trusted(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in trusted_modules())


def reading_file() -> str | None:
    """The file being read now (None: the user's own input)."""
    return _reading.get()


@contextlib.contextmanager
def reading(source: str | os.PathLike[str], trust: Iterable[str] = ()) -> Iterator[None]:
    """While inside, plug-in import paths count as named by the file `source`; those of
    the modules in `trust` are allowed too."""
    token = _reading.set(str(source))
    also = _also.set(_also.get() + tuple(trust))
    try:
        yield
    finally:
        _also.reset(also)
        _reading.reset(token)


def check_import(path: str, kind: str) -> None:
    """Refuse import path `path` when a file being read names it and its module is not
    trusted (see the module docstring)."""
    source = _reading.get()
    if source is None:
        return
    module = path.partition(":")[0].strip()
    if module and is_trusted(module):
        return
    top = module.split(".")[0] or module
    raise UntrustedError(
        f"{source}: the file names {kind} {path!r}, an import path; rlsub runs no code a "
        f"file names unless you trust it: --trust {top} or {ENV_VAR}={top}"
    )


def check_pickle(source: str) -> None:
    """Refuse to unpickle `source` unless pickles are trusted."""
    if _pickle_trusted or os.environ.get(PICKLE_ENV_VAR, "") in ("1", "true", "yes"):
        return
    raise UntrustedError(
        f"{source}: a pickled SB3 zip can run any code when loaded; refused. If you trust "
        f"its author: --trust-pickle or {PICKLE_ENV_VAR}=1 (rlsub now writes .pt files)"
    )
