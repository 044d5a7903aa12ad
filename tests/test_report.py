"""Difficulty report (tables, figures, COMMANDS.md) and the demo, on fake-trainer stores."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import fake_trainer
import matplotlib
import pytest
import yaml

import rlsub.experiment.trial
from rlsub.analysis import paper
from rlsub.analysis.estimate import estimate_all
from rlsub.analysis.figures import comparisons, curves_figure, difficulty_figure, width_figure
from rlsub.analysis.report import load_records, report, width_series
from rlsub.analysis.rows import COLUMNS, build_rows
from rlsub.analysis.tables import display_rows
from rlsub.cli.main import main
from rlsub.core.config import experiment_from_dict
from rlsub.core.errors import RlsubError
from rlsub.experiment.store import Store
from rlsub.sweep.strategy import run_sweep

matplotlib.use("Agg")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_trainer.register(monkeypatch)
    monkeypatch.setattr(rlsub.experiment.trial, "versions", fake_trainer.fast_versions)
    monkeypatch.setenv("RLSUB_FAKE_FAST_VERSIONS", "1")


def fake_dict(name: str = "fake", projection: str = "dense", **train: Any) -> dict[str, Any]:
    data = fake_trainer.config(**train)
    data["name"] = name
    data["algorithm"] = "fake"  # registered by name in this process (fixture `fake`)
    data["subspace"] = {"projection": projection}
    data["sweep"]["d_grid"] = [1, 2, 4, 8, 16, 32, 64]
    data["sweep"]["seeds"] = [0, 1]
    return data


@pytest.fixture
def stores(fake: None, tmp_path: Path) -> list[Path]:
    """Two small stores: fake RL task (solved score) with dense and sparse projections."""
    out = []
    for proj in ("dense", "sparse"):
        cfg = experiment_from_dict(fake_dict(f"fake_{proj}", proj, solved_score=95.0))
        path = tmp_path / f"{proj}.sqlite"
        run_sweep(cfg, path, mode="grid")
        out.append(path)
    return out


def test_report_files_and_columns(stores: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "plots"
    r = report(stores, out, "rlsub report a b")
    names = {"difficulty.md", "difficulty.csv", "difficulty.tex", "COMMANDS.md"}
    assert names <= {p.name for p in out.iterdir()}
    for stem in ("curves", "difficulty", "projections_fake_mlp_fake"):
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000, stem
    assert len(r["rows"]) == 2
    row = r["rows"][0]
    # the grid's estimate, and the interpolated crossing (the headline) inside its step
    assert row["d_int90_grid"] == 32 and 16 < row["d_int90"] <= 32 and row["D"] == fake_trainer.D
    assert row["d_int90_lo"] <= row["d_int90"] and row["compression"] == pytest.approx(
        fake_trainer.D / row["d_int90"]
    )
    assert row["seeds"] == 2 and (row["d_min"], row["d_max"]) == (1, 64)
    assert row["wall_s"] > 0 and row["paper_d_int"] is None
    assert row["trained_directly"] == 0 and row["failed"] == 0
    assert "fake" in row["label"] and row["d_int90_line"]
    md = (out / "difficulty.md").read_text()
    for col in ("row", "D/d_int90", "d_int90 [90% CI]", "grid d_int90", "params outside the"):
        assert col in md
    lines = next(n for n in md.splitlines() if n.startswith("- Lines"))  # which row, which line
    assert f"{row['d_int90_line']} for {row['label']}" in lines, lines
    assert "seeds (failed)" in md and "paper d_int" in md and "no reference task" in md
    assert "floor score" in md and "beyond the grid" in md
    with (out / "difficulty.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == COLUMNS and len(table) == 2
    assert r"\begin{tabular}" in (out / "difficulty.tex").read_text()
    assert "rlsub report a b" in (out / "COMMANDS.md").read_text()


def test_figures_have_labels_log_axis_and_legend(stores: list[Path]) -> None:
    records = load_records(stores)
    groups = estimate_all(records, draws=200)
    rows, _ = build_rows(records, groups)
    figs = [curves_figure(groups, {g["config_hash"]: False for g in groups})]
    figs.append(difficulty_figure(rows))
    for fig in figs:
        for ax in [a for a in fig.axes if a.get_visible()]:
            assert ax.get_xscale() == "log"
            assert ax.get_xlabel() and ax.get_ylabel()
            assert ax.get_legend() is not None or fig.legends  # beside or under the axes
    labels = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert any("0.9 x baseline" in t for t in labels) and any("solved" in t for t in labels)
    assert any("baseline" in t for t in labels) and any("d_int90" in t for t in labels)


def test_reference_task_paper_values_and_comparisons(stores: list[Path]) -> None:
    records = load_records(stores)
    groups = estimate_all(records, draws=100)
    groups[0] = {**groups[0], "task": "digits"}
    groups[1] = {**groups[1], "task": "cartpole", "algorithm": "es"}
    rows, ref = build_rows(records, groups)
    assert "digits" in ref and rows[0]["difficulty"] == pytest.approx(1.0)
    # CartPole-v1 ES is not the paper's CartPole-v0 DQN row: no paper value beside it
    assert rows[1]["paper_d_int"] is None
    v0 = {"task": "cartpole-v0", "network": "mlp", "algorithm": "dqn_paper"}
    he = {"activation": "relu", "init": "he_normal"}
    pv = paper.match(v0, {"hidden": [20, 20], **he})
    # SB3's DQN is another protocol: the paper's value sits only beside dqn_paper rows
    assert paper.match({**v0, "algorithm": "dqn"}, {"hidden": [20, 20], **he}) is None
    assert pv is not None and pv.value == 25 and paper.paper_target(pv, None) == 0.9 * 195
    assert paper.match(v0, {"hidden": [64, 64], **he}) is None  # other net
    # the paper's init is part of its protocol: PyTorch's default init is another row
    assert paper.match(v0, {"hidden": [20, 20], "activation": "relu"}) is None
    assert paper.match(v0, {"hidden": [400, 400], **he}).value == 40  # width 400
    assert paper.match({**v0, "task": "cartpole"}, {"hidden": [20, 20], **he}) is None
    fc = paper.match({"task": "mnist", "network": "fc_mnist", "algorithm": "adam"}, {})
    assert fc is not None and fc.value == 750 and fc.line == "fixed"
    cifar = paper.match({"task": "cifar10", "network": "lenet_cifar", "algorithm": "adam"}, {})
    assert cifar is not None and paper.paper_target(cifar, 0.6) == pytest.approx(0.54)
    pg = {**groups[1], "algorithm": "ppo", "config_hash": "x"}
    stems = [c[0] for c in comparisons([groups[1], pg])]
    assert stems == ["es_vs_pg_cartpole"]


def test_paper_value_sits_beside_its_row_with_ours_under_its_line(stores: list[Path]) -> None:
    records = load_records(stores)
    groups = estimate_all(records, draws=100)
    g = {**groups[0], "task": "cartpole-v0", "algorithm": "dqn_paper", "network": "mlp"}
    for r in records:
        if r.config_hash == g["config_hash"]:
            r.config = {
                **r.config,
                "network": {
                    "name": "mlp",
                    "kwargs": {"hidden": [20, 20], "activation": "relu", "init": "he_normal"},
                },
            }
    rows, _ = build_rows(records, [g])
    assert rows[0]["paper_d_int"] == 25 and "0.9 x 195" in rows[0]["paper_rule"]
    # the fake task's scores rise to 100, so the paper's fixed line (175.5) is never reached
    assert rows[0]["paper_rule_ours"] is None
    # ... and the row says that the paper's 25, inside the d swept (to 64), is below ours
    note = "the paper's value 25 lies inside the d swept (up to 64)"
    assert any(n.startswith(note) and "ours is above" in n for n in rows[0]["notes"])
    # the fake baseline (about 100) is itself under the paper's line (175.5): said
    assert any("itself under the paper's line (175.5)" in n for n in rows[0]["notes"])
    # the same task and network trained at another lr is another protocol: no paper value
    for r in records:
        if r.config_hash == g["config_hash"]:
            r.config = {**r.config, "train": {**(r.config.get("train") or {}), "lr": 1e-3}}
    rows, _ = build_rows(records, [g])
    assert rows[0]["paper_d_int"] is None and rows[0]["paper_rule_ours"] is None
    assert any(
        "not the paper's protocol (lr 0.001 (the paper: 0.0001))" in n for n in rows[0]["notes"]
    )


def test_mnist_rows_are_the_papers_only_with_its_init_and_l2() -> None:
    """The paper's MNIST networks drew theta0 from Keras' he_normal and its LeNet script
    adds L2 1e-4: a row without them is named another protocol, with what differs."""
    lenet = paper.match({"task": "mnist", "network": "lenet_mnist", "algorithm": "adam"}, {})
    assert lenet is not None and lenet.value == 290
    adam = {"lr": 1e-3, "beta2": 0.99, "batch_size": 128}
    assert paper.protocol_differences(lenet, {**adam, "l2": 0.0}, {}) == [
        "l2 0 (the paper: 0.0001)",
        "init torch (the paper: he_normal)",
    ]
    assert paper.protocol_differences(lenet, {**adam, "l2": 1e-4}, {"init": "he_normal"}) == []
    fc = paper.match({"task": "mnist", "network": "fc_mnist", "algorithm": "adam"}, {})
    assert fc is not None  # its scripts differ on L2, so either sits beside its 750
    for l2 in (0.0, 1e-4):
        assert paper.protocol_differences(fc, {**adam, "l2": l2}, {"init": "he_normal"}) == []


def test_the_reference_row_is_the_mnist_fc_row_at_the_papers_protocol() -> None:
    """Of several MNIST FC rows, claims are measured against the one at the paper's
    protocol (he_normal init), whatever the order; labels tell the rows apart."""
    from rlsub.analysis.rows import reference_group, row_label
    from rlsub.experiment.record import TrialRecord

    train = {"lr": 1e-3, "beta2": 0.99, "batch_size": 128, "epochs": 100}
    variants = {"torch": ({}, train), "he": ({"init": "he_normal"}, {**train, "l2": 1e-4})}
    records, groups = [], []
    for h, (kwargs, tr) in variants.items():
        cfg = {"network": {"name": "fc_mnist", "kwargs": kwargs}, "train": tr, "dataset": {}}
        for d, acc in ((300, 0.8), (1000, 0.95), ("direct", 0.98)):
            records.append(
                TrialRecord(
                    config_hash=h, name=h, task="mnist", algorithm="adam", network="fc_mnist",
                    projection="identity" if d == "direct" else "sparse",
                    d=199_210 if d == "direct" else int(d), direct=d == "direct", seed=0,
                    status="done", D=199_210, final_eval_mean=acc, best_eval_mean=acc,
                    config=cfg,
                )
            )  # fmt: skip
    groups = estimate_all(records, draws=100)
    for order in (groups, groups[::-1]):
        ref = reference_group(order, records)
        assert ref is not None and ref["config_hash"] == "he"
    labels = {
        g["config_hash"]: row_label([r for r in records if r.config_hash == g["config_hash"]], g)
        for g in groups
    }
    assert "fc_mnist init he_normal / l2 0.0001 /" in labels["he"]
    assert "init" not in labels["torch"] and "l2" not in labels["torch"]


def test_ours_under_the_papers_line_is_our_own_estimate_where_the_lines_agree() -> None:
    """InvertedPendulum ES: the paper's line is the solved score, which is our d_int100
    line too, so the paper column's number and interval are the d_int100 column's (the
    same draws on the same scale: failed trials at the group's floor)."""
    store = (
        Path(__file__).resolve().parents[1] / "docs/stores/paper/inverted_pendulum_openai_es.sqlite"
    )
    records = load_records([store])
    groups = estimate_all(records)
    rows, _ = build_rows(records, groups)
    (row,) = rows
    assert row["paper_d_int"] == 4
    ours = groups[0]["d_int100"]
    assert row["paper_rule_ours"] == pytest.approx(ours["headline"])
    assert (row["paper_rule_ours_lo"], row["paper_rule_ours_hi"]) == pytest.approx(
        tuple(ours["interpolated_interval"])
    )


def test_width_figure_from_groups_at_several_sizes(stores: list[Path], tmp_path: Path) -> None:
    records = load_records(stores)
    groups = estimate_all(records, draws=100)
    wide = [{**groups[0], "D": groups[0]["D"] * 4, "config_hash": "w"}, groups[0]]
    fig = width_figure(wide)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "D" in ax.get_xlabel() and ax.get_legend() is not None
    assert set(width_series(wide)) == {f"{groups[0]['task']}_{groups[0]['algorithm']}_dense"}
    # two networks of one task (MNIST FC and LeNet) are not one network at two widths
    other = {**groups[0], "D": groups[0]["D"] * 4, "network": "other_net", "config_hash": "o"}
    assert width_series([other, groups[0]]) == {}
    # a size with no d_int90 to draw (no baseline yet) makes no one-point series
    bare = {**groups[0], "D": groups[0]["D"] * 4, "config_hash": "b", "d_int90": None}
    assert width_series([bare, groups[0]]) == {}
    # where two networks each have widths, the file names tell them apart
    both = [*wide, other, {**other, "D": other["D"] * 2, "config_hash": "o2"}]
    stem = f"{groups[0]['task']}_{groups[0]['algorithm']}"
    net = groups[0]["network"]
    assert set(width_series(both)) == {f"{stem}_{net}_dense", f"{stem}_other_net_dense"}


def test_cli_report_json(stores: list[Path], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "o"
    assert main(["report", *map(str, stores), "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["rows"]) == 2 and all(Path(p).exists() for p in r["figures"])
    assert set(r["tables"]) == {"difficulty.md", "difficulty.csv", "difficulty.tex", "COMMANDS.md"}


def test_missing_and_empty_stores_one_error_line(cli: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()  # a valid store with no trials
    for path in (tmp_path / "nope.sqlite", empty):
        proc = cli("report", str(path), "--out", str(tmp_path / "o"), check=False)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rlsub: error:") and str(path) in lines[0]
    assert not (tmp_path / "o").exists()
    with pytest.raises(RlsubError, match="no results store"):
        load_records([])


def test_demo_with_tiny_config(
    fake: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(fake_dict("tiny", solved_score=95.0)))
    monkeypatch.setenv("RLSUB_DEMO_CONFIGS", f"{cfg},{tmp_path / 'absent.yaml'}")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipping" in captured.err and "absent.yaml" in captured.err
    assert "| row |" in captured.out and "curves.png" in captured.out
    assert (out / "tiny.sqlite").exists() and (out / "difficulty.md").exists()
    assert (out / "curves.png").exists() and (out / "difficulty.pdf").exists()
    assert "RLSUB_DEMO_CONFIGS=" in (out / "COMMANDS.md").read_text()
    assert main(["demo", "--out", str(out), "--json"]) == 0  # resumes: reuses the store
    r = json.loads(capsys.readouterr().out)
    assert r["sweeps"][0]["trials"]["run"] == 0 and r["skipped"]


def _record(name: str, env: str | None, d: int, steps: list[int]) -> dict[str, Any]:
    curve = [{"step": s, "value": -21.0 + i, "train_mean": -21.0} for i, s in enumerate(steps)]
    return {
        "name": name,
        "d": d,
        "direct": False,
        "seed": 0,
        "final_eval_mean": curve[-1]["value"],
        "curve": curve,
        "config": {"env": env} if env else {},
    }


def test_curves_of_records_frames_for_atari(tmp_path: Path, capsys: Any) -> None:
    from rlsub.analysis.figures import learning_curves_figure

    recs = [_record("pong_es", "pong", 6000, [100, 200, 300]), _record("x", None, 4, [5, 10])]
    fig, xlabel = learning_curves_figure(recs)
    ax = fig.axes[0]
    assert xlabel == "emulator frames (agent steps x 4)" == ax.get_xlabel()
    assert ax.get_ylabel() and ax.get_legend() is not None
    xs = list(ax.get_lines()[0].get_xdata())
    assert xs == [400, 800, 1200]  # frames = agent steps x frameskip 4 (envs/pong.yaml)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("random policy (-20.27)" in t for t in labels)
    assert any("solved score (21)" in t for t in labels)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recs[0]))
    out = tmp_path / "p" / "pong.png"
    assert main(["curves", str(path), "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["figures"] == [str(out), str(out.with_suffix(".pdf"))]
    assert out.stat().st_size > 0 and out.with_suffix(".pdf").stat().st_size > 0


def test_curves_bad_input_one_error_line(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    for path in (tmp_path / "nope.json", bad, empty):
        proc = cli("curves", str(path), "--out", str(tmp_path / "c.png"), check=False)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rlsub: error:") and str(path) in lines[0]
    assert not (tmp_path / "c.png").exists()


def test_one_config_in_two_stores_gives_two_rows_unless_pooled(fake: None, tmp_path: Path) -> None:
    """`rlsub report a b` with the same config in both stores: one row per store, each
    labelled with its store; `--pool` makes one row whose notes name both stores."""
    cfg = experiment_from_dict(fake_dict("fake_same", "dense", solved_score=95.0))
    paths = [tmp_path / "grid.sqlite", tmp_path / "more.sqlite"]
    run_sweep(cfg, paths[0], mode="grid")
    run_sweep(cfg, paths[1], mode="adaptive")
    records = load_records(paths)
    rows, _ = build_rows(records, estimate_all(records, draws=200))
    assert len(rows) == 2
    assert {r["label"].rsplit("[store ", 1)[1] for r in rows} == {"grid.sqlite]", "more.sqlite]"}
    pooled = load_records(paths, pool=True)
    rows, _ = build_rows(pooled, estimate_all(pooled, draws=200))
    (row,) = rows
    assert row["trials"] == len(pooled) and any("pooled" in n for n in row["notes"])


def test_difficulty_markers_say_only_what_was_estimated(stores: list[Path]) -> None:
    """A row with no d_int90 estimate (no baseline) shows no grid value and no 'not
    reached' marker; a row whose mean never reaches the paper's line gets a marker for
    that on the paper's line, and one below the grid a '<' at the smallest d."""
    records = load_records(stores)
    rows, _ = build_rows(records, estimate_all(records, draws=100))
    unset = dict.fromkeys(("d_int90", "d_int90_lo", "d_int90_hi", "d_int90_grid", "d_int90_est"))
    no_base = {**rows[0], **unset, "paper_d_int": None}
    _, cells = display_rows([no_base])
    assert cells[0][4] == "-" and cells[0][5] == "-", cells[0]

    def legend(rs: list[dict[str, Any]]) -> list[str]:
        fig = difficulty_figure(rs)
        return [t.get_text() for leg in fig.legends for t in leg.get_texts()]

    assert not any("largest d" in t or "smallest d" in t for t in legend([no_base]))
    beyond = {**no_base, "paper_d_int": 40, "paper_rule_ours_est": {"headline_side": "beyond"}}
    assert any("paper's line: > largest d" in t for t in legend([beyond]))
    unsolved = {**no_base, "d_int100": None, "d_int100_est": {"headline_side": "beyond"}}
    assert any("d_int100 > largest d" in t for t in legend([unsolved]))
    below = {**no_base, "d_int90_est": {"headline_side": "below"}}
    assert any("< smallest d" in t for t in legend([below]))


def test_report_files_are_the_same_bytes_for_the_same_stores(
    stores: list[Path], tmp_path: Path
) -> None:
    """No creation date in the PDFs: a fresh clone regenerates identical figures."""
    a, b = tmp_path / "a", tmp_path / "b"
    report(stores, a, "rlsub report")
    report(stores, b, "rlsub report")
    pdfs = sorted(p.name for p in a.glob("*.pdf"))
    assert pdfs and all((a / n).read_bytes() == (b / n).read_bytes() for n in pdfs), pdfs
    assert not any(b"/CreationDate" in (a / n).read_bytes() for n in pdfs)
