"""The `rlsub` command.

Every command that reports results takes `--json` and then prints one JSON
object on stdout; otherwise it prints human-readable text, with progress bars
on stderr. A user mistake ends with one line `rlsub: error: ...` and exit 2.

Commands delegate to the module named for their concept (train -> trial and
the trainers, sweep -> sweep, dint -> estimate, report/demo -> report,
bench -> rlsub.benches.NAME). The arguments and their help live in
`rlsub.cli.parser`; nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rlsub.cli.parser import build_parser
from rlsub.core.errors import RlsubError


def cli_bench(args: argparse.Namespace) -> None:
    """`rlsub bench NAME`: the benchmark module rlsub.benches.NAME, its result emitted."""
    from rlsub.cli.emit import emit

    result, human = importlib.import_module(f"rlsub.benches.{args.name}").main(args)
    emit(args, result, human)


def _run(args: argparse.Namespace) -> None:
    """The command's function ("module:function"), imported only now: the heavy
    libraries (torch, gymnasium, SB3) load only for the commands that use them."""
    module, func = args.run.split(":")
    getattr(importlib.import_module(module), func)(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _run(args)
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
