import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rlsub.algos.es import ESConfig, ESState, centred_ranks, es_ask, es_tell
from rlsub.algos.evaluate import evaluate_policy_file
from rlsub.core.config import experiment_from_dict, load_experiment, with_overrides
from rlsub.core.errors import ConfigError
from rlsub.experiment.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]


def test_centred_ranks_average_ties():
    np.testing.assert_allclose(centred_ranks(np.array([3.0, 1.0, 2.0])), [0.5, -0.5, 0.0])
    np.testing.assert_allclose(centred_ranks(np.array([5.0, 5.0, 5.0, 5.0])), 0.0)


def test_es_solves_a_quadratic_in_z():
    target = torch.linspace(-1, 1, 10)
    cfg = ESConfig(population=40, sigma=0.1, lr=0.05, l2=0.0)
    state = ESState(torch.zeros(10), torch.zeros(10), torch.zeros(10))
    gen = torch.Generator().manual_seed(0)
    start = float((state.z - target).norm())
    for _ in range(300):
        eps, Z = es_ask(state, cfg.population // 2, cfg.sigma, gen)
        fitness = -((Z - target) ** 2).sum(1).numpy()
        state = es_tell(state, eps, fitness, cfg)
    assert float((state.z - target).norm()) < 0.1 * start


def _tiny(tmp_path, **train):
    cfg = load_experiment(ROOT / "configs/cartpole_es.yaml")
    return with_overrides(cfg, train=train)


@pytest.mark.slow
def test_cartpole_solved_end_to_end_at_small_d(tmp_path):
    cfg = load_experiment(ROOT / "configs/cartpole_es.yaml")
    rec = run_trial(cfg, 4, seed=1, policy_dir=tmp_path, progress=False)
    assert rec.status == "done", rec.reason
    assert rec.final_eval_mean >= 475 and rec.solved
    replay = evaluate_policy_file(rec.policy_path, episodes=5)
    assert replay["eval_mean"] >= 400


def test_es_trial_record_and_replay(tmp_path):
    cfg = _tiny(tmp_path, generations=3, population=8, eval_every=1)
    rec = run_trial(cfg, 3, seed=0, policy_dir=tmp_path, progress=False)
    assert rec.status == "done" and rec.d == 3 and rec.D == 562 and rec.env_steps > 0
    assert len(rec.curve) >= 1 and rec.solved_score == 475.0
    again = run_trial(cfg, 3, seed=0, policy_dir=tmp_path, progress=False)
    assert again.final_eval_mean == rec.final_eval_mean  # same config and seed, same result
    assert again.curve == rec.curve
    assert Path(rec.policy_path).stat().st_size < 20_000


def test_cmaes_runs(tmp_path):
    cfg = experiment_from_dict(
        {
            "name": "cp_cma",
            "env": "cartpole",
            "algorithm": "cmaes",
            "network": {"name": "mlp", "kwargs": {"hidden": [8]}},
            "train": {"generations": 2, "population": 6, "eval_every": 1},
        }
    )
    rec = run_trial(cfg, 2, seed=0, progress=False)
    assert rec.status == "done" and rec.env_steps > 0
    assert rec.info["generations"] == 2  # what `rlsub suite --plan` prices a CMA-ES trial by


@pytest.mark.parametrize(
    "train,needle",
    [
        ({"population": -4}, "population must be an even number >= 2"),
        ({"sigma": 0}, "sigma must be > 0"),
        ({"sigmaa": 0.1}, "unknown key 'sigmaa'"),
        ({"generations": "many"}, "expected an integer"),
    ],
)
def test_bad_es_config_values(train, needle):
    with pytest.raises(ConfigError, match=needle):
        experiment_from_dict(
            {
                "name": "x",
                "env": "cartpole",
                "algorithm": "es",
                "network": {"name": "mlp"},
                "train": train,
            }
        )


def test_train_cli_json_and_bad_config(cli, tmp_path):
    cfg = tmp_path / "cp.yaml"
    cfg.write_text(
        (ROOT / "configs/cartpole_es.yaml")
        .read_text()
        .replace("generations: 150", "generations: 2")
    )
    out = cli("train", str(cfg), "--d", "2", "--seed", "0", "--out", str(tmp_path), "--json").stdout
    rec = json.loads(out)
    for key in ("final_eval_mean", "final_eval_std", "solved", "d", "D", "env_steps", "wall_s"):
        assert key in rec
    replay = json.loads(cli("eval", rec["policy_path"], "--episodes", "3", "--json").stdout)
    assert replay["episodes"] == 3 and replay["d"] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("sigma: 0.5", "sigma: -1"))
    proc = cli("train", str(bad), "--d", "2", check=False)
    assert proc.returncode == 2 and "sigma must be > 0" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ray_shards_hold_whole_pairs_and_map_back():
    """Without Ray: actors' shards (rlsub.algos.es_ray.ESShard, in-process) hold whole antithetic
    pairs, their Z rows are the generation's rows exactly, and their returns, gathered back
    to the members' order, equal the one-env rollout's (seeded CartPole: returns differ)."""
    from rlsub.algos.es_ray import ESShard, gather, shard_members
    from rlsub.algos.es_setup import build_setup
    from rlsub.rollout.population import population_rollout

    assert [m.tolist() for m in shard_members(8, 3)] == [[0, 1, 4, 5], [2, 6], [3, 7]]
    assert [m.tolist() for m in shard_members(6, 9)] == [[0, 3], [1, 4], [2, 5]]
    assert [m.tolist() for m in shard_members(3, 2)] == [[0, 1], [2]]  # odd: contiguous
    train = {"population": 8, "episodes_per_member": 2, "obs_norm": False, "sigma": 0.5}
    cfg = with_overrides(load_experiment(ROOT / "configs/cartpole_es.yaml"), train=train)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, generator=torch.Generator().manual_seed(0)) * 10
    noise_state = gen.get_state()
    eps, Z = es_ask(ESState(z, z * 0, z * 0), 4, 0.5, gen)
    s = build_setup(cfg, 3, 0, 16)
    env, dims, sub = s.env, s.dims, s.sub
    ref = population_rollout(sub, Z, env, dims, 2, 5, pairs=(z, 0.5 * eps))
    assert len(np.unique(ref.returns)) > 2
    shards = shard_members(8, 3)
    parts = [ESShard(cfg.to_dict(), 3, 0, m.tolist()) for m in shards]
    for p, m in zip(parts, shards, strict=True):
        Zs, pairs = p.population(z.numpy(), noise_state.numpy())
        assert torch.equal(Zs, Z[m]) and pairs is not None and torch.equal(pairs[0], z)
        torch.testing.assert_close(pairs[1], 0.5 * eps[m[: len(m) // 2]], rtol=0, atol=0)
    got = gather(shards, [p.rollout(z.numpy(), noise_state.numpy(), 5) for p in parts], 8)
    np.testing.assert_array_equal(got.returns, ref.returns)
    np.testing.assert_array_equal(got.lengths, ref.lengths)
    assert got.env_steps == ref.env_steps
    for p in parts:
        p.close()
    env.close()


@pytest.mark.slow
def test_es_on_ray_equals_local_on_cartpole(ray_local):
    """backend: ray with whole antithetic pairs per actor (population 8: 2 + 2 pairs, 6:
    2 + 1) gives the in-process trainer's curve, generation by generation. reseed: true;
    with reseed: false CartPole's vector env draws every slot's unseeded reset from one
    shared RNG, so results depend on how the slots are split. More actors than the Ray
    cluster's CPUs is one clear error, not a hang."""
    from rlsub.core.errors import RlsubError

    cfg = load_experiment(ROOT / "configs/cartpole_es.yaml")
    for population in (8, 6):
        train = {
            "generations": 4,
            "population": population,
            "episodes_per_member": 2,
            "obs_norm": False,
            "eval_every": 1,
            "stop_when_solved": False,
        }
        ref = run_trial(with_overrides(cfg, train=train), 3, seed=0, progress=False, catch=False)
        assert len({p["train_mean"] for p in ref.curve}) > 1  # returns differ: a real check
        ray_cfg = with_overrides(cfg, train={**train, "backend": "ray", "workers": 2})
        rec = run_trial(ray_cfg, 3, seed=0, progress=False, catch=False)
        assert rec.status == "done" and rec.info["backend"] == "ray"
        assert rec.curve == ref.curve and rec.env_steps == ref.env_steps
        assert rec.final_eval_mean == ref.final_eval_mean
    big = with_overrides(cfg, train={**train, "backend": "ray", "workers": 3, "obs_norm": False})
    with pytest.raises(RlsubError, match="workers=3 needs 3 CPUs"):
        run_trial(big, 3, seed=0, progress=False, catch=False)


def test_progress_bar_moves_with_generations(tmp_path, capsys):
    """The bar reads g/generations at each evaluation line (it used to lag behind)."""
    data = {k: v for k, v in load_experiment("cartpole_es").to_dict().items() if k != "train"}
    train = {"generations": 4, "population": 8, "eval_every": 2, "stop_when_solved": False}
    cfg = experiment_from_dict({**data, "train": train})
    run_trial(cfg, 2, seed=0, policy_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    counts = [int(n) for n in re.findall(r"\| *(\d+)/4 ", err)]
    assert counts and counts == sorted(counts) and counts[-1] == 4, err[-2000:]
    after = err.split("generation 2:", 1)[1].split("generation 4:", 1)[0]
    assert re.search(r"\| *2/4 ", after), err[-2000:]  # redrawn after the line: 2 of 4
