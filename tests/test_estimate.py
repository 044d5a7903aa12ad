"""Estimator on synthetic curves: known crossing, noise, blips, all fail, all pass, failures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rlsub.analysis.estimate import estimate_all, estimate_group
from rlsub.analysis.text import format_group
from rlsub.experiment.record import TrialRecord
from rlsub.experiment.store import Store, trial_key

GRID = [1, 2, 4, 8, 16, 32, 64, 128]


def rec(
    d: int | str, seed: int, score: float, status: str = "done", solved: float | None = None
) -> TrialRecord:
    direct = d == "direct"
    return TrialRecord(
        config_hash="abc",
        name="syn",
        task="synthetic",
        algorithm="es",
        network="mlp",
        projection="identity" if direct else "sparse",
        d=1000 if direct else int(d),
        direct=direct,
        seed=seed,
        status=status,
        D=1000,
        final_eval_mean=score if status == "done" else float("nan"),
        best_eval_mean=score,
        solved_score=solved,
        config={"sweep": {"threshold": 0.9}},
    )


def records(
    curve: dict[int, float], seeds: int = 3, noise: float = 0.0, solved: float | None = None
) -> list[TrialRecord]:
    """Baseline 100 and the given mean curve, seed noise +-noise (zero mean over 3 seeds)."""
    offs = [-noise, 0.0, noise][:seeds]
    out = [rec("direct", s, 100.0 + o, solved=solved) for s, o in enumerate(offs)]
    for d, m in curve.items():
        out += [rec(d, s, m + o, solved=solved) for s, o in enumerate(offs)]
    return out


def sigmoid_curve(crossing: float) -> dict[int, float]:
    return {d: 100.0 / (1.0 + math.exp(-2.0 * (math.log(d) - math.log(crossing)))) for d in GRID}


def test_known_crossing_and_interpolation() -> None:
    curve = {1: 10.0, 2: 20.0, 4: 40.0, 8: 60.0, 16: 80.0, 32: 95.0, 64: 99.0, 128: 100.0}
    g = estimate_group(records(curve))
    e = g["d_int90"]
    assert g["baseline"]["mean"] == 100.0 and e["target"] == pytest.approx(90.0)
    assert e["d_int"] == 32 and e["note"] == "crossing between 16 and 32" and e["monotone"]
    # 90 is two thirds of the way from 80 (d=16) to 95 (d=32) on log d
    assert e["interpolated"] == pytest.approx(16 * 2 ** (2 / 3))
    assert e["interval"] == (32, 32)  # no seed noise: every resample agrees


def test_noise_gives_an_interval_around_the_crossing() -> None:
    g = estimate_group(records(sigmoid_curve(10.0), noise=8.0))
    e = g["d_int90"]
    lo, hi = e["interval"]
    assert lo <= e["d_int"] <= hi and lo < hi
    ilo, ihi = e["interpolated_interval"]
    assert ilo < e["interpolated"] < ihi
    assert e["level"] == 0.9
    assert 0 < e["reached_fraction"] <= 1
    # the posterior mean is given only when every draw crosses within the grid
    assert (e["posterior_std"] is None) == (e["reached_fraction"] < 1)
    again = estimate_group(records(sigmoid_curve(10.0), noise=8.0))["d_int90"]
    assert again == e  # fixed seeds: same numbers every time


def test_non_monotone_blip_uses_stays_above_rule() -> None:
    curve = {1: 10.0, 2: 95.0, 4: 20.0, 8: 50.0, 16: 92.0, 32: 97.0}  # lucky blip at d=2
    e = estimate_group(records(curve))["d_int90"]
    assert e["d_int"] == 16 and e["first_crossing"] == 2 and not e["monotone"]
    orig = estimate_group(records(curve), rule="original")["d_int90"]
    assert orig["d_int"] == 2  # the original's first crossing
    dip = {1: 10.0, 2: 50.0, 4: 92.0, 8: 85.0, 16: 95.0}  # a dip after the crossing
    assert estimate_group(records(dip))["d_int90"]["d_int"] == 16


def test_all_fail_and_all_pass() -> None:
    low = estimate_group(records({d: 20.0 for d in GRID}))["d_int90"]
    assert low["d_int"] is None and low["note"] == "not reached within the grid (> 128)"
    assert low["interval"] == (None, None) and low["interpolated"] is None
    high = estimate_group(records({d: 99.0 for d in GRID}))["d_int90"]
    assert high["d_int"] == 1 and high["note"].startswith("<= 1")
    assert high["interval"] == (1, 1)


def test_original_rule_is_strict() -> None:
    curve = {1: 50.0, 2: 90.0, 4: 95.0}  # exactly 0.9 x 100 at d=2
    assert estimate_group(records(curve))["d_int90"]["d_int"] == 2
    assert estimate_group(records(curve), rule="original")["d_int90"]["d_int"] == 4


def test_failed_trials_count_at_the_floor_score() -> None:
    rs = records({1: 10.0, 2: 50.0, 4: 95.0})
    rs += [rec(2, 7, 0.0, status="failed"), rec("direct", 9, 0.0, status="failed")]
    g = estimate_group(rs, floor=5.0)
    assert g["failed"] == 2 and g["baseline"]["failed"] == 1 and g["baseline"]["n"] == 4
    assert g["baseline"]["mean"] == pytest.approx((300.0 + 5.0) / 4)
    pt = next(p for p in g["curve"] if p["d"] == 2)
    assert pt["n"] == 4 and pt["failed"] == 1 and pt["mean"] == pytest.approx((150.0 + 5.0) / 4)
    # the line is floor + 0.9 x (baseline - floor), with the failed baseline seed counted
    assert g["d_int90"]["target"] == pytest.approx(5.0 + 0.9 * ((305.0 / 4) - 5.0))
    assert "random (5) + 0.9 x (baseline - random)" == g["d_int90"]["line"]


def test_a_diverged_seed_makes_its_d_look_worse_not_better() -> None:
    """One seed of three diverges at d = 4 (the one crossing d): without it the mean would
    cross the line at 4; counted at the floor, the crossing moves to 8."""
    curve = {1: 10.0, 2: 40.0, 4: 92.0, 8: 97.0}
    rs = [r for r in records(curve) if not (r.d == 4 and r.seed == 2)]
    rs.append(rec(4, 2, float("nan"), status="failed"))
    g = estimate_group(rs, floor=0.0)
    assert g["failed"] == 1 and g["d_int90"]["d_int"] == 8


def test_floor_from_the_env_spec_and_unknown_floor_note() -> None:
    rs = records({1: 10.0, 2: 50.0, 4: 95.0})
    for r in rs:
        r.config = {"env": "cartpole", "sweep": {"threshold": 0.9}}
    g = estimate_group(rs)
    assert g["floor"] == pytest.approx(22.1) and g["floor_known"]
    assert g["d_int90"]["target"] == pytest.approx(22.1 + 0.9 * (100.0 - 22.1))
    unknown = records({1: 10.0, 2: 50.0, 4: 95.0}) + [rec(2, 7, 0.0, status="failed")]
    g = estimate_group(unknown)
    assert not g["floor_known"] and g["floor"] == 10.0  # the lowest observed score
    assert any("no floor score known" in n for n in g["notes"])
    assert "no random score known" in g["d_int90"]["line"]


def test_d_int100_from_solved_score_and_no_baseline() -> None:
    rs = [r for r in records(sigmoid_curve(8.0), solved=95.0) if not r.direct]
    g = estimate_group(rs)
    assert g["d_int90"] is None and "no baseline" in g["notes"][0]
    means = {p["d"]: p["mean"] for p in g["curve"]}
    expected = min(d for d in GRID if means[d] >= 95.0)
    assert g["d_int100"]["d_int"] == expected and g["d_int100"]["target"] == 95.0
    text = format_group(g)
    assert "d_int100" in text and "failed  solved" in text
    for pt in g["curve"]:  # each d says how many of its seeds reach the solved score
        k = sum(x >= 95.0 for x in pt["scores"])
        (line,) = [ln for ln in text.splitlines() if ln.split()[:1] == [str(pt["d"])]]
        assert line.split()[-1] == f"{k}/{pt['n']}"
    assert {ln.split()[-1] for ln in text.splitlines()} >= {"0/3", "3/3"}


def test_groups_by_config_hash() -> None:
    a = records({1: 10.0, 2: 95.0})
    b = records({1: 10.0, 2: 20.0, 4: 96.0})
    for r in b:
        r.config_hash, r.name = "other", "syn2"
    groups = estimate_all(a + b)
    assert [(g["name"], g["d_int90"]["d_int"]) for g in groups] == [("syn", 2), ("syn2", 4)]


def test_interval_covers_truth_usually() -> None:
    """Noisy sigmoid reaching 90 at d = 30: the interpolated interval mostly holds it."""
    rng = np.random.default_rng(1)
    truth = 10.0 * 9.0 ** (1 / 2)  # sigmoid(2 log(d/10)) = 0.9 at d = 10 * 9^(1/2) = 30
    hits = 0
    for _ in range(20):
        rs = [rec("direct", s, 100.0) for s in range(5)]
        for d, m in sigmoid_curve(10.0).items():
            rs += [rec(d, s, m + rng.normal(0, 3.0)) for s in range(5)]
        lo, hi = estimate_group(rs, draws=1000)["d_int90"]["interpolated_interval"]
        hits += lo is not None and hi is not None and lo * 0.8 <= truth <= hi * 1.25
    assert hits >= 14


def test_cli_dint_json_and_text(tmp_path: Path, cli) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        for r in records({1: 10.0, 2: 50.0, 4: 95.0}, noise=1.0):
            st.mark_running(trial_key(r.config_hash, "direct" if r.direct else r.d, r.seed))
            st.put(r)
    out = json.loads(cli("dint", str(path), "--json").stdout)
    g = out["groups"][0]
    assert out["rule"] == "stays_above" and g["d_int90"]["d_int"] == 4
    text = cli("dint", str(path), "--rule", "original").stdout
    assert "d_int90" in text and "rule=original" in text
    bad = cli("dint", str(tmp_path / "nope.sqlite"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such" in bad.stderr


# ------------------------------------------------ the headline inside its interval
def _inside(e: dict, d_min: int, d_max: int) -> bool:
    """The reported point lies inside the reported interval (open ends at the grid)."""
    lo, hi = e["interpolated_interval"]
    if e["headline_side"] != "in":
        return e["headline"] is None
    return (lo is None or lo <= e["headline"]) and (hi is None or e["headline"] <= hi)


ADVERSARIAL = {
    # a dip below the line after the first crossing, as in the 40-seed CartPole store
    "dip": {1: 20, 2: 130, 4: 340, 6: 470, 8: 484, 11: 472, 12: 478, 16: 492, 32: 491},
    # a clear crossing, then the largest d collapses
    "collapse": {1: 20, 2: 60, 4: 300, 8: 480, 16: 490, 32: 120},
    # flat at the top from the smallest d
    "flat_top": {1: 488, 2: 490, 4: 491, 8: 489, 16: 490},
    # flat just under the line everywhere
    "flat_below": {1: 400, 2: 402, 4: 404, 8: 405, 16: 406},
    # a lucky blip above the line before the real crossing
    "blip": {1: 20, 2: 480, 4: 100, 8: 300, 16: 470, 32: 492},
}


@pytest.mark.parametrize("shape", sorted(ADVERSARIAL))
def test_every_reported_point_lies_inside_its_interval(shape: str) -> None:
    curve = ADVERSARIAL[shape]
    rng = np.random.default_rng(len(shape))
    recs = [rec("direct", s, 490 + rng.normal(0, 5), solved=475.0) for s in range(5)]
    for d, m in curve.items():
        recs += [rec(d, s, float(m + rng.normal(0, 8)), solved=475.0) for s in range(5)]
    g = estimate_group(recs, draws=1000)
    for kind in ("d_int90", "d_int100"):
        e = g[kind]
        assert _inside(e, min(curve), max(curve)), (shape, kind, e)
    if shape == "collapse":  # the crossing is kept and the collapse reported beside it
        e = g["d_int90"]
        assert e["headline_side"] == "in" and 4 <= e["headline"] <= 8
        assert e["collapse"] == 32 and "a collapse" in e["note"]
    if shape == "dip":
        assert 11 in g["d_int100"]["dips"]
    if shape == "flat_below":
        assert g["d_int90"]["headline_side"] == "beyond" and g["d_int90"]["headline"] is None


def test_the_committed_dip_store_reports_points_inside_their_intervals() -> None:
    """docs/stores/dip: CartPole ES, 40 seeds at d = 1..16, 20, 24, 32 (its config beside
    it); the mean dips below the solved line at d = 11. Before the posterior median became
    the headline, `rlsub dint` printed d_int100 11.39 [6.576, 11.14]."""
    path = Path(__file__).resolve().parents[1] / "docs" / "stores" / "dip" / "dip40.sqlite"
    with Store(path, readonly=True) as store:
        (g,) = estimate_all(store.records())
    assert len(g["seeds"]) == 40
    for kind in ("d_int90", "d_int100"):
        assert _inside(g[kind], 1, 32), (kind, g[kind])
    assert 11 in g["d_int100"]["dips"] and "not monotone" in g["d_int100"]["note"]


def test_a_measured_floor_in_the_store_sets_the_line(tmp_path: Path) -> None:
    """An env with no random score of its own: the floor the sweep kept with the store
    sets d_int90's line (random + 0.9 x (baseline - random)), and the notes say so."""
    recs = [rec("direct", s, -90.0 + s) for s in range(3)]
    recs += [rec(d, s, -500.0 + 60 * math.log2(d)) for d in GRID for s in range(3)]
    for r in recs:
        r.task = "Acrobot-v1"
        r.config = {"env": "Acrobot-v1", "sweep": {"threshold": 0.9}}
    with Store(tmp_path / "a.sqlite") as store:
        for r in recs:
            store.mark_running(trial_key(r.config_hash, "direct" if r.direct else r.d, r.seed))
            store.put(r)
        store.put_floor("abc", {"mean": -499.0, "se": 0.5, "episodes": 100, "seed": 1})
    with Store(tmp_path / "a.sqlite", readonly=True) as store:
        (g,) = estimate_all(store.records())
    assert g["floor"] == -499.0 and g["d_int90"]["line"].startswith("random (-499)")
    assert g["d_int90"]["target"] == pytest.approx(-499.0 + 0.9 * (-89.0 + 499.0))
    assert any("measured for this store" in n for n in g["notes"])


