"""Supervised datasets, all in memory: digits (bundled), MNIST and CIFAR-10.

`load_dataset(name, variant, data_dir)` returns a `Dataset` of float32,
normalised image tensors x: (N, C, H, W) and int64 labels y: (N,).

Where the files come from, first match wins:

1. ``data_dir`` (the config's ``dataset.data_dir``), else the environment
   variable ``RLSUB_DATA_DIR``: a local directory holding the canonical files,
   either directly or in a sub-folder named for the dataset (``mnist/``,
   ``cifar10/``), so ``RLSUB_DATA_DIR=../shared/data`` finds
   ``../shared/data/mnist/train-images-idx3-ubyte.gz``. A file missing there is
   an error (nothing is downloaded behind the user's back).
2. Otherwise the cache, ``$RLSUB_CACHE`` or ``~/.cache/rlsub``, sub-folder
   ``mnist/`` or ``cifar10/``; a file missing from it is downloaded from its
   canonical URLs (mirrors tried in order) into a temporary file in the same
   folder, checked against its md5, and only then renamed into place, so a
   truncated or wrong download is never cached.

Every file, local or cached, is checked against its md5 before it is read; a
wrong checksum or a corrupt file gives one `RlsubError` line naming the file.
The URLs and checksums live in `MNIST_FILES` / `CIFAR10_FILES` and can be
passed in (`files=`), which is how the tests point them at a loopback server.

Datasets:

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, no download),
  split into 1,437 train / 360 test by a fixed permutation (`DIGITS_SPLIT_SEED`
  = 0, independent of the trial seed, so every trial sees the same task);
  pixels / 16, then standardised with the training set's mean and std.
- ``mnist``: the four IDX files (gzip); 60,000 / 10,000 images 1x28x28;
  (x / 255 - 0.1307) / 0.3081.
- ``cifar10``: the python-pickle archive ``cifar-10-python.tar.gz`` (read
  without extracting; an extracted ``cifar-10-batches-py/`` folder also
  works); 50,000 / 10,000 images 3x32x32, per-channel mean/std normalisation.
  The pickles are read with an unpickler that only admits numpy arrays.

Variants (the original's randomised tasks; fixed by `VARIANT_SEED`, not by
the trial seed, so the task does not change between trials):

- ``shuffled_pixels``: one fixed permutation of the H*W pixel positions
  (the same for every channel), applied to train and test images alike.
- ``shuffled_labels``: the training labels are permuted among the training
  examples (test labels untouched; the trainer then scores memorisation on the
  training set, as the original did).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlsub.core.errors import RlsubError
from rlsub.data.cache import MNIST_FILES, RemoteFile, local_dir, locate
from rlsub.data.formats import CIFAR10_FOLDER, read_cifar10, read_idx

NAMES = ("digits", "mnist", "cifar10")
VARIANTS = ("standard", "shuffled_pixels", "shuffled_labels")
DIGITS_SPLIT_SEED = 0
DIGITS_N_TEST = 360
VARIANT_SEED = 0
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FILES: dict[str, RemoteFile] = {
    "archive": RemoteFile(
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    )
}


@dataclass(frozen=True)
class Dataset:
    """A supervised task in memory.

    x_train: (N_train, C, H, W) float32, normalised; y_train: (N_train,) int64;
    x_test: (N_test, C, H, W); y_test: (N_test,). input_shape is (C, H, W).
    """

    name: str
    variant: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    input_shape: tuple[int, ...]
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_dim(self) -> int:
        """Number of input features, C*H*W (the in_dim of a flat MLP)."""
        return int(np.prod(self.input_shape))


# ----------------------------------------------------------------- loaders
def _images(x: np.ndarray, mean: Any, std: Any) -> Tensor:
    """uint8 (N, C, H, W) -> float32 normalised, per channel when mean/std are sequences."""
    t = torch.from_numpy(np.array(x, dtype=np.float32)).div_(255.0)  # a writable copy
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return t.sub_(m).div_(s)


def _digits_table() -> np.ndarray:
    """scikit-learn's digits.csv.gz as (1797, 65): 64 pixels (0..16) and the label.

    Read straight from the installed package (importing sklearn costs ~2 s, a
    whole digits trial); falls back to `sklearn.datasets.load_digits`.
    """
    spec = importlib.util.find_spec("sklearn")
    roots = spec.submodule_search_locations if spec is not None else None
    for root in roots or []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    return np.concatenate([bunch.data, bunch.target[:, None]], axis=1)


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits, fixed 1,437 / 360 split (DIGITS_SPLIT_SEED)."""
    table = _digits_table()
    x = table[:, :64].astype(np.float32).reshape(-1, 1, 8, 8) / 16.0
    y = table[:, 64].astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    test, train = order[:DIGITS_N_TEST], order[DIGITS_N_TEST:]
    mean, std = float(x[train].mean()), float(x[train].std())
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    idx_tr, idx_te = torch.from_numpy(train), torch.from_numpy(test)
    return Dataset(
        "digits", "standard", xt[idx_tr], yt[idx_tr], xt[idx_te], yt[idx_te], (1, 8, 8), 10
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    files: dict[str, RemoteFile] | None = None,
    progress: bool = True,
) -> Dataset:
    """MNIST from the four IDX gz files (local directory or cache/download)."""
    files = files or MNIST_FILES
    arrays = {key: read_idx(locate(rf, "mnist", data_dir, progress)) for key, rf in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise RlsubError(
                f"mnist: {files[f'{split}_images'].filename} holds {images.shape}, "
                f"{files[f'{split}_labels'].filename} holds {labels.shape}: they do not match"
            )
    xs = {
        s: _images(arrays[f"{s}_images"][:, None], MNIST_MEAN, MNIST_STD) for s in ("train", "test")
    }
    ys = {s: torch.from_numpy(arrays[f"{s}_labels"].astype(np.int64)) for s in ("train", "test")}
    shape = tuple(int(v) for v in xs["train"].shape[1:])
    return Dataset("mnist", "standard", xs["train"], ys["train"], xs["test"], ys["test"], shape, 10)


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None,
    files: dict[str, RemoteFile] | None = None,
    progress: bool = True,
) -> Dataset:
    """CIFAR-10 from the python archive (local directory or cache/download)."""
    rf = (files or CIFAR10_FILES)["archive"]
    local = local_dir(data_dir)
    folder = None
    if local is not None:  # an already extracted copy is accepted as it is
        folder = next(
            (
                p
                for p in (local[0] / CIFAR10_FOLDER, local[0] / "cifar10" / CIFAR10_FOLDER)
                if p.is_dir()
            ),
            None,
        )
    path = folder if folder is not None else locate(rf, "cifar10", data_dir, progress)
    x_tr, y_tr, x_te, y_te = read_cifar10(path)
    return Dataset(
        "cifar10",
        "standard",
        _images(x_tr, CIFAR10_MEAN, CIFAR10_STD),
        torch.from_numpy(y_tr),
        _images(x_te, CIFAR10_MEAN, CIFAR10_STD),
        torch.from_numpy(y_te),
        (3, 32, 32),
        10,
    )


