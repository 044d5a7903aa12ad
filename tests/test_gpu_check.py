"""scripts/gpu_check.sh and `rlsub bench gpu`, on the CPU: the code that runs on a GPU
machine, with tiny sizes (the GPU's own figures: docs/BENCHMARKS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlsub.benches.gpu import correctness

ROOT = Path(__file__).resolve().parents[1]


def test_correctness_checks_every_projection_and_the_subspace_forwards():
    r = correctness(torch.device("cpu"), quick=True)
    keys = {"projection_dense", "projection_sparse", "projection_fastfood"}
    assert keys | {"subspace_mlp", "subspace_es_pong", "passed"} == set(r)
    assert r["passed"] is True
    for key in keys:
        assert r[key]["forward"] == 0.0 and r[key]["backward"] == 0.0  # same device: exact


@pytest.mark.slow
def test_gpu_check_script_on_the_cpu(tmp_path):
    env = {**os.environ, "RLSUB_DEVICE": "cpu", "RLSUB_GPU_QUICK": "1", "OUT": str(tmp_path),
           "PYTHON": sys.executable}  # fmt: skip
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "gpu.json").read_text())
    assert r["device"] == "cpu" and r["correctness"]["passed"]
    assert r["es_pong"]["agent_steps_s"] > 0 and r["ppo_pong"]["train_steps_s"] > 0
    assert r["mnist_fc"]["batched_3_seeds"]["ratio"] > 0
    assert {"pong_es", "pong_ppo", "pong_ppo_gpu", "mnist_fc_100_epochs"} == set(r["prices"])
    assert all(p["hours"] > 0 and p["trials"] > 0 for p in r["prices"].values())
    assert "correctness passed" in proc.stdout
