"""A fresh demo run checked against the committed stores, by the reproducibility contract.

    rlsub demo --out /tmp/demo_fresh
    python docs/bench/repro_check.py /tmp/demo_fresh [docs/stores/demo]

The contract (x86-64 with AVX2 and FMA, the same package versions, rlsub imported
before torch so that `rlsub.pin_cpu_dispatch` holds):

- BIT_EXACT configs: every trial (d, direct, seed) in both stores has the same final
  and best scores, environment steps and learning curve, and neither store has a trial
  the other lacks.
- every config: each store's d_int90 (interpolated) lies inside the other's interval.

Prints one line per violation and exits 1 if there is any, else prints a summary.
"""

import math
import sys

from rlsub.analysis.estimate import estimate_group
from rlsub.experiment.store import Store

BIT_EXACT = ("cartpole_es", "inverted_pendulum_es", "digits_fc")
CONFIGS = ("cartpole_es", "inverted_pendulum_es", "digits_fc")


def trials(path: str) -> dict:
    with Store(path, readonly=True) as st:
        return {(r.d, r.direct, r.seed): r for r in st.records()}


def outcome(r) -> str:  # type: ignore[no-untyped-def]
    """What a bit-exact trial must repeat (as text: NaN equals NaN)."""
    return repr((r.status, r.final_eval_mean, r.best_eval_mean, r.env_steps, r.curve))


def d_int90(records: list) -> tuple[float, float, float]:
    """(point, low, high) of the d_int90 estimate; not reached or unbounded: +-inf."""
    e = estimate_group(records)["d_int90"] or {}
    point = e.get("interpolated")
    lo, hi = e.get("interpolated_interval") or (None, None)
    return (
        math.inf if point is None else point,
        -math.inf if lo is None else lo,
        math.inf if hi is None else hi,
    )


def check(fresh_dir: str, ref_dir: str) -> list[str]:
    bad = []
    for name in CONFIGS:
        fresh, ref = trials(f"{fresh_dir}/{name}.sqlite"), trials(f"{ref_dir}/{name}.sqlite")
        if name in BIT_EXACT:
            for key in sorted(set(fresh) | set(ref), key=str):
                a, b = fresh.get(key), ref.get(key)
                if a is None or b is None:
                    bad.append(
                        f"{name} d={key[0]} direct={key[1]} seed={key[2]}: only in one store"
                    )
                elif outcome(a) != outcome(b):
                    bad.append(
                        f"{name} d={key[0]} direct={key[1]} seed={key[2]}: "
                        f"{b.final_eval_mean} (committed) != {a.final_eval_mean} (fresh)"
                    )
        (pa, la, ha), (pb, lb, hb) = d_int90(list(fresh.values())), d_int90(list(ref.values()))
        if not (lb <= pa <= hb and la <= pb <= ha):
            bad.append(
                f"{name} d_int90: fresh {pa:.4g} [{la:.4g}, {ha:.4g}] vs "
                f"committed {pb:.4g} [{lb:.4g}, {hb:.4g}]: a point outside the other's interval"
            )
    return bad


if __name__ == "__main__":
    fresh_dir = sys.argv[1]
    ref_dir = sys.argv[2] if len(sys.argv) > 2 else "docs/stores/demo"
    violations = check(fresh_dir, ref_dir)
    for line in violations:
        print(line)
    if violations:
        sys.exit(1)
    print(f"{fresh_dir} matches {ref_dir}: bit-exact {', '.join(BIT_EXACT)}; d_int90 agree")
