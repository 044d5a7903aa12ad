"""`rlsub bench evotorch`: runs on a tiny budget where evotorch is installed, else one clear line."""

import importlib.util
import json


def test_bench_evotorch_quick_or_clear_error(cli) -> None:
    proc = cli("bench", "evotorch", "--quick", "--json", check=False, timeout=600)
    if importlib.util.find_spec("evotorch") is None:
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'rlsub[bench]'" in lines[0], proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["rows"]
    assert [r["method"].split(",")[0] for r in rows] == ["rlsub ES", "rlsub ES", "evotorch PGPE"]
    for r in rows:
        assert r["seeds"] == 1 and 0 <= r["solved"] <= 1 and r["mean_wall_s"] > 0
        assert r["mean_final"] >= 8  # a CartPole episode lasts at least 8 steps
    assert rows[-1]["wall_ratio_vs_evotorch"] == 1.0
