"""The `rlsub` command.

Every command that reports results takes `--json` and then prints one JSON
object on stdout; otherwise it prints human-readable text, with progress bars
on stderr. A user mistake ends with one line `rlsub: error: ...` and exit 2.

Commands delegate to the module named for their concept (train -> trial and
the trainers, sweep -> sweep, dint -> estimate, report/demo -> report,
bench -> rlsub.benches.NAME).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from rlsub.cli.commands import cmd_info, cmd_train
from rlsub.cli.emit import emit
from rlsub.core.errors import RlsubError

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _d_value(text: str) -> int | str:
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


def _delegate(target: str) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        module, func = target.split(":")
        getattr(importlib.import_module(module), func)(args)

    return run


def cmd_bench(args: argparse.Namespace) -> None:
    result, human = importlib.import_module(f"rlsub.benches.{args.name}").main(args)
    emit(args, result, human)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlsub", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser(
        "info", help="a config (task, network, D, grid), or D, d, D/d and P's memory for a network"
    )
    s.add_argument("config", nargs="?", help="a bundled config's name or a config file")
    s.add_argument("--network", help="a network name (instead of a config)")
    s.add_argument("--projection", default="fastfood")
    s.add_argument("--d", type=_d_value, default=None)
    s.add_argument("--dense-limit-gib", type=float, default=2.0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("train", help="train one trial: CONFIG at subspace dimension d, seed S")
    s.add_argument("config")
    s.add_argument("--d", type=_d_value, required=True, help="subspace dimension, or 'direct'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="runs/policies", help="directory for the compact policy file")
    s.add_argument(
        "--device",
        default=None,
        help="train.device: auto, cpu, cuda or cuda:N (default: the config's)",
    )
    s.add_argument("--json", action="store_true", help="the record as one JSON object on stdout")
    s.add_argument(
        "--quiet", action="store_true", help="no progress bar or evaluation lines on stderr"
    )
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="replay a saved policy file")
    s.add_argument("policy")
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--seed", type=int, default=12345)
    s.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="MODULE",
        help="let the file name plug-ins from MODULE (import paths; also RLSUB_TRUSTED_MODULES)",
    )
    s.add_argument(
        "--trust-pickle", action="store_true", help="load an SB3 .zip (a pickle: it can run code)"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_eval"))

    s = sub.add_parser("random-score", help="mean return of uniformly random actions")
    s.add_argument("env", help="env spec: a name in envs/ or a path to a YAML spec")
    s.add_argument("--episodes", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_random_score"))

    s = sub.add_parser("sweep", help="sweep d x seeds into a results store")
    s.add_argument("config")
    s.add_argument("--store", default=None, help="SQLite file (default runs/NAME.sqlite)")
    s.add_argument("--mode", choices=["grid", "adaptive"], default="grid")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--backend", choices=["local", "ray"], default="local")
    s.add_argument("--address", default=None, help="Ray cluster address")
    s.add_argument(
        "--device",
        default=None,
        help="train.device: auto, cpu, cuda or cuda:N (default: the config's)",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_sweep"))

    s = sub.add_parser("suite", help="the full benchmark: sweep every config of a suite file")
    s.add_argument("suite", help="suite YAML (e.g. configs/full_benchmark.yaml)")
    s.add_argument("--plan", action="store_true", help="print trials and estimated cost only")
    s.add_argument(
        "--measured",
        nargs="*",
        default=None,
        help="stores (or rlsub train --json records) to take throughput from",
    )
    s.add_argument("--store-dir", default="runs/full", help="one store per experiment here")
    s.add_argument("--mode", choices=["grid", "adaptive"], default="grid")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--backend", choices=["local", "ray"], default="local")
    s.add_argument("--address", default=None, help="Ray cluster address")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_suite"))

    s = sub.add_parser("dint", help="estimate d_int90 / d_int100 with intervals from a store")
    s.add_argument("store")
    s.add_argument("--rule", choices=["stays_above", "original"], default="stays_above")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_dint"))

    s = sub.add_parser("report", help="difficulty tables and plots from stores")
    s.add_argument("stores", nargs="+")
    s.add_argument("--out", default="plots")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_report"))

    s = sub.add_parser("curves", help="learning curves of single trials (rlsub train --json files)")
    s.add_argument("records", nargs="+", help="JSON records written by rlsub train --json")
    s.add_argument("--out", required=True, help="figure path (.png; the .pdf is written beside)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.commands:cli_curves"))

    s = sub.add_parser("demo", help="the main job: small sweeps and the difficulty table")
    s.add_argument("--out", default="runs/demo")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_delegate("rlsub.cli.demo:cli_demo"))

    s = sub.add_parser("bench", help="benchmarks that print measured ratios")
    s.add_argument("name", choices=BENCHES)
    s.add_argument("--quick", action="store_true", help="smaller sizes (for tests)")
    s.add_argument("--population", type=int, default=None, help="pong: ES population")
    s.add_argument("--steps", type=int, default=None, help="pong: agent steps per game")
    s.add_argument("--d", type=int, default=None, help="pong: subspace dimension")
    s.add_argument("--threads", type=int, default=None, help="pong: torch threads for ES")
    s.add_argument(
        "--episodes", type=int, default=None, help="pong: ES episodes per member (slots = N x K)"
    )
    s.add_argument("--device", default=None, help="gpu: the device to check (default auto)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except RlsubError as exc:
        sys.stderr.write(f"rlsub: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("rlsub: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`rlsub ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
