"""Opening a file runs no code the user did not choose (rlsub.core.trust): crafted policy
files, SB3 files (rlsub's pickle-free one and SB3's own zip), stores and records that
name code are refused with one line, or read as data, and the code never runs."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from rlsub.algos.evaluate import evaluate_policy_file
from rlsub.cli.main import main
from rlsub.core import trust
from rlsub.core.subspace import Subspace
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.store import Store


@pytest.fixture(autouse=True)
def _untrusted(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(trust.ENV_VAR, raising=False)
    monkeypatch.delenv(trust.PICKLE_ENV_VAR, raising=False)
    trust.reset()
    yield
    trust.reset()


@pytest.fixture
def payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """(module name, marker): importing the module (on sys.path) creates the marker."""
    marker = tmp_path / "PWNED"
    mod = tmp_path / "mods" / "pwn_mod.py"
    mod.parent.mkdir()
    mod.write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n"
        "SPEC = {'name': 'x', 'id': 'CartPole-v1'}\n"
        "def make(**kw):\n    raise SystemExit('ran')\n"
    )
    monkeypatch.syspath_prepend(str(mod.parent))
    return "pwn_mod", marker


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _policy(tmp_path: Path, network: dict[str, Any] | None = None, **extra: Any) -> Path:
    sub = Subspace.from_spec("mlp", {"in_dim": 4, "out_dim": 2, "hidden": [4]}, 0, 3, "dense")
    path = sub.save(tmp_path / "p.pt", extra={"env": "cartpole", "action": "argmax", **extra})
    state = torch.load(path, weights_only=True)
    if network is not None:
        state["network"] = network
    torch.save(state, path)
    return path


def test_a_good_policy_file_still_replays(tmp_path: Path) -> None:
    out = evaluate_policy_file(str(_policy(tmp_path)), episodes=2)
    assert out["episodes"] == 2 and out["d"] == 3


def test_policy_naming_os_system_runs_nothing(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "PWNED"
    path = _policy(
        tmp_path, {"name": "os:system", "kwargs": {"command": f"touch {marker}"}, "seed": 0}
    )
    line = _one_line_exit_2(["eval", str(path), "--episodes", "1"], capsys)
    assert "'os:system'" in line and "--trust os" in line and trust.ENV_VAR in line
    with pytest.raises(trust.UntrustedError, match="import path"):
        Subspace.load(path)
    assert not marker.exists()


def test_policy_naming_a_module_does_not_import_it(tmp_path: Path, payload, capsys) -> None:
    mod, marker = payload
    path = _policy(tmp_path, {"name": f"{mod}:make", "kwargs": {}, "seed": 0})
    line = _one_line_exit_2(["eval", str(path)], capsys)
    assert f"--trust {mod}" in line
    assert not marker.exists()


def test_env_import_path_in_a_policy_file_is_refused(tmp_path: Path, payload, capsys) -> None:
    mod, marker = payload
    path = _policy(tmp_path, env=f"{mod}:SPEC")
    line = _one_line_exit_2(["eval", str(path)], capsys)
    assert "env spec" in line and f"{mod}:SPEC" in line
    assert not marker.exists()


@pytest.mark.parametrize("field", ["id", "requires"])
def test_env_yaml_naming_a_module_is_refused(tmp_path: Path, payload, capsys, field) -> None:
    mod, marker = payload
    spec = {"name": "x", "id": "CartPole-v1", "max_episode_steps": 20}
    spec[field] = f"{mod}:Evil-v0" if field == "id" else mod
    (tmp_path / "x.yaml").write_text(json.dumps(spec))
    path = _policy(tmp_path, env=str(tmp_path / "x.yaml"))
    assert mod in _one_line_exit_2(["eval", str(path)], capsys)
    assert not marker.exists()


def test_trusted_module_is_allowed(tmp_path: Path, payload, monkeypatch, capsys) -> None:
    mod, marker = payload
    path = _policy(tmp_path, {"name": f"{mod}:make", "kwargs": {}, "seed": 0})
    monkeypatch.setenv(trust.ENV_VAR, f"other,{mod}")
    with pytest.raises(SystemExit, match="ran"):  # the trusted builder ran
        main(["eval", str(path)])
    assert marker.exists()


def test_trust_flag_allows_a_users_network(tmp_path: Path, capsys) -> None:
    sub = Subspace.from_spec("user_plugins:tiny_policy", {"in_dim": 4, "out_dim": 2}, 0, 2)
    path = sub.save(tmp_path / "u.pt", extra={"env": "cartpole", "action": "argmax"})
    assert "user_plugins" in _one_line_exit_2(["eval", str(path)], capsys)
    assert main(["eval", str(path), "--episodes", "1", "--trust", "user_plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["d"] == 2


# ------------------------------------------------------------------------ SB3 files
def _sb3_zip(tmp_path: Path, marker: Path) -> Path:
    """An SB3-style zip whose data holds a cloudpickle payload (as a shared file might)."""

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return os.system, (f"touch {marker}",)

    blob = base64.b64encode(pickle.dumps(Payload())).decode()
    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": blob}}
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data))
        z.writestr("_stable_baselines3_version", "2.0.0")
    path.with_suffix(".json").write_text(json.dumps({"algorithm": "ppo", "env": "cartpole"}))
    return path


def test_sb3_zip_is_not_unpickled(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "PWNED"
    path = _sb3_zip(tmp_path, marker)
    line = _one_line_exit_2(["eval", str(path)], capsys)
    assert "pickle" in line and "--trust-pickle" in line
    assert not marker.exists()
    # the crafted file is a real payload: trusted, SB3's loader runs it
    assert main(["eval", str(path), "--trust-pickle"]) == 2  # then SB3 finds no spaces
    assert marker.exists()


def test_sb3_policy_file_naming_a_trainer_runs_nothing(tmp_path: Path, payload, capsys) -> None:
    mod, marker = payload
    state = {
        "format": "rlsub-sb3-v2",
        "d": 3,
        "seed": 0,
        "policy": {},
        "extra_json": json.dumps(
            {"config": {"name": "x", "env": "cartpole", "algorithm": f"{mod}:TRAINER"}}
        ),
    }
    torch.save(state, tmp_path / "s.pt")
    assert f"{mod}:TRAINER" in _one_line_exit_2(["eval", str(tmp_path / "s.pt")], capsys)
    assert not marker.exists()


# ----------------------------------------------------------------- stores, records
def _store_naming(tmp_path: Path, env: str) -> Path:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        for d, score in (("direct", 100.0), (2, 95.0)):
            direct = d == "direct"
            st.put(
                TrialRecord(
                    config_hash="abc",
                    name="evil",
                    task=env,
                    algorithm="es",
                    network="mlp",
                    projection="identity" if direct else "sparse",
                    d=64 if direct else int(d),
                    direct=direct,
                    seed=0,
                    status="done",
                    D=64,
                    final_eval_mean=score,
                    best_eval_mean=score,
                    curve=[{"step": 1.0, "value": score}],
                    config={"env": env, "algorithm": "es", "sweep": {"threshold": 0.9}},
                )
            )
    return path


def test_dint_and_report_import_nothing_a_store_names(tmp_path: Path, payload, capsys) -> None:
    mod, marker = payload
    store = _store_naming(tmp_path, f"{mod}:SPEC")
    assert main(["dint", str(store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["d_int90"] is not None
    assert main(["report", str(store), "--out", str(tmp_path / "plots"), "--json"]) == 0
    capsys.readouterr()
    record = tmp_path / "r.json"
    with Store(store, readonly=True) as st:
        record.write_text(json.dumps(st.records()[0].to_dict()))
    assert main(["curves", str(record), "--out", str(tmp_path / "c.png"), "--json"]) == 0
    assert not marker.exists()


def test_a_stores_bundled_env_still_gives_its_floor(tmp_path: Path) -> None:
    from rlsub.analysis.estimate import config_floor

    assert config_floor({"env": "cartpole"}) == pytest.approx(22.0, abs=3)
    assert config_floor({"env": "pwn_mod:SPEC"}) is None
