"""Dataset files: local folders, the download cache, checksums and mirrors.

Imports: core.errors only.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rlsub.core.errors import RlsubError

DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RemoteFile:
    """A canonical file: its name, md5 and the URLs it can be downloaded from (in order)."""

    filename: str
    md5: str
    urls: tuple[str, ...]


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _mnist(filename: str, md5: str) -> RemoteFile:
    return RemoteFile(filename, md5, tuple(m + filename for m in _MNIST_MIRRORS))


MNIST_FILES: dict[str, RemoteFile] = {
    "train_images": _mnist("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": _mnist("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": _mnist("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": _mnist("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}


# ------------------------------------------------------------------ files
def cache_dir() -> Path:
    """Root of the download cache: $RLSUB_CACHE, else ~/.cache/rlsub."""
    env = os.environ.get("RLSUB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlsub"


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, rf: RemoteFile) -> Path:
    got = md5sum(path)
    if got != rf.md5:
        raise RlsubError(
            f"{path}: md5 {got} does not match the expected {rf.md5} "
            f"(corrupt, truncated or not the canonical {rf.filename})"
        )
    return path


def download(rf: RemoteFile, dest: Path, progress: bool = True) -> Path:
    """Download `rf` to `dest` through a temporary file; only a verified file is renamed into place.

    Mirrors are tried in order; if none gives a file with the right md5, raises
    one RlsubError listing what each gave, and leaves nothing behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for url in rf.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{rf.filename}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            h = hashlib.md5(usedforsecurity=False)
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp,
            ):
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=rf.filename,
                    file=sys.stderr,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
            if h.hexdigest() != rf.md5:
                problems.append(f"{url} gave md5 {h.hexdigest()}, expected {rf.md5}")
                continue
            os.replace(tmp, dest)
            return dest
        except urllib.error.HTTPError as exc:
            problems.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise RlsubError(f"{rf.filename}: download failed, nothing cached: {'; '.join(problems)}")


def local_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path, str] | None:
    """The local data directory in force (argument, else $RLSUB_DATA_DIR) and where it came from."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir"
    env = os.environ.get("RLSUB_DATA_DIR")
    if env:
        return Path(env).expanduser(), "RLSUB_DATA_DIR"
    return None


def locate(
    rf: RemoteFile, dataset: str, data_dir: str | os.PathLike[str] | None, progress: bool = True
) -> Path:
    """Path of a verified copy of `rf`: from the local directory, else the cache (downloading)."""
    local = local_dir(data_dir)
    if local is not None:
        root, origin = local
        for candidate in (root / rf.filename, root / dataset / rf.filename):
            if candidate.is_file():
                return _verify(candidate, rf)
        raise RlsubError(
            f"{dataset}: {rf.filename} not found in {root} or {root / dataset} "
            f"(from {origin}); put the canonical file there, or unset {origin} to use the "
            f"download cache {cache_dir() / dataset} ($RLSUB_CACHE)"
        )
    dest = cache_dir() / dataset / rf.filename
    if not dest.is_file():
        try:
            download(rf, dest, progress)
        except RlsubError as exc:  # offline, most often: say where the files may come from
            raise RlsubError(
                f"{dataset}: {rf.filename} is not in the cache {dest.parent} ($RLSUB_CACHE) "
                f"and {exc}; offline, put the file there or in a folder named by "
                "RLSUB_DATA_DIR or the config's dataset.data_dir"
            ) from None
    return _verify(dest, rf)
