"""`rlsub bench jax`: the rlsub side it measures, and its one-line error without jax.

The JAX side needs the bench extra (not installed in CI); it is exercised by the
bench run archived in docs/bench/jax.json.
"""

import sys

import pytest

from rlsub.benches import jax as bench_jax
from rlsub.benches import jax_stack
from rlsub.core.errors import RlsubError


def test_rlsub_throughput_counts_useful_steps_only():
    r = bench_jax.rlsub_throughput(8, seconds=0.3)
    assert r["generations"] >= 1
    # CartPole runs in rlsub.rollout.fused: every simulated step is a useful one
    assert r["useful_steps"] == r["slot_steps"] > 0
    assert r["useful_per_cpu_s"] > 0 and r["cpu_s"] > 0


def test_without_jax_the_bench_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax now raises ImportError
    with pytest.raises(RlsubError, match=r"pip install --no-deps gymnax==1\.0\.1"):
        jax_stack._modules()


def test_without_jax_the_cli_exits_with_one_line(cli, tmp_path, monkeypatch):
    # a sitecustomize that hides jax from the child process
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['jax'] = None\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    proc = cli("bench", "jax", "--quick", check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bench jax needs jax" in lines[0], proc.stderr
