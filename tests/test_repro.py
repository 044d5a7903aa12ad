"""Same bits on any x86-64 machine (issue 31): the numba kernels compile without fast-math,
so numba's CPU target does not change a rollout, and importing rlsub first pins torch's,
MKL's and OpenBLAS's CPU dispatch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rlsub
from rlsub.core import fastfood_kernels, sparse_ell
from rlsub.rollout import fused, lanes

ROOT = Path(__file__).resolve().parent.parent

# InvertedPendulum's policy net (tanh, box action) on 256 lanes through the lane kernel,
# base + P z and P^T g through the sparse (ELL) kernels, and Fastfood's both ways: the digest
# of their float32 outputs
KERNELS = """
import hashlib, numpy as np, torch
from rlsub.algos.es_setup import build_setup
from rlsub.core import sparse_ell
from rlsub.core.config import load_experiment
from rlsub.rollout import lanes
rng = np.random.default_rng(0)
s = build_setup(load_experiment("inverted_pendulum_es"), "direct", 0, 1)
spec, env, dims, seeds, sub = s.spec, s.env, s.dims, s.seeds, s.sub
Z = torch.as_tensor(rng.standard_normal((256, sub.d)), dtype=torch.float32)
pol = lanes.LanePolicy(sub.module, lanes.lane_weights(sub, Z, 1), dims)
norms = lanes.LaneNorms([None], np.zeros(256, np.int64), dims.obs_shape[0], False)
obs = rng.standard_normal((256, dims.obs_shape[0]))
net = (pol.w, pol.sizes, pol.tanh, pol.buf, norms.kernel_args, norms.s1, norms.s2, False)
lanes.act_lanes(obs, np.zeros(256, dtype=bool), pol.lanes, 256, *net, *pol.heads)
D, d, n = 5000, 50, 20000
m = sparse_ell.build(rng.integers(0, D, n), rng.integers(0, d, n), rng.random(n) < 0.5,
                     rng.random(d).astype(np.float32), D)
out = sparse_ell.affine(m, rng.standard_normal(d).astype(np.float32),
                        rng.standard_normal(D).astype(np.float32))
back = sparse_ell.transpose(m, [(0, rng.standard_normal(D).astype(np.float32))])
from rlsub.core.fastfood import FastfoodProjection
P = FastfoodProjection(D, d, 0)
ff = P.forward_np(rng.standard_normal((2, d)).astype(np.float32))
ff_back = P.transpose_np(rng.standard_normal((2, D)).astype(np.float32))
print(hashlib.sha1(b"".join(a.tobytes() for a in (pol.af, out, back, ff, ff_back))).hexdigest())
"""


def test_kernels_compile_without_fast_math():
    kernels = [getattr(m, n) for m in (lanes, fused) for n in dir(m)]
    kernels = [k for k in kernels if hasattr(k, "targetoptions")]
    assert len(kernels) >= 5
    assert all(not k.targetoptions.get("fastmath") for k in kernels)
    assert not sparse_ell._kernel().targetoptions.get("fastmath")
    assert not sparse_ell._kernel_t().targetoptions.get("fastmath")
    ff = [getattr(fastfood_kernels, n) for n in dir(fastfood_kernels)]
    ff = [k for k in ff if hasattr(k, "targetoptions")]
    assert len(ff) >= 8
    assert all(not k.targetoptions.get("fastmath") for k in ff)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())


@pytest.mark.slow
def test_kernel_outputs_are_the_same_for_every_numba_target(tmp_path):
    pytest.importorskip("mujoco")
    digests = set()
    for cpu in ("generic", None):  # no FMA nor AVX vs numba's default, this machine's CPU
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_NAME"}
        env["NUMBA_CACHE_DIR"] = str(tmp_path / (cpu or "host"))  # compile afresh
        if cpu:
            env["NUMBA_CPU_NAME"] = cpu
        out = subprocess.run(
            [sys.executable, "-c", KERNELS], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_importing_rlsub_first_pins_the_cpu_dispatch():
    if not {"avx2", "fma"} <= _cpu_flags():
        pytest.skip("pinned only on x86-64 CPUs with AVX2 and FMA")
    env = {k: v for k, v in os.environ.items() if k not in [c[0] for c in rlsub.CPU_DISPATCH]}
    code = (
        "import rlsub, torch, os, numpy as np; "
        "print(rlsub.pin_cpu_dispatch(), torch.backends.cpu.get_cpu_capability(), "
        "os.environ['MKL_CBWR'], os.environ['OPENBLAS_CORETYPE'], "
        "np._core._multiarray_umath.__cpu_features__['X86_V4'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.split() == ["True", "AVX2", "AVX2", "Haswell", "False"], out.stderr


def test_numba_cache_folder_follows_the_kernel_sources(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """numba checks only a kernel's own file for staleness: rollout.fused inlines
    rollout.lanes, and kept stale fast-math code after lanes.py changed. rlsub names the
    cache folder after a hash of every kernel source, so any change recompiles all."""
    import subprocess
    import sys

    code = "import os, rlsub; print(os.environ.get('NUMBA_CACHE_DIR'))"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    path = out.stdout.strip()
    assert path.startswith(str(tmp_path / "rlsub" / "numba-")), out.stderr
    assert os.path.isdir(path)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # the user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "mine")


def test_the_18_trial_cartpole_sweep_reproduces_its_archive() -> None:
    """docs/bench/sweep18.json: the 18 trials of docs/bench/sweep18.py, archived before and
    after the ES loops became one (rlsub.algos.es_loop); every restructuring keeps them."""
    import json

    from rlsub.algos.es import train
    from rlsub.core.config import load_experiment

    archive = json.loads((ROOT / "docs" / "bench" / "sweep18.json").read_text())
    assert archive["identical"]
    cfg = load_experiment("cartpole_es")
    for d, seed, score, steps, generations in archive["trials"]:
        r = train(cfg, d if d == "direct" else int(d), seed, progress=False)
        assert [r.final_eval_mean, r.env_steps, r.info["generations"]] == [
            score,
            steps,
            generations,
        ], (d, seed)
