"""A tiny deterministic test-only trainer ("fake") for sweep and store tests.

score(d, seed) = 100 * sigmoid(2 (log d - log crossing)) + noise * u(seed, d), u in [-1, 1];
the direct baseline scores 100 (+ noise). Hooks make chosen d fail, diverge or hang,
and every start of a trial is appended to `log_file` (to count runs).

With RLSUB_FAKE_FAST_VERSIONS=1 in the environment (set by the tests, inherited by
spawned workers and driver subprocesses), importing this module replaces
`rlsub.experiment.trial.versions` by a cheap stand-in: the real one imports torch, SB3, scipy...
(seconds per fresh process), which would dominate these tests.
"""

from __future__ import annotations

import math
import os
import platform
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rlsub.algos.base import Trainer, TrainResult

D = 562


def fast_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "fake_trainer": "1"}


if os.environ.get("RLSUB_FAKE_FAST_VERSIONS"):
    import rlsub.experiment.trial

    rlsub.experiment.trial.versions = fast_versions


@dataclass(frozen=True)
class FakeConfig:
    crossing: float = 8.0
    noise: float = 2.0
    sleep_s: float = 0.0
    fail_d: list[int] = field(default_factory=list)
    nan_d: list[int] = field(default_factory=list)
    hang_d: list[int] = field(default_factory=list)
    interrupt_d: list[int] = field(default_factory=list)  # KeyboardInterrupt once per d
    crash_d: list[int] = field(default_factory=list)  # the process SIGKILLs itself ...
    crashes: int = 1  # ... on the first `crashes` starts of each (d, seed) (needs log_file)
    blip: dict[str, float] = field(default_factory=dict)  # {"d": score} overrides
    solved_score: float | None = None
    log_file: str | None = None
    mp_lock: bool = False  # hold a multiprocessing lock in the worker, as tqdm does
    threads: int | None = None  # set torch's thread count, as ES and SB3 trainers do


def score(fc: FakeConfig, d: int | str, seed: int) -> float:
    u = random.Random(f"{d}-{seed}").uniform(-1.0, 1.0)
    if d == "direct":
        return 100.0 + fc.noise * u
    if str(d) in fc.blip:
        return float(fc.blip[str(d)])
    x = 2.0 * (math.log(int(d)) - math.log(fc.crossing))
    return 100.0 / (1.0 + math.exp(-x)) + fc.noise * u


_LOCKS: list[Any] = []


def train(cfg: Any, d: int | str, seed: int, progress: bool = False) -> TrainResult:
    fc: FakeConfig = cfg.train
    if fc.mp_lock and not _LOCKS:  # a semaphore for the resource tracker (freed at exit)
        import multiprocessing

        _LOCKS.append(multiprocessing.get_context("spawn").RLock())
    if fc.threads is not None:
        import torch

        torch.set_num_threads(fc.threads)
    if fc.log_file:
        with open(fc.log_file, "a") as fh:
            fh.write(f"{d} {seed} {os.getpid()}\n")
    if d != "direct" and int(d) in fc.crash_d and fc.log_file:
        starts = Path(fc.log_file).read_text().splitlines()
        if sum(ln.startswith(f"{d} {seed} ") for ln in starts) <= fc.crashes:
            time.sleep(fc.sleep_s / 2)  # mid-trial
            os.kill(os.getpid(), signal.SIGKILL)
    if fc.sleep_s:
        time.sleep(fc.sleep_s)
    if d != "direct" and int(d) in fc.hang_d:
        time.sleep(60)
    if d != "direct" and int(d) in fc.fail_d:
        raise RuntimeError(f"boom at d={d}")
    if d != "direct" and int(d) in fc.interrupt_d and fc.log_file:
        marker = Path(f"{fc.log_file}.interrupted-{d}")
        if not marker.exists():
            marker.write_text("x")
            raise KeyboardInterrupt
    s = float("nan") if d != "direct" and int(d) in fc.nan_d else score(fc, d, seed)
    return TrainResult(
        final_eval_mean=s,
        final_eval_std=0.0,
        best_eval_mean=s,
        D=D,
        d=D if d == "direct" else int(d),
        env_steps=100,
        curve=[{"step": 100.0, "value": s}],
        solved_score=fc.solved_score,
    )


def register(monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Register algorithm 'fake' by name in this process (configs from `config()` use the
    import path "fake_trainer:TRAINER", which spawned workers resolve too)."""
    from rlsub.core.registry import TRAINERS

    if monkeypatch is None:
        TRAINERS.register("fake", "fake_trainer:TRAINER")
    else:
        monkeypatch.setitem(TRAINERS._entries, "fake", "fake_trainer:TRAINER")


def config(**train: Any) -> dict[str, Any]:
    """A fake experiment config (dict), sweep d_grid 1..256 x 3 seeds."""
    sweep = train.pop("sweep", {})
    return {
        "name": "fake",
        "algorithm": "fake_trainer:TRAINER",
        "env": "fake",
        "network": {"name": "mlp"},
        "train": train,
        "sweep": {"d_grid": [1, 2, 4, 8, 16, 32, 64, 128, 256], "seeds": [0, 1, 2], **sweep},
    }


TRAINER = Trainer(FakeConfig, train)
