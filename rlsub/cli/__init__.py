"""The `rlsub` command: argument parsing (`main`), the commands, and `emit`, the one
place that prints results. Everything below `rlsub.cli` returns data.

Imports: anything in rlsub but `rlsub.benches` (loaded by name for `rlsub bench`).
"""

from rlsub.cli.main import main

__all__ = ["main"]
