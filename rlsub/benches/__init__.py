"""Benchmarks run by `rlsub bench NAME`: each prints ratios measured in one run.

Ratios are of CPU-seconds (`time.process_time`) or of rates pinned to one thread, so that a
loaded machine moves them little; a GPU's work is timed in wall seconds.

Shared helpers: `timeit` (median of repeats, wall or CPU) and `PeakRSS` (peak resident
memory of this process over a block, Linux only). Each bench's `main(args)` returns
(result, human formatter); `rlsub bench` prints it.

Imports: any layer below (core ... sweep); loaded by name from rlsub.cli.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1, cpu: bool = False) -> float:
    """Median seconds of fn() over `repeat` calls after `warmup` calls: wall seconds, or with
    cpu=True CPU-seconds of this process (`time.process_time`, all its threads): what a
    ratio on a loaded machine should divide (a GPU's work is not in it: wall there)."""
    clock = time.process_time if cpu else time.perf_counter
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """Peak resident memory added by a block (MiB), via /proc/self VmHWM; None elsewhere."""

    def __enter__(self) -> PeakRSS:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self.ok = True
        except OSError:
            self.ok = False
        self.start = _status_kib("VmRSS")
        self.mib: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kib("VmHWM")
        if self.ok and peak is not None and self.start is not None:
            self.mib = max(0, peak - self.start) / 1024