def test_the_budget_curve_reads_each_trials_accuracy_after_k_epochs() -> None:
    """A supervised group trained 20 epochs: at k epochs every trial (the baseline too)
    scores its test accuracy after epoch k; at 20 the estimate is the table's."""
    from rlsub.analysis.budget import at_epoch, budget_curve

    def sup(d: int | str, seed: int) -> TrialRecord:
        r = rec(d, seed, 0.0)
        full = 0.97 if d == "direct" else 0.97 * (1 - math.exp(-int(d) / 20))
        # slower learning at small d: accuracy after epoch e approaches `full`
        r.curve = [{"step": e, "value": full * (1 - 0.5 ** (e / 2))} for e in range(1, 21)]
        r.final_eval_mean = r.best_eval_mean = r.curve[-1]["value"]
        r.config = {"dataset": {"name": "digits"}, "sweep": {"threshold": 0.9}}
        return r

    recs = [sup("direct", s) for s in range(3)] + [sup(d, s) for d in GRID for s in range(3)]
    pts = budget_curve(recs, budgets=(2, 10), draws=500)
    assert [p["epochs"] for p in pts] == [2, 10, 20]
    assert at_epoch(recs[0], 2).final_eval_mean == pytest.approx(0.97 * 0.5)
    assert pts[0]["baseline"] == pytest.approx(0.97 * 0.5)
    full = estimate_group(recs, draws=500)["d_int90"]
    assert pts[-1]["headline"] == pytest.approx(full["headline"])


