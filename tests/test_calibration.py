"""The estimator's interval is calibrated: 200 synthetic sweeps per cell with a known
crossing, n = 3 and n = 5 seeds, normal, bimodal and mixed seed noise (issue 22.4).

At n = 5 the nominal 90 % interval must hold the truth at least 85 % of the time in
every noise kind, with no widening factor; the n = 3 figures are recorded in
docs/RESULTS.md (from `rlsub bench calibration`).
"""

from __future__ import annotations

import pytest

from rlsub.analysis.calibration import NOISE_KINDS, coverage_table, one_sweep


@pytest.mark.slow
def test_nominal_90_interval_covers_the_truth_at_n5() -> None:
    cells = coverage_table(200, ns=(3, 5), workers=2)
    assert {(c["seeds_per_d"], c["noise"]) for c in cells} == {
        (n, k) for n in (3, 5) for k in NOISE_KINDS
    }
    assert all(c["sweeps"] == 200 for c in cells)
    at5 = {c["noise"]: c["coverage"] for c in cells if c["seeds_per_d"] == 5}
    assert all(v >= 0.85 for v in at5.values()), at5
    # an interval that covers by being open everywhere would say nothing
    assert all(c["closed_fraction"] >= 0.5 for c in cells if c["noise"] != "bimodal"), cells


def test_one_synthetic_sweep_is_reproducible_and_sane() -> None:
    import numpy as np

    a = one_sweep(5, "gauss", np.random.default_rng(3))
    b = one_sweep(5, "gauss", np.random.default_rng(3))
    assert a == b
    assert 3.0 <= a["truth"] <= 40.0 and a["reached"]
    assert a["lo"] is not None and a["hi"] is not None and a["lo"] < a["hi"]