def shuffle_pixels(ds: Dataset, seed: int = VARIANT_SEED) -> Dataset:
    """One fixed permutation of the H*W pixel positions, applied to train and test."""
    c, h, w = ds.input_shape
    perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))

    def apply(x: Tensor) -> Tensor:
        return x.reshape(-1, c, h * w)[:, :, perm].reshape(-1, c, h, w)

    return Dataset(
        ds.name,
        "shuffled_pixels",
        apply(ds.x_train),
        ds.y_train,
        apply(ds.x_test),
        ds.y_test,
        ds.input_shape,
        ds.n_classes,
    )


def shuffle_labels(ds: Dataset, seed: int = VARIANT_SEED) -> Dataset:
    """The training labels permuted among the training examples (a fixed permutation)."""
    perm = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(seed))
    return Dataset(
        ds.name,
        "shuffled_labels",
        ds.x_train,
        ds.y_train[perm],
        ds.x_test,
        ds.y_test,
        ds.input_shape,
        ds.n_classes,
    )


N_CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}
INPUT_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def shape_only(name: str, variant: str = "standard") -> Dataset:
    """A stand-in for dataset `name` with its real input shape and classes but two
    zero images per split: enough to build and check a network (its D) without
    reading or downloading any file (`rlsub info`)."""
    if name not in NAMES:
        raise RlsubError(f"unknown dataset {name!r}; allowed: {', '.join(NAMES)}")
    shape = INPUT_SHAPES[name]
    x, y = torch.zeros(2, *shape), torch.zeros(2, dtype=torch.int64)
    return Dataset(name, variant, x, y, x, y, shape, N_CLASSES[name])


def chance_accuracy(name: str) -> float | None:
    """Test accuracy of guessing (1 / classes) for a bundled dataset; None for others."""
    n = N_CLASSES.get(name)
    return None if n is None else 1.0 / n


def load_dataset(
    name: str,
    variant: str = "standard",
    data_dir: str | os.PathLike[str] | None = None,
    files: dict[str, RemoteFile] | None = None,
    progress: bool = True,
) -> Dataset:
    """Dataset `name` (digits | mnist | cifar10) in variant `variant`, all in memory.

    `files` replaces the URL/checksum table of mnist or cifar10 (tests).
    """
    if name not in NAMES:
        raise RlsubError(f"unknown dataset {name!r}; allowed: {', '.join(NAMES)}")
    if variant not in VARIANTS:
        raise RlsubError(f"unknown dataset variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    if name == "digits":
        ds = load_digits()
    elif name == "mnist":
        ds = load_mnist(data_dir, files, progress)
    else:
        ds = load_cifar10(data_dir, files, progress)
    if variant == "shuffled_pixels":
        return shuffle_pixels(ds)
    if variant == "shuffled_labels":
        return shuffle_labels(ds)
    return ds
