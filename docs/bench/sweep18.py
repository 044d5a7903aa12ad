"""The 18 CartPole ES trials of `rlsub bench jax` (d 1-16 x seeds 0-2 + direct), one after
another in this process: the one-at-a-time sweep timed against an older commit.

    python docs/bench/sweep18.py   # prints JSON: wall seconds and (d, seed, score, steps, generations)
"""

import json
import time

from rlsub.algos.es import train
from rlsub.core.config import load_experiment

cfg = load_experiment("cartpole_es")
jobs = [(d, s) for d in (1, 2, 4, 8, 16) for s in (0, 1, 2)] + [("direct", s) for s in (0, 1, 2)]
t = time.perf_counter()
out = []
for d, s in jobs:
    r = train(cfg, d, s, progress=False)
    out.append([str(d), s, r.final_eval_mean, r.env_steps, r.info["generations"]])
print(json.dumps({"wall": time.perf_counter() - t, "trials": out}))
