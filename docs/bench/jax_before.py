"""`rlsub bench jax`'s throughput rows for rlsub's rollout code of an older commit, against
the same JAX loops: how far rlsub was from the strongest JAX loop before issue 27.

    git checkout 0f090a4 -- rlsub/rollout/lanes.py rlsub/rollout/population.py
    python docs/bench/jax_before.py CartPole-v1:8:300:6 CartPole-v1:direct:300:6 \
        Acrobot-v1:8:30:3 Acrobot-v1:direct:30:3 Pendulum-v1:8:30:3 \
        Pendulum-v1:direct:30:3 MountainCar-v0:8:30:3 MountainCar-v0:direct:30:3 \
        > docs/bench/jax_before_0f090a4.json
    git checkout HEAD -- rlsub/rollout/lanes.py rlsub/rollout/population.py

Each argument is ENV:D:GENERATIONS:ROUNDS (`rlsub.benches.jax.throughput`). Without the
compiled classic-control path, Acrobot, Pendulum and MountainCar run through gymnasium's
SyncVectorEnv at 26-78k useful steps per CPU-second, so they get 30 generations, not 300.
Prints one JSON list on stdout, a line per row on stderr.
"""

import json
import os
import sys

import rlsub  # noqa: F401  (first: rlsub pins the CPU dispatch of torch and numpy)
from rlsub.benches import jax_stack
from rlsub.benches.jax import throughput

jax_stack._modules()
out = []
for arg in sys.argv[1:]:
    env_id, d, generations, rounds = arg.split(":")
    t = throughput(env_id, d if d == "direct" else int(d), int(generations), int(rounds))
    t["load"] = os.getloadavg()
    out.append(t)
    rates = {k: f"{v:,.0f}" for k, v in t["useful_per_cpu_s"].items()}
    print(env_id, d, rates, f"ratio {t['ratio']:.3f}", file=sys.stderr, flush=True)
print(json.dumps(out))