def rising_group(cross: float, draws: int) -> dict:
    """An estimate group whose scores rise to 100 around d = `cross` (3 seeds)."""
    recs = [rec("direct", s, 100.0 + s) for s in range(3)]
    recs += [rec(d, s, 100 / (1 + (cross / d) ** 3) + (s - 1)) for d in GRID for s in range(3)]
    return estimate_group(recs, draws=draws)


def test_ratios_come_from_the_two_rows_posterior_draws() -> None:
    """posterior_draws gives back the draws behind a headline (same median); the ratio of
    two rows is the ratio of their draws: a row twice as hard reads about 2 [lo, hi]."""
    from rlsub.analysis.ratios import posterior_draws, ratio

    easy, hard = rising_group(4.0, 2000), rising_group(8.0, 2000)
    draws = posterior_draws(hard, "d_int90", draws=2000)
    assert draws is not None
    assert float(np.median(draws)) == pytest.approx(hard["d_int90"]["headline"])
    r = ratio(draws, posterior_draws(easy, "d_int90", draws=2000))
    assert r["lo"] is not None and r["hi"] is not None
    assert r["lo"] < 2.0 < r["hi"] and 1.5 < r["median"] < 2.7


def named_group(cross: float, key: str, task: str) -> dict:
    """`rising_group` with the config hash and task a table row refers to."""
    return {**rising_group(cross, 500), "config_hash": key, "task": task}


