"""The `rlsub` command line: every command and argument with its help text, default and
an example (`build_parser`).

This module imports nothing heavy (no torch, gymnasium, SB3, numba): `rlsub --help`,
`rlsub --version` and argument errors answer at once. Each command names the function
that runs it as an import path ("module:function", loaded by `rlsub.cli.main` only
when that command runs).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, NoReturn

BENCHES = (
    "projection",
    "rollout",
    "pg",
    "pong",
    "sweep",
    "supervised",
    "evotorch",
    "calibration",
    "jax",
    "gpu",
)
DESCRIPTION = """\
rlsub: the intrinsic dimension of RL and supervised tasks. A network is trained only
inside a random d-dimensional subspace, theta = theta0 + P z (only z trains), for a grid
of d and several seeds; the smallest d that solves the task is its intrinsic dimension
(Li, Farkhoor, Liu, Yosinski, ICLR 2018).

Configs are given by a bundled name (`rlsub configs` lists them) or a YAML path.
Commands that report results take --json (one JSON object on stdout); progress goes to
stderr. A user mistake ends with one line `rlsub: error: ...` and exit 2."""
EPILOG = """\
examples:
  rlsub configs                                  # the bundled configs and envs
  rlsub info cartpole_es                         # a config: task, network, D, grid
  rlsub train cartpole_es --d 8 --seed 0         # one trial
  rlsub sweep cartpole_es --store runs/cp.sqlite # every d x seed, resumable
  rlsub dint runs/cp.sqlite                      # d_int90 / d_int100 with intervals
  rlsub demo                                     # the README's main job
  rlsub COMMAND --help                           # one command in detail"""
JSON_HELP = "print the result as one JSON object on stdout (no progress bars)"
DEVICE_HELP = "train.device for this run: auto, cpu, cuda or cuda:N (default: the config's)"
CONFIG_HELP = "a bundled config's name (see `rlsub configs`) or a path to a config YAML"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; "(default: X)" after an argument's help
    where it has a default worth saying (not None, not False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and (action.option_strings or action.nargs in ("?", "*"))
        ):
            text += " (default: %(default)s)"
        return text


