"""Dataset loaders on small generated files (IDX gz, CIFAR-10 pickle tar.gz), the
download path against a loopback HTTP server, and the shuffled variants.

Nothing here reads /work/shared/data or the network: every file is written by
the test into tmp_path, and downloads come from 127.0.0.1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rlsub.core.errors import RlsubError
from rlsub.data import datasets, formats
from rlsub.data.cache import RemoteFile
from rlsub.data.datasets import load_dataset

N_TRAIN, N_TEST = 40, 16


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads the user's cache or data directory."""
    monkeypatch.delenv("RLSUB_DATA_DIR", raising=False)
    monkeypatch.setenv("RLSUB_CACHE", str(tmp_path / "cache"))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, seed: int = 0) -> dict[str, RemoteFile]:
    """Four small IDX gz files in the MNIST layout; returns a files table with their md5s."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (N_TRAIN, 28, 28)),
        "train_labels": np.arange(N_TRAIN) % 10,
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28)),
        "test_labels": np.arange(N_TEST) % 10,
    }
    files = {}
    for key, rf in datasets.MNIST_FILES.items():
        path = folder / rf.filename
        path.write_bytes(gzip.compress(_idx(arrays[key])))
        files[key] = RemoteFile(rf.filename, _md5(path), ())
    return files


def _cifar_batches(seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    batches = {}
    for name in (*formats.CIFAR10_TRAIN_BATCHES, formats.CIFAR10_TEST_BATCH):
        n = 6
        batches[name] = {
            "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, n)],
        }
    return batches


def write_cifar(folder: Path, seed: int = 0) -> tuple[dict[str, RemoteFile], dict[str, dict]]:
    """A small cifar-10-python.tar.gz (5 train batches + test batch of 6 images each)."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = _cifar_batches(seed)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, batch in batches.items():
            blob = pickle.dumps(batch)
            info = tarfile.TarInfo(f"{formats.CIFAR10_FOLDER}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return {"archive": RemoteFile(path.name, _md5(path), ())}, batches


# ------------------------------------------------------------------ digits
def test_digits_shapes_split_and_normalisation():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.n_classes == 10 and ds.input_shape == (1, 8, 8) and ds.input_dim == 64
    assert abs(float(ds.x_train.mean())) < 1e-4 and abs(float(ds.x_train.std()) - 1) < 1e-3
    assert set(ds.y_test.tolist()) == set(range(10))
    again = load_dataset("digits")  # the split is fixed, not drawn per call
    assert torch.equal(again.x_test, ds.x_test) and torch.equal(again.y_train, ds.y_train)


# ------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("sub", ["", "mnist"])
def test_mnist_from_local_dir(tmp_path, sub):
    files = write_mnist(tmp_path / "data" / sub if sub else tmp_path / "data")
    ds = load_dataset("mnist", data_dir=tmp_path / "data", files=files, progress=False)
    assert ds.x_train.shape == (N_TRAIN, 1, 28, 28) and ds.x_test.shape == (N_TEST, 1, 28, 28)
    assert ds.y_train.tolist() == [i % 10 for i in range(N_TRAIN)]
    raw = formats.read_idx(tmp_path / "data" / sub / "train-images-idx3-ubyte.gz")
    expected = (torch.from_numpy(raw.astype(np.float32)) / 255 - 0.1307) / 0.3081
    assert torch.allclose(ds.x_train[:, 0], expected, atol=1e-5)
    assert not (tmp_path / "cache").exists()  # a local directory never touches the cache


def test_mnist_data_dir_from_env(tmp_path, monkeypatch):
    files = write_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setenv("RLSUB_DATA_DIR", str(tmp_path / "data"))
    assert load_dataset("mnist", files=files, progress=False).n_test == N_TEST


def test_mnist_wrong_checksum_names_the_file(tmp_path):
    files = write_mnist(tmp_path)
    bad = dict(files, test_labels=RemoteFile(files["test_labels"].filename, "0" * 32, ()))
    with pytest.raises(RlsubError, match=r"t10k-labels-idx1-ubyte\.gz: md5 .* does not match"):
        load_dataset("mnist", data_dir=tmp_path, files=bad)


def test_mnist_truncated_file_is_one_clear_error(tmp_path):
    files = write_mnist(tmp_path)
    path = tmp_path / files["train_images"].filename
    path.write_bytes(path.read_bytes()[:200])  # a cut-off gzip stream
    files["train_images"] = RemoteFile(path.name, _md5(path), ())  # checksum passes, data not
    with pytest.raises(RlsubError, match=r"train-images-idx3-ubyte\.gz: corrupt or truncated"):
        load_dataset("mnist", data_dir=tmp_path, files=files)


def test_mnist_missing_file_in_local_dir(tmp_path):
    files = write_mnist(tmp_path)
    (tmp_path / files["test_images"].filename).unlink()
    with pytest.raises(RlsubError, match=r"t10k-images-idx3-ubyte\.gz not found in"):
        load_dataset("mnist", data_dir=tmp_path, files=files)


def test_idx_with_wrong_length_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_idx(np.zeros((3, 4, 4)))[:-5]))
    with pytest.raises(RlsubError, match="header says 48"):
        formats.read_idx(path)


