"""`rlsub configs` (and `rlsub info` without arguments): the bundled configs, suites
and env specs, one line each, read from their YAML files alone, so the listing is
quick and works from a wheel install.
"""

from __future__ import annotations

import argparse
from typing import Any

from rlsub.cli.emit import emit
from rlsub.core.bundled import CONFIG_DIR, ENV_DIR, catalog


def format_catalog(r: dict[str, Any]) -> str:
    def block(title: str, entries: list[dict[str, Any]]) -> list[str]:
        if not entries:
            return []
        width = max(len(e["name"]) for e in entries)
        return [title, *(f"  {e['name']:<{width}}  {e['line']}" for e in entries), ""]

    lines = [
        *block(
            f"configs ({r['config_dir']}): rlsub info|train|sweep NAME; "
            "columns: task / algorithm / network / budget / d grid x seeds",
            r["configs"],
        ),
        *block("suites: rlsub suite NAME --plan", r["suites"]),
        *block(f"env specs ({r['env_dir']}): env: NAME in a config", r["envs"]),
    ]
    lines.append(
        "Any gymnasium id also works as env (env: Acrobot-v1), as does an inline mapping "
        "(env: {id: ..., solved_score: ...}) or a YAML path."
    )
    return "\n".join(lines)


def cli_configs(args: argparse.Namespace) -> None:
    """`rlsub configs [--json]`."""
    result: dict[str, Any] = {"config_dir": str(CONFIG_DIR), "env_dir": str(ENV_DIR), **catalog()}
    emit(args, result, format_catalog)


def cli_info(args: argparse.Namespace) -> None:
    """`rlsub info`: the listing without arguments, else a config or a network (which
    need torch, imported only then)."""
    if args.config is None and args.network is None and args.d is None:
        cli_configs(args)
        return
    from rlsub.cli.commands import cli_info_with_torch

    cli_info_with_torch(args)