class _Version(argparse.Action):
    """`--version`: rlsub's version and those of the packages it runs on, read from
    their metadata (nothing is imported)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help=kwargs.get("help"))

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> NoReturn:
        import platform
        from importlib import metadata

        from rlsub.core.version import __version__

        found = []
        for dist in ("torch", "gymnasium", "stable-baselines3", "numpy"):
            try:
                found.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                found.append(f"{dist} not installed")
        print(f"rlsub {__version__} (Python {platform.python_version()}; {', '.join(found)})")
        parser.exit()


def d_value(text: str) -> int | str:
    """--d: a positive integer or 'direct'."""
    if text == "direct":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--d must be a positive integer or 'direct', got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--d must be a positive integer or 'direct', got {value}")
    return value


def positive_int(text: str) -> int:
    """A count that must be at least 1 (--workers, --episodes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _command(
    sub: Any, name: str, run: str, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A command's parser: `summary` in `rlsub --help`, `description` and `examples` in
    `rlsub NAME --help`; `run` is the "module:function" that runs it."""
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{textwrap.fill(description, 88)}",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines()),
        formatter_class=_Formatter,
    )
    p.set_defaults(run=run)
    return p


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=["grid", "adaptive"],
        default="grid",
        help="grid: every d of sweep.d_grid x every seed; adaptive: bisect the grid for the "
        "crossing, then add d where the interval is widest",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="trials run at once (processes, or Ray tasks with --backend ray)",
    )
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: this machine (a process pool past 1 worker); ray: a Ray cluster",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster address, e.g. auto (with --backend ray)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlsub", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter)
    p.add_argument("--version", action=_Version, help="print rlsub's version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    s = _command(sub, "configs", "rlsub.cli.catalog:cli_configs",
                 "list the bundled configs, suites and env specs, one line each",
                 "They ship inside the package (rlsub/bundled/), so this works from a wheel "
                 "install; any command taking CONFIG accepts these names from any folder.",
                 "rlsub configs\nrlsub configs --json")  # fmt: skip
    _json(s)

    s = _command(sub, "info", "rlsub.cli.catalog:cli_info",
                 "a config's task, network, D and sweep plan; or D, d and P's memory for a network",
                 "Reads no data and downloads nothing: D comes from the network built for the "
                 "dataset's known input shape (or the env's spaces). Without arguments it "
                 "lists the bundled configs, as `rlsub configs`.",
                 "rlsub info cartpole_es\nrlsub info mnist_fc --json\n"
                 "rlsub info --network fc_mnist --d 750 --projection sparse")  # fmt: skip
    s.add_argument("config", nargs="?", help=CONFIG_HELP + " (none: list the bundled configs)")
    s.add_argument("--network", help="a bundled network's name, instead of a config (needs --d)")
    s.add_argument(
        "--projection",
        default="fastfood",
        choices=["dense", "sparse", "fastfood"],
        help="kind of P for --network",
    )
    s.add_argument("--d", type=d_value, default=None, help="subspace dimension for --network")
    s.add_argument(
        "--dense-limit-gib", type=float, default=2.0, help="refuse a dense P larger than this"
    )
    _json(s)

    s = _command(sub, "train", "rlsub.cli.commands:cli_train",
                 "train one trial of CONFIG at subspace dimension d and seed S",
                 "Prints the trial's record (final and best evaluation, env steps, wall time) "
                 "and writes a compact policy file (seeds, d and z: kilobytes) that `rlsub "
                 "eval` replays.",
                 "rlsub train cartpole_es --d 8 --seed 0\n"
                 "rlsub train digits_fc --d direct --json > record.json")  # fmt: skip
    s.add_argument("config", help=CONFIG_HELP)
    s.add_argument(
        "--d",
        type=d_value,
        required=True,
        help="subspace dimension (a positive integer), or 'direct' for the baseline "
        "(all D parameters trained)",
    )
    s.add_argument("--seed", type=int, default=0, help="the trial's master seed")
    s.add_argument("--out", default="runs/policies", help="folder for the compact policy file")
    s.add_argument("--device", default=None, help=DEVICE_HELP)
    _json(s)
    s.add_argument(
        "--quiet", action="store_true", help="no progress bar or evaluation lines on stderr"
    )

    s = _command(sub, "eval", "rlsub.cli.commands:cli_eval",
                 "replay a saved policy file on fresh episodes",
                 "Rebuilds the exact network from the file (network spec, seeds, d, z) and "
                 "plays deterministic episodes of its env.",
                 "rlsub eval runs/policies/cartpole_es-*-d8-s0.pt --episodes 20")  # fmt: skip
    s.add_argument("policy", help="a policy file written by rlsub train or rlsub sweep")
    s.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help="episodes to play (default: the env spec's eval_episodes)",
    )
    s.add_argument("--seed", type=int, default=12345, help="seed of the episodes")
    s.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="MODULE",
        help="let the file name plug-ins (import paths) from MODULE; repeatable; also "
        "RLSUB_TRUSTED_MODULES (comma-separated). Default: only bundled names resolve",
    )
    s.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load an SB3 .zip, which is a pickle and can run code (default: refused)",
    )
    _json(s)

    s = _command(sub, "random-score", "rlsub.cli.commands:cli_random_score",
                 "mean return of uniformly random actions in an env",
                 "The floor of the d_int90 line for RL tasks (an env spec's random_score).",
                 "rlsub random-score cartpole --episodes 1000\nrlsub random-score Acrobot-v1")  # fmt: skip
    s.add_argument(
        "env", help="an env spec's name (see `rlsub configs`), a YAML path, or a gymnasium id"
    )
    s.add_argument("--episodes", type=positive_int, default=10, help="episodes to play")
    s.add_argument("--seed", type=int, default=0, help="seed of the episodes")
    _json(s)

    s = _command(sub, "sweep", "rlsub.cli.commands:cli_sweep",
                 "sweep d x seeds of CONFIG into a results store",
                 "Runs the baseline (trained directly) and every (d, seed) not yet in the "
                 "store; a killed sweep resumes where it stopped, and several sweeps on one "
                 "store share the trials. Ends with the d_int estimate.",
                 "rlsub sweep cartpole_es --store runs/cp.sqlite\n"
                 "rlsub sweep cartpole_es --mode adaptive --workers 2")  # fmt: skip
    s.add_argument("config", help=CONFIG_HELP)
    s.add_argument("--store", default=None, help="SQLite results file (default: runs/NAME.sqlite)")
    _sweep_options(s)
    s.add_argument("--device", default=None, help=DEVICE_HELP)
    _json(s)

    s = _command(sub, "tune", "rlsub.cli.commands:cli_tune",
                 "tune z's step size per d for a policy-gradient CONFIG",
                 "Tries every K of 'K*sqrt(D/d)' at every d of the config's grid on tuning "
                 "seeds that are not its reported seeds, keeps the best K per d, and writes "
                 "a config (--out) whose train.z_lr_scale maps each d to its K; sweep that "
                 "config for the row. The tuning trials stay in --store; it resumes.",
                 "rlsub tune cartpole_ppo_sqrt --k 1 3 10 --seeds 100 101 \\\n"
                 "    --store runs/tune_ppo.sqlite --out runs/cartpole_ppo_tuned.yaml")  # fmt: skip
    s.add_argument("config", help=CONFIG_HELP)
    s.add_argument("--k", type=float, nargs="+", required=True, help="the K to try")
    s.add_argument("--seeds", type=int, nargs="+", required=True, help="tuning seeds")
    s.add_argument("--store", required=True, help="SQLite store of the tuning trials")
    s.add_argument("--out", required=True, help="where to write the tuned config (YAML)")
    _json(s)

    s = _command(sub, "suite", "rlsub.cli.commands:cli_suite",
                 "the full benchmark: sweep every config of a suite file",
                 "With --plan it prints the trials and their estimated cost (from the "
                 "throughput of finished stores given by --measured) and runs nothing.",
                 "rlsub suite configs/full_benchmark.yaml --plan --measured runs/*.sqlite\n"
                 "rlsub suite configs/full_benchmark.yaml --backend ray --address auto --workers 64")  # fmt: skip
    s.add_argument("suite", help="a suite YAML, e.g. configs/full_benchmark.yaml")
    s.add_argument("--plan", action="store_true", help="print trials and estimated cost only")
    s.add_argument(
        "--measured",
        nargs="*",
        default=None,
        help="stores (or rlsub train --json records) to take throughput from (with --plan)",
    )
    s.add_argument("--store-dir", default="runs/full", help="one store per experiment here")
    _sweep_options(s)
    _json(s)

    s = _command(sub, "dint", "rlsub.cli.commands:cli_dint",
                 "estimate d_int90 / d_int100 with their intervals from a store",
                 "One estimate per experiment (config hash) in the store: the crossing "
                 "interpolated in log d with its interval, and the grid's own estimate.",
                 "rlsub dint runs/cp.sqlite\nrlsub dint runs/cp.sqlite --json")  # fmt: skip
    s.add_argument("store", help="a SQLite results store written by rlsub sweep")
    s.add_argument(
        "--rule",
        choices=["stays_above", "original"],
        default="stays_above",
        help="grid estimate: the smallest d from which the mean stays above the line, or the "
        "paper's first d above it",
    )
    _json(s)

    s = _command(sub, "report", "rlsub.cli.commands:cli_report",
                 "difficulty tables (md, csv, tex) and figures from stores",
                 "One row per experiment and store (one config in several stores: one row "
                 "each, unless --pool), the claims as ratios under the table, and the budget "
                 "curve of supervised rows.",
                 "rlsub report runs/cp.sqlite runs/digits.sqlite --out runs/report\n"
                 "rlsub report docs/stores/paper/*.sqlite --paper --out docs/paper")  # fmt: skip
    s.add_argument("stores", nargs="+", help="SQLite results stores")
    s.add_argument("--out", default="plots", help="folder for the tables and figures")
    s.add_argument(
        "--pool",
        action="store_true",
        help="pool the trials of one config found in several stores into one row "
        "(default: one row per store, labelled with the store's name)",
    )
    s.add_argument(
        "--paper",
        action="store_true",
        help="add the paper's rows that the stores do not measure, as 'not measured "
        "here' with the reason (Li et al. 2018's value beside each)",
    )
    _json(s)

    s = _command(sub, "curves", "rlsub.cli.commands:cli_curves",
                 "learning curves of single trials from rlsub train --json records",
                 "Evaluation return (or accuracy) against env steps, one line per record.",
                 "rlsub train cartpole_es --d 8 --json > d8.json\n"
                 "rlsub curves d8.json --out runs/d8.png")  # fmt: skip
    s.add_argument("records", nargs="+", help="JSON records written by rlsub train --json")
    s.add_argument("--out", required=True, help="figure path (.png; the .pdf is written beside)")
    _json(s)

    s = _command(sub, "demo", "rlsub.cli.demo:cli_demo",
                 "the main job: adaptive sweeps of the bundled demo configs and the table",
                 "CartPole (ES), InvertedPendulum (CMA-ES) and the digits set (Adam), each "
                 "into its own store under --out; rerunning resumes. A few minutes on 2 cores.",
                 "rlsub demo\nrlsub demo --out runs/demo2 --json")  # fmt: skip
    s.add_argument("--out", default="runs/demo", help="folder for the stores, tables and figures")
    _json(s)

    s = _command(sub, "bench", "rlsub.cli.main:cli_bench",
                 "benchmarks that print measured ratios",
                 f"NAME is one of: {', '.join(BENCHES)}. The options after NAME apply to "
                 "the benches named in their help.",
                 "rlsub bench rollout --quick\nrlsub bench pong --population 64 --steps 500")  # fmt: skip
    s.add_argument("name", choices=BENCHES, metavar="NAME", help="the benchmark to run")
    s.add_argument("--quick", action="store_true", help="smaller sizes (for tests)")
    s.add_argument("--population", type=int, default=None, help="pong: ES population")
    s.add_argument("--steps", type=int, default=None, help="pong: agent steps per game")
    s.add_argument("--d", type=int, default=None, help="pong: subspace dimension")
    s.add_argument("--threads", type=int, default=None, help="pong: torch threads for ES")
    s.add_argument(
        "--episodes", type=int, default=None, help="pong: ES episodes per member (slots = N x K)"
    )
    s.add_argument("--device", default=None, help="gpu: the device to check (default: auto)")
    _json(s)
    return p