# ---------------------------------------------------------------- CIFAR-10
def test_cifar_from_tarball(tmp_path):
    files, batches = write_cifar(tmp_path)
    ds = load_dataset("cifar10", data_dir=tmp_path, files=files, progress=False)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (6, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32) and ds.n_classes == 10
    assert ds.y_test.tolist() == batches["test_batch"]["labels"]
    first = batches["data_batch_1"]["data"][0].reshape(3, 32, 32).astype(np.float32) / 255
    mean = torch.tensor(datasets.CIFAR10_MEAN).reshape(3, 1, 1)
    std = torch.tensor(datasets.CIFAR10_STD).reshape(3, 1, 1)
    assert torch.allclose(ds.x_train[0], (torch.from_numpy(first) - mean) / std, atol=1e-5)


def test_cifar_from_extracted_folder(tmp_path):
    _, batches = write_cifar(tmp_path / "archive")
    folder = tmp_path / "data" / formats.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    ds = load_dataset("cifar10", data_dir=tmp_path / "data", progress=False)
    assert ds.n_train == 30 and ds.y_train[:6].tolist() == batches["data_batch_1"]["labels"]


def test_cifar_refuses_foreign_pickles(tmp_path):
    folder = tmp_path / formats.CIFAR10_FOLDER
    folder.mkdir()
    for name in (*formats.CIFAR10_TRAIN_BATCHES, formats.CIFAR10_TEST_BATCH):
        (folder / name).write_bytes(pickle.dumps({"data": functools.partial(print)}))
    with pytest.raises(RlsubError, match="data_batch_1: not a CIFAR-10 python batch"):
        formats.read_cifar10(folder)


def test_cifar_truncated_archive(tmp_path):
    files, _ = write_cifar(tmp_path)
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:300])
    files = {"archive": RemoteFile(path.name, _md5(path), ())}
    with pytest.raises(RlsubError, match=r"cifar-10-python\.tar\.gz"):
        load_dataset("cifar10", data_dir=tmp_path, files=files)


# ---------------------------------------------------------------- download
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (random port, own thread) serving tmp_path/served."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _served(files: dict[str, RemoteFile], base: str) -> dict[str, RemoteFile]:
    return {k: RemoteFile(rf.filename, rf.md5, (base + rf.filename,)) for k, rf in files.items()}


def test_download_verifies_caches_and_reuses(server, tmp_path):
    base, root = server
    files = _served(write_mnist(root), base)
    ds = load_dataset("mnist", files=files, progress=False)
    assert ds.n_train == N_TRAIN
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(rf.filename for rf in files.values())
    for p in root.iterdir():  # the server is gone from the picture: the cache answers
        p.unlink()
    assert torch.equal(load_dataset("mnist", files=files, progress=False).x_test, ds.x_test)


def test_download_checksum_failure_caches_nothing(server, tmp_path):
    base, root = server
    files = _served(write_mnist(root), base)
    wrong = RemoteFile(files["train_labels"].filename, "f" * 32, files["train_labels"].urls)
    with pytest.raises(RlsubError) as err:
        load_dataset("mnist", files=dict(files, train_labels=wrong), progress=False)
    message = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in message and "nothing cached" in message
    assert "f" * 32 in message and "\n" not in message
    assert not (tmp_path / "cache" / "mnist" / wrong.filename).exists()
    leftovers = [p.name for p in (tmp_path / "cache" / "mnist").iterdir() if p.suffix == ".part"]
    assert leftovers == []


def test_download_tries_mirrors_in_order(server, tmp_path):
    base, root = server
    files, _ = write_cifar(root)
    rf = files["archive"]
    mirrored = RemoteFile(
        rf.filename, rf.md5, (base + "missing/" + rf.filename, base + rf.filename)
    )
    ds = load_dataset("cifar10", files={"archive": mirrored}, progress=False)
    assert ds.n_test == 6 and (tmp_path / "cache" / "cifar10" / rf.filename).is_file()