def sup_row(key: str, paper_d_int: float, est: dict | None = None) -> dict:
    """A supervised MNIST table row (label = key) with a paper value and, optionally, its
    estimate under the paper's line."""
    return {
        "config_hash": key,
        "task": "mnist",
        "label": key,
        "supervised": True,
        "paper_d_int": paper_d_int,
        "paper_rule_ours_est": est,
    }


def test_supervised_ratios_carry_the_papers_own_ratio() -> None:
    """Between two supervised rows that each carry a paper value (MNIST FC 750, LeNet 290)
    the paper column is the ratio of the two; an RL row without a paper claim gets none."""
    from rlsub.analysis.ratios import difficulty_ratios

    groups = [named_group(8.0, "fc", "mnist"), named_group(4.0, "lenet", "mnist")]
    groups.append(named_group(2.0, "rl", "x"))
    rl = {"config_hash": "rl", "task": "x", "label": "RL", "supervised": False, "paper_d_int": 25}
    rows = [sup_row("fc", 750), sup_row("lenet", 290), rl]
    out = {(r["row"], r["kind"]): r for r in difficulty_ratios(groups, rows, "fc")}
    assert out[("lenet", "d_int90")]["paper"] == pytest.approx(750 / 290)
    assert out[("RL", "d_int90")]["paper"] is None
    assert 1.5 < out[("lenet", "d_int90")]["median"] < 2.7  # FC's crossing is twice LeNet's


