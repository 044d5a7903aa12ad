"""The README and docs/RESULTS.md cannot drift from the code: their tables are
regenerated here from the committed stores (docs/stores/) with the current
estimator and compared line by line; the README's Python examples run as written."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    """The table docs/update_tables.py writes for these stores (the tracked ones)."""
    spec = importlib.util.spec_from_file_location(
        "update_tables", ROOT / "docs" / "update_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.table(stores, with_paper)


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
