"""`train.device`: where a trainer's tensors live. "cpu", "cuda", "cuda:N", or "auto" (CUDA
where torch sees a GPU, else the CPU).

The device is not part of a trial's identity (`ExperimentConfig.hash` leaves it
out): a trial run on a GPU is the same experiment, with float results that may
differ from the CPU's in their last bits. Every random draw (theta0, P, ES noise,
data order) stays on the CPU's generators, so the experiment is the same.

Imports: torch only.
"""

from __future__ import annotations

import re

import torch

from rlsub.core.errors import RlsubError

PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
ALLOWED = "auto, cpu, cuda or cuda:N"


def valid(name: str) -> bool:
    return bool(PATTERN.match(name))


def resolve(name: str, where: str = "train.device") -> torch.device:
    """The torch.device for `name`; one clear error if it names a GPU that is not there."""
    if not valid(name):
        raise RlsubError(f"{where}: {name!r} is not a device; allowed: {ALLOWED}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RlsubError(
                f"{where}: {name!r} asked for, but torch sees no CUDA GPU "
                f"(torch {torch.__version__}; a CPU build?); use cpu or auto"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RlsubError(f"{where}: {name!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return torch.device(name)