def test_download_404_is_one_clear_error(server, tmp_path):
    base, _ = server
    rf = RemoteFile("cifar-10-python.tar.gz", "0" * 32, (base + "nope.tar.gz",))
    with pytest.raises(RlsubError, match=r"nope\.tar\.gz: HTTP 404"):
        load_dataset("cifar10", files={"archive": rf}, progress=False)
    assert list((tmp_path / "cache" / "cifar10").iterdir()) == []


def test_offline_error_names_the_data_folder_settings(tmp_path):
    """No network (a closed port): the one error line says where the files may come from."""
    rf = RemoteFile("cifar-10-python.tar.gz", "0" * 32, ("http://127.0.0.1:9/cifar.tar.gz",))
    with pytest.raises(RlsubError) as err:
        load_dataset("cifar10", files={"archive": rf}, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "download failed" in msg
    for needle in ("RLSUB_DATA_DIR", "dataset.data_dir", "$RLSUB_CACHE", str(tmp_path / "cache")):
        assert needle in msg, msg


def test_missing_file_in_data_dir_names_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RLSUB_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(RlsubError, match=r"unset RLSUB_DATA_DIR to use the download cache"):
        load_dataset("mnist", progress=False)


def test_shape_only_matches_the_real_dataset():
    """The stand-in `rlsub info` sizes networks with has the loaders' shapes."""
    real = datasets.load_digits()
    stub = datasets.shape_only("digits")
    assert stub.input_shape == real.input_shape and stub.n_classes == real.n_classes
    assert stub.x_train.shape[1:] == real.x_train.shape[1:]
    assert datasets.shape_only("mnist").input_shape == (1, 28, 28)
    assert datasets.shape_only("cifar10", "shuffled_pixels").input_dim == 3072
    with pytest.raises(RlsubError, match="unknown dataset 'svhn'"):
        datasets.shape_only("svhn")


def test_corrupt_cached_file_is_reported(server, tmp_path):
    base, root = server
    files = _served(write_mnist(root), base)
    load_dataset("mnist", files=files, progress=False)
    cached = tmp_path / "cache" / "mnist" / files["test_images"].filename
    cached.write_bytes(b"garbage")
    with pytest.raises(RlsubError, match=str(cached)):
        load_dataset("mnist", files=files, progress=False)


# ---------------------------------------------------------------- variants
def test_shuffled_pixels_is_one_fixed_permutation(tmp_path):
    files = write_mnist(tmp_path)
    base = load_dataset("mnist", data_dir=tmp_path, files=files)
    shuf = load_dataset("mnist", "shuffled_pixels", data_dir=tmp_path, files=files)
    assert shuf.variant == "shuffled_pixels"
    a, b = base.x_train.flatten(1), shuf.x_train.flatten(1)
    assert not torch.equal(a, b)
    # recover the permutation from the training images (random pixels: columns are unique) ...
    where = {tuple(a[:, j].tolist()): j for j in range(a.shape[1])}
    perm = torch.tensor([where[tuple(b[:, j].tolist())] for j in range(b.shape[1])])
    assert sorted(perm.tolist()) == list(range(784))
    # ... and the test images are shuffled by the same one; labels untouched
    assert torch.equal(shuf.x_test.flatten(1), base.x_test.flatten(1)[:, perm])
    assert torch.equal(shuf.y_train, base.y_train) and torch.equal(shuf.y_test, base.y_test)


def test_shuffled_labels_permutes_training_labels_only():
    base = load_dataset("digits")
    shuf = load_dataset("digits", "shuffled_labels")
    assert torch.equal(shuf.x_train, base.x_train) and torch.equal(shuf.y_test, base.y_test)
    assert torch.equal(torch.sort(shuf.y_train).values, torch.sort(base.y_train).values)
    assert float((shuf.y_train == base.y_train).float().mean()) < 0.3  # chance is about 0.1
    assert torch.equal(load_dataset("digits", "shuffled_labels").y_train, shuf.y_train)


def test_bad_names_are_one_clear_error():
    with pytest.raises(RlsubError, match="unknown dataset 'svhn'; allowed: digits, mnist, cifar10"):
        load_dataset("svhn")
    with pytest.raises(RlsubError, match="unknown dataset variant 'rotated'"):
        load_dataset("digits", "rotated")
