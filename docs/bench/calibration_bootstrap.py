"""The percentile bootstrap's coverage on `rlsub bench calibration`'s synthetic sweeps.

    python docs/bench/calibration_bootstrap.py > docs/bench/calibration_bootstrap.json

The table's interval until commit 9154fe8 was a percentile bootstrap over seeds
(2,000 resamples of the seeds within each d and within the baseline). This script
takes that commit's estimator from git and runs the same synthetic sweeps
(rlsub.analysis.calibration, 200 per cell, same seeds) through it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rlsub.analysis import calibration

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "9154fe8"


def main() -> None:
    src = subprocess.run(
        ["git", "show", f"{COMMIT}:rlsub/analysis/estimate.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bootstrap_estimate.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("bootstrap_estimate", path)
        assert spec and spec.loader
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    calibration.estimate = old.estimate  # type: ignore[assignment]
    calibration.CurvePoint = old.CurvePoint  # type: ignore[misc]
    cells = []
    for n in (3, 5):
        for kind in calibration.NOISE_KINDS:
            cells.append(calibration.coverage(200, n, kind))
            print(json.dumps(cells[-1]), file=sys.stderr)
    json.dump(
        {"estimator": f"percentile bootstrap ({COMMIT})", "cells": cells}, sys.stdout, indent=1
    )


if __name__ == "__main__":
    main()
