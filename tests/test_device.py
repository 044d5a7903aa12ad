"""train.device (rlsub.core.device): resolution, validation, the config hash, and the device
paths of every trainer run on the CPU by the same code that runs them on a GPU.

There is no GPU here or in CI: these tests check that an explicit device goes
through the `.to(device)` paths and gives the CPU's results, and that asking for
a GPU that is not there is one clear error. The GPU itself is checked by
scripts/gpu_check.sh on a GPU machine (docs/BENCHMARKS.md).
"""

import pytest
import torch

from rlsub.core.config import ConfigError, load_experiment, with_overrides
from rlsub.core.device import resolve
from rlsub.core.errors import RlsubError
from rlsub.core.subspace import Subspace

CUDA = torch.cuda.is_available()


def test_auto_is_cpu_without_a_gpu_and_names_are_checked():
    assert resolve("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve("cpu") == torch.device("cpu")
    with pytest.raises(RlsubError, match="allowed: auto, cpu, cuda or cuda:N"):
        resolve("gpu")
    if not CUDA:
        with pytest.raises(RlsubError, match="torch sees no CUDA GPU"):
            resolve("cuda:0", "x.yaml: train.device")


@pytest.mark.parametrize("config", ["cartpole_es", "cartpole_ppo", "digits_fc"])
def test_device_is_validated_and_not_part_of_the_hash(config):
    cfg = load_experiment(config)
    assert cfg.train.device == "auto"
    on_cpu = with_overrides(cfg, train={"device": "cpu"})
    assert on_cpu.hash == cfg.hash  # where it runs is not what it is
    with pytest.raises(ConfigError, match="device must be one of"):
        with_overrides(cfg, train={"device": "tpu"})


def test_supervised_explicit_device_gives_the_auto_result():
    from rlsub.algos.supervised import train

    cfg = with_overrides(load_experiment("digits_fc"), train={"epochs": 2})
    a = train(cfg, 20, 0, progress=False)
    b = train(with_overrides(cfg, train={"device": "cpu"}), 20, 0, progress=False)
    assert a.curve == b.curve and torch.equal(a.subspace.z, b.subspace.z)
    assert b.subspace.z.device.type == "cpu"  # handed back on the CPU
    assert b.info["device"] == "cpu"
    assert a.info["device"] == ("cuda" if CUDA else "cpu")


def test_es_torch_loop_device_path_equals_the_kernels():
    """The torch loop (the path a GPU takes: Z and observations moved to the Subspace's
    device, outputs and statistics back) gives the CPU kernels' results."""
    import numpy as np

    from rlsub.envs.spec import env_dims, load_env_spec, policy_network_kwargs
    from rlsub.envs.vector import make_vec_env
    from rlsub.rollout.population import population_rollout
    from rlsub.rollout.slots import RunningNorm

    env = make_vec_env(load_env_spec("cartpole"), 12)
    dims = env_dims(env)
    kw = policy_network_kwargs("mlp", {"hidden": [8], "activation": "tanh"}, dims)
    sub = Subspace.from_spec("mlp", kw, 0, 4, "fastfood", 1).to(torch.device("cpu"))
    Z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    norms = [RunningNorm(dims.obs_shape), RunningNorm(dims.obs_shape)]
    a, b = (
        population_rollout(sub, Z, env, dims, 2, 3, n, True, kernels=k)
        for n, k in zip(norms, (True, False), strict=True)
    )
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_allclose(norms[0].mean, norms[1].mean, rtol=1e-5)


def test_es_setup_puts_flat_policies_on_the_cpu_under_auto():
    from rlsub.algos.es_setup import build_setup

    cfg = load_experiment("cartpole_es")
    sub = build_setup(cfg, 4, 0, 2).sub
    assert sub.theta0.device.type == "cpu"
    if not CUDA:
        with pytest.raises(RlsubError, match="no CUDA GPU"):
            build_setup(with_overrides(cfg, train={"device": "cuda"}), 4, 0, 2)


def test_sb3_device_auto_keeps_mlps_on_the_cpu():
    from rlsub.algos.pg import sb3_device

    assert sb3_device("auto", (4,), "x").type == "cpu"
    assert sb3_device("auto", (4, 84, 84), "x").type == ("cuda" if CUDA else "cpu")
    assert sb3_device("cpu", (4, 84, 84), "x").type == "cpu"


def test_cli_device_flag(cli, tmp_path):
    bad = cli("train", "cartpole_es", "--d", "2", "--device", "tpu", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "allowed: auto, cpu, cuda or cuda:N" in bad.stderr
    if not CUDA:
        gpu = cli("train", "cartpole_es", "--d", "2", "--device", "cuda", check=False)
        assert gpu.returncode == 2 and "no CUDA GPU" in gpu.stderr
        store = tmp_path / "s.sqlite"
        sweep = cli("sweep", "cartpole_es", "--device", "cuda", "--store", str(store), check=False)
        assert sweep.returncode == 2 and "no CUDA GPU" in sweep.stderr
        assert not store.exists()  # refused before the store exists
    cma = cli("train", "inverted_pendulum_es", "--d", "2", "--device", "cpu", check=False)
    assert cma.returncode == 2 and "has no train.device" in cma.stderr
