"""One master seed per trial, split into named streams.

Every random object in rlsub (environment resets, theta0, the projection P,
ES noise, SB3, data order) draws from its own stream, derived from the trial's
master seed and the stream's name with `numpy.random.SeedSequence`, so that
each can be varied on its own (e.g. the projection seed, to measure projection
variance) and any process can rebuild the same objects from integers alone.
"""

from __future__ import annotations

import zlib

import numpy as np

STREAMS = ("env", "theta0", "projection", "es_noise", "sb3", "data", "eval")


def stream_seed(master: int, name: str) -> int:
    """A 31-bit seed for stream `name` of trial seed `master` (stable across runs)."""
    if name not in STREAMS:
        raise ValueError(f"unknown seed stream {name!r}; known: {', '.join(STREAMS)}")
    key = zlib.crc32(name.encode())
    state = np.random.SeedSequence([int(master), key]).generate_state(1, dtype=np.uint32)
    return int(state[0] & 0x7FFFFFFF)


def trial_seeds(master: int, overrides: dict[str, int] | None = None) -> dict[str, int]:
    """All named stream seeds of a trial; `overrides` pins some (e.g. projection)."""
    seeds = {name: stream_seed(master, name) for name in STREAMS}
    for name, value in (overrides or {}).items():
        if name not in seeds:
            raise ValueError(f"unknown seed stream {name!r}; known: {', '.join(STREAMS)}")
        seeds[name] = int(value)
    return seeds
