"""A long trial's checkpoint file: where a killed trial resumes from.

A checkpoint holds tensors and a JSON header (`meta`: plain numbers, strings, lists and
dicts, e.g. a numpy generator's state or a learning curve), written atomically (a
`.tmp` file renamed over the old one) and read with `torch.load(weights_only=True)`:
opening one never runs code, so a checkpoint found in a shared folder is data.

Trainers that checkpoint (`Trainer.checkpoints`) get a `Checkpoint` from `run_trial`
(beside the trial's policy file, `<policy dir>/checkpoints/`) and call `due()` at the
points where their state is complete; `save` writes, `load` reads (None when there is
no usable file: a missing, unreadable or foreign file starts the trial afresh, with a
line on stderr), and `remove` drops it once the trial's record is written. How often
a trial writes is a matter of wall time (`every_s`, by default the environment
variable RLSUB_CHECKPOINT_S or 60 s), never of results: a trainer resumes
bit-identically from any checkpoint it writes.

Imports: nothing of rlsub but `core.paths`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rlsub.core.paths import write_error

FORMAT = 1


def default_every_s() -> float:
    """Seconds between checkpoint writes: RLSUB_CHECKPOINT_S, else 60."""
    raw = os.environ.get("RLSUB_CHECKPOINT_S", "60")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN or negative: a typo, not a wish for no checkpoints
        raise ValueError(f"RLSUB_CHECKPOINT_S must be a number of seconds >= 0, got {raw!r}")
    return value


class Checkpoint:
    """One trial's checkpoint file; `key` names what it belongs to (config hash, d, seed,
    trainer), so a file left by another trial is never resumed from."""

    def __init__(self, path: str | Path, key: dict[str, Any], every_s: float | None = None):
        self.path = Path(path)
        self.key = key
        self.every_s = default_every_s() if every_s is None else every_s
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether `every_s` has passed since the trial started or last saved."""
        return time.monotonic() - self._last >= self.every_s

    def save(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Write (atomically) and restart the clock. A failed write (disk full) leaves the
        previous checkpoint as it was and the trial goes on: a checkpoint is insurance."""
        self._last = time.monotonic()
        tmp = self.path.with_name(self.path.name + ".tmp")
        header = json.dumps({"format": FORMAT, "key": self.key, "meta": meta})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"header": header, "tensors": tensors}, tmp)
            os.replace(tmp, self.path)
        except (OSError, RuntimeError) as exc:
            tmp.unlink(missing_ok=True)
            print(f"{self.path}: checkpoint not written ({write_error(tmp, exc)})", file=sys.stderr)

    def load(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """(meta, tensors) of this trial's checkpoint, or None (no file, or not usable)."""
        if not self.path.is_file():
            return None
        try:
            data = torch.load(self.path, weights_only=True, map_location="cpu")
            header = json.loads(data["header"])
            tensors = data["tensors"]
            ok = header.get("format") == FORMAT and header.get("key") == self.key
        except Exception as exc:  # a damaged file: the trial starts afresh
            print(f"{self.path}: checkpoint unreadable ({exc}); starting afresh", file=sys.stderr)
            return None
        if not ok or not isinstance(tensors, dict):
            print(f"{self.path}: checkpoint of another trial; starting afresh", file=sys.stderr)
            return None
        return header["meta"], tensors

    def remove(self) -> None:
        for p in (self.path, self.path.with_name(self.path.name + ".tmp")):
            p.unlink(missing_ok=True)
