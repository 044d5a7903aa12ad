"""The README and docs/RESULTS.md cannot drift from the code: their tables are
regenerated here from the committed stores (docs/stores/) with the current
estimator and compared line by line; the README's Python examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rlsub.analysis.estimate import estimate_all
from rlsub.analysis.report import load_records
from rlsub.analysis.rows import build_rows, paper_rows
from rlsub.analysis.tables import markdown_rows

ROOT = Path(__file__).resolve().parents[1]


def _block(text: str, tag: str) -> tuple[list[str], list[str], bool]:
    """(stores named in the block's opening comment, the table lines inside it, whether
    it lists the paper's rows not measured: PAPER=1)."""
    m = re.search(rf"<!-- {tag}: (.*?) -->\n(.*?)<!-- /{tag} -->", text, flags=re.S)
    assert m, f"no <!-- {tag} --> block"
    stores = re.findall(r"STORES=(\S+)", m.group(1))
    lines = [ln for ln in m.group(2).splitlines() if ln.startswith("|")]
    return stores, lines, "PAPER=1" in m.group(1)


def _table(stores: list[str], with_paper: bool = False) -> list[str]:
    paths = sorted(p for s in stores for p in ROOT.glob(s))
    assert paths, f"no stores match {stores}"
    records = load_records(paths)
    rows, _ = build_rows(records, estimate_all(records))
    return markdown_rows(rows + (paper_rows(rows) if with_paper else []))


@pytest.mark.parametrize(
    ("doc", "tag"),
    [
        ("README.md", "demo-table"),
        ("docs/RESULTS.md", "results-table"),
        ("docs/RESULTS.md", "paper-table"),
    ],
)
def test_tables_match_the_committed_stores(doc: str, tag: str):
    stores, lines, with_paper = _block((ROOT / doc).read_text(), tag)
    assert lines == _table(stores, with_paper), f"{doc}: the table no longer matches {stores}"


@pytest.mark.slow
def test_readme_python_examples_run_as_written():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "readme_examples.py"), str(ROOT / "README.md")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "python blocks ran" in proc.stdout
