"""Parsers for the raw dataset files: IDX (MNIST) and the CIFAR-10 python batches
(read without executing pickled code).

Imports: core.errors only.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from rlsub.core.errors import RlsubError

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


# ----------------------------------------------------------------- parsers
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) of unsigned bytes -> uint8 array of its dims."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise RlsubError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise RlsubError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise RlsubError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise RlsubError(
            f"{path}: IDX data has {len(raw) - header} bytes, its header says {size} (truncated?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only (the CIFAR-10 batch format)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            return getattr(_numpy_reconstruct(), name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _cifar_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (x: (N, 3, 32, 32) uint8, y: (N,) int64)."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(blob), encoding="latin1").load()
    except Exception as exc:  # any malformed pickle
        raise RlsubError(f"{where}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise RlsubError(f"{where}: not a CIFAR-10 python batch (no dict inside)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise RlsubError(f"{where}: CIFAR-10 batch without 'data' and 'labels'")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise RlsubError(
            f"{where}: CIFAR-10 batch has data {data.shape} and {labels.shape[0]} labels, "
            "expected (N, 3072) and N"
        )
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The python archive (tar.gz) or an extracted batch folder -> x_train, y_train, x_test, y_test."""
    names = [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH]
    blobs: dict[str, bytes] = {}
    if path.is_dir():
        for n in names:
            f = path / n
            if not f.is_file():
                raise RlsubError(f"{path}: CIFAR-10 folder without {n}")
            blobs[n] = f.read_bytes()
    else:
        try:
            with tarfile.open(path, "r:gz") as tar:
                for n in names:
                    member = tar.extractfile(f"{CIFAR10_FOLDER}/{n}")
                    if member is None:
                        raise KeyError(n)
                    blobs[n] = member.read()
        except KeyError as exc:
            raise RlsubError(f"{path}: archive without {CIFAR10_FOLDER}/{exc.args[0]}") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise RlsubError(f"{path}: corrupt or truncated tar.gz archive ({exc})") from None
    train = [_cifar_batch(blobs[n], f"{path}:{n}") for n in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _cifar_batch(blobs[CIFAR10_TEST_BATCH], f"{path}:{CIFAR10_TEST_BATCH}")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test
