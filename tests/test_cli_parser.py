"""The command line explains itself (rlsub.cli.parser): --version, help text for every
command and argument, the bundled listing, and answers without importing torch."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlsub import __version__
from rlsub.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "gymnasium", "stable_baselines3", "numba", "scipy", "matplotlib", "sklearn")
PROBE = """
import sys
from pathlib import Path
from rlsub.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("LOADED", *sorted(m for m in {heavy} if m in sys.modules), file=sys.stderr)
"""


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_and_argument_has_help():
    parser = build_parser()
    commands = _commands(parser)
    assert {"configs", "info", "train", "eval", "sweep", "dint", "report", "demo"} <= set(commands)
    missing = []
    for name, p in commands.items():
        if not (p.description and p.epilog and "rlsub " + name in p.epilog):
            missing.append(f"{name}: description or example")
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                missing.append(f"{name} {action.dest}")
    assert missing == [], missing


def test_help_shows_defaults_and_examples(cli):
    out = cli("train", "--help").stdout
    assert "(default: 0)" in out and "(default: runs/policies)" in out  # --seed, --out
    assert "examples:" in out and "rlsub train cartpole_es --d 8" in out
    assert "(default: None)" not in out and "(default: False)" not in out


def test_version(cli):
    out = cli("--version").stdout
    assert out.startswith(f"rlsub {__version__} (Python ") and "torch " in out
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in pyproject


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["train", "--help"], ["train", "x"], ["configs"], ["info"]],
)
def test_no_heavy_imports_before_a_command_runs(args):
    """--help, --version, argument errors and the bundled listing load none of torch,
    gymnasium, SB3, numba, ... (they answer in a fraction of a second)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED")]
    assert loaded == ["LOADED"], proc.stderr[-2000:]


def test_python_m_rlsub_help_imports_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rlsub", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0 and "usage: rlsub" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "rlsub.cli.parser" in imported
    assert not {m for m in imported if m.split(".")[0] in HEAVY}, sorted(imported)


def test_argument_error_is_one_line(cli):
    proc = cli("train", "cartpole_es", "--d", "zero", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rlsub train: error: argument --d: --d must be a positive integer or 'direct', "
        "got 'zero' (see rlsub train --help)"
    ]


def test_configs_lists_bundled_configs_and_envs(cli):
    out = cli("configs").stdout
    assert "cartpole_es " in out and "cartpole / es / mlp 20-20 tanh / 150 generations" in out
    assert "mnist_fc " in out and "full_benchmark " in out
    assert "CartPole-v1, solved at 475.0, random 22.1" in out
    listing = json.loads(cli("info", "--json").stdout)  # `rlsub info` alone: the same
    names = {e["name"] for e in listing["configs"]}
    bundled = {p.stem for p in (ROOT / "rlsub" / "bundled" / "configs").glob("*.yaml")}
    assert names | {e["name"] for e in listing["suites"]} == bundled
    assert {e["name"] for e in listing["envs"]} == {"cartpole", "inverted_pendulum", "pong"}