def test_a_claim_is_also_tested_under_the_papers_own_lines() -> None:
    """Where both rows carry an estimate under the paper's line (`paper_rule_ours_est`),
    one more ratio comes from those estimates' draws, not from the rows' own lines; a
    row without one (not at the paper's protocol) gets no such ratio."""
    from rlsub.analysis.estimate import CurvePoint, as_dict, estimate
    from rlsub.analysis.ratios import difficulty_ratios

    def at(g: dict, target: float) -> dict:  # an estimate of g's curve under a fixed line
        pts = [CurvePoint(**c) for c in g["curve"]]
        return as_dict(estimate(pts, target, "paper", g["rule"], draws=500))

    fc, lenet = named_group(8.0, "fc", "mnist"), named_group(4.0, "lenet", "mnist")
    other = named_group(2.0, "o", "mnist")
    # FC crosses 50 at d = 8, LeNet crosses 90 near d = 8.3: level under these lines
    rows = [sup_row("fc", 750, at(fc, 50.0)), sup_row("lenet", 290, at(lenet, 90.0))]
    rows.append(sup_row("o", 100))
    out = {(r["row"], r["kind"]): r for r in difficulty_ratios([fc, lenet, other], rows, "fc")}
    own, papers = out[("lenet", "d_int90")], out[("lenet", "d_int90, the paper's lines")]
    assert 1.5 < own["median"] < 2.7  # the rows' own lines: FC twice as hard
    assert 0.75 < papers["median"] < 1.15  # the paper's lines here put them level
    assert papers["paper"] == pytest.approx(750 / 290)
    assert ("o", "d_int90, the paper's lines") not in out and ("o", "d_int90") in out
