"""Trial by trial, which results of two stores of the same config differ.

mkdir -p /tmp/olddemo && for f in cartpole_es inverted_pendulum_es; do
  git show 8eb5d7f:docs/stores/demo/$f.sqlite > /tmp/olddemo/$f.sqlite; done
python docs/bench/compare_stores.py /tmp/olddemo docs/stores/demo cartpole_es inverted_pendulum_es
"""

import sys

from rlsub.experiment.store import Store


def results(path: str) -> dict:
    with Store(path, readonly=True) as st:
        return {(r.d, r.direct, r.seed): (r.final_eval_mean, r.env_steps) for r in st.records()}


old_dir, new_dir, *names = sys.argv[1:]
for name in names:
    old, new = results(f"{old_dir}/{name}.sqlite"), results(f"{new_dir}/{name}.sqlite")
    common = sorted(set(old) & set(new))
    differ = [k for k in common if old[k] != new[k]]
    print(f"{name}: {len(common)} trials in both, {len(common) - len(differ)} identical")
    for k in differ:
        print(f"  d={k[0]} direct={k[1]} seed={k[2]}: {old[k]} -> {new[k]}")
