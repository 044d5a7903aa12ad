"""Env specs inline in a config or by path (rlsub.envs.spec): validated as spec files
are, and rows labelled by the spec's name."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import rlsub
from rlsub.algos.evaluate import evaluate_policy_file
from rlsub.analysis.estimate import config_floor
from rlsub.core.config import experiment_from_dict, load_experiment
from rlsub.core.errors import ConfigError
from rlsub.envs.spec import inline_spec, load_env_spec

ES = {"generations": 2, "population": 8, "eval_every": 2, "eval_episodes": 2}


def _cfg(env, **more):
    return {
        "name": "inline",
        "env": env,
        "algorithm": "es",
        "network": {"name": "mlp", "kwargs": {"hidden": [4]}},
        "train": ES,
        **more,
    }


def test_inline_spec_fills_from_gymnasium_and_keeps_its_own_fields():
    spec = inline_spec({"id": "Acrobot-v1", "random_score": -499.0})
    assert spec.name == "Acrobot-v1" and spec.random_score == -499.0
    assert spec.max_episode_steps == 500 and spec.solved_score == -100.0  # gymnasium's
    named = load_env_spec({"id": "Acrobot-v1", "name": "acrobot", "solved_score": -90})
    assert named.name == "acrobot" and named.solved_score == -90.0


@pytest.mark.parametrize(
    "env, needle",
    [
        (
            {"id": "Acrobot-v1", "solved": 1},
            "inline env spec Acrobot-v1: unknown key 'solved'; allowed: name, id",
        ),
        ({"id": "Acrobot-v1", "eval_episodes": 0}, "eval_episodes must be > 0"),
        ({"id": "Acrobot-v1", "vector": "gpu"}, "'gpu' is not allowed; allowed: native"),
    ],
)
def test_inline_spec_is_checked_like_a_spec_file(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_env_spec(env)


def test_config_needs_an_id_in_an_inline_spec():
    with pytest.raises(ConfigError, match="an inline env spec needs 'id'"):
        experiment_from_dict(_cfg({"random_score": 1.0}), "x.yaml")
    with pytest.raises(ConfigError, match="env: expected a mapping"):
        experiment_from_dict(_cfg([1, 2]), "x.yaml")


def test_inline_spec_trains_labels_the_row_and_replays(tmp_path: Path):
    env = {"id": "CartPole-v1", "name": "cp_inline", "random_score": 21.0, "eval_episodes": 2}
    cfg = experiment_from_dict(_cfg(env), "inline.yaml")
    assert cfg.task == "cp_inline" and config_floor(cfg.to_dict()) == 21.0
    rec = rlsub.train(cfg, d=3, seed=0, policy_dir=str(tmp_path))
    assert rec.status == "done" and rec.task == "cp_inline" and rec.D == 4 * 4 + 4 + 4 * 2 + 2
    replay = evaluate_policy_file(rec.policy_path, 2, 0)
    assert replay["env"] == "cp_inline" and math.isfinite(replay["eval_mean"])


def test_spec_by_path_labels_rows_by_its_name(tmp_path: Path):
    path = tmp_path / "specs" / "my_cartpole.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"name": "cart", "id": "CartPole-v1", "random_score": 20.0}))
    cfg = experiment_from_dict(_cfg(str(path)), "x.yaml")
    assert cfg.task == "cart" and load_env_spec(str(path)).name == "cart"
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text("id: CartPole-v1\n")
    assert experiment_from_dict(_cfg(str(nameless)), "x.yaml").task == "nameless"


def test_a_bad_inline_spec_names_the_config_file(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_cfg({"id": "Acrobot-v1", "solved": 1})))
    cfg = load_experiment(path)
    with pytest.raises(ConfigError) as err:
        rlsub.train(cfg, d=2, seed=0)
    assert str(err.value).startswith(f"{path}: env (inline spec Acrobot-v1): unknown key 'solved'")


def test_errors_of_a_dict_config_name_it():
    """From Python, a config dict's later errors name it (they read '<dict>:' before)."""
    with pytest.raises(ConfigError, match=r"^config 'inline': env \(inline spec Acrobot-v1\)"):
        rlsub.train(_cfg({"id": "Acrobot-v1", "solved": 1}), d=2, seed=0)


def test_fast_path_is_declared_by_the_spec():
    """The rollouts' fast paths follow the spec (EnvSpec.fast_path), never the env's class."""
    assert load_env_spec("cartpole").fast_path == "cartpole"
    assert load_env_spec("cartpole", "v0").fast_path == "cartpole"
    assert load_env_spec("inverted_pendulum").fast_path is None
    # implied where the vector env takes no other way: a native CartPole, ale-py's envs
    assert inline_spec({"id": "CartPole-v1", "vector": "native"}).fast_path == "cartpole"
    assert inline_spec({"id": "CartPole-v1"}).fast_path is None  # gymnasium's sync default
    with pytest.raises(ConfigError, match="fast_path: ale needs vector: ale"):
        inline_spec({"id": "CartPole-v1", "fast_path": "ale"})
    with pytest.raises(ConfigError, match="fast_path: cartpole needs vector: native"):
        inline_spec({"id": "CartPole-v1", "vector": "sync", "fast_path": "cartpole"})
