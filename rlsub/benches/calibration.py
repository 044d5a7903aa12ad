"""`rlsub bench calibration`: does the nominal 90 % interval on d_int90 cover the truth?

Synthetic sweeps with a known crossing (``rlsub.analysis.calibration``): 200 per cell
(30 with --quick), n = 3 and n = 5 seeds per d, normal, bimodal and mixed seed noise.
Prints each cell's coverage, how often the interval is closed, its median hi/lo, and
whether the headline (interpolated) point lies inside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rlsub.analysis.calibration import GRID, coverage_table
from rlsub.analysis.interval import METHOD

SWEEPS = 200


def main(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    sweeps = 30 if getattr(args, "quick", False) else SWEEPS
    workers = min(6, os.cpu_count() or 1)
    print(f"calibration: {sweeps} sweeps x 6 cells on {workers} processes", file=sys.stderr)
    t0 = time.perf_counter()
    cells = coverage_table(sweeps, workers=workers)
    result = {
        "method": METHOD,
        "grid": list(GRID),
        "sweeps_per_cell": sweeps,
        "cells": cells,
        "wall_s": time.perf_counter() - t0,
    }

    def human(r: dict[str, Any]) -> str:
        lines = [
            f"nominal 90 % interval on d_int90, {r['sweeps_per_cell']} synthetic sweeps per "
            f"cell (grid {r['grid']})",
            "",
            "| seeds per d | seed noise | coverage | closed | median hi/lo | point inside |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for c in r["cells"]:
            med = c["median_hi_over_lo"]
            lines.append(
                f"| {c['seeds_per_d']} | {c['noise']} | {c['coverage']:.3f} | "
                f"{c['closed_fraction']:.2f} | {'-' if med is None else f'{med:.2f}'} | "
                f"{c['point_inside_fraction']:.2f} |"
            )
        lines += ["", f"interval: {r['method']}", f"wall time {r['wall_s']:.0f} s"]
        return "\n".join(lines)

    return result, human
