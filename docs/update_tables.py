"""Rewrite the tables of README.md and docs/RESULTS.md from the committed stores.

    python docs/update_tables.py

Each document holds a block `<!-- TAG: STORES=GLOB ... -->` ... `<!-- /TAG -->`; the
table inside is replaced by `rlsub report`'s table of the stores matching GLOB (the
same estimator, the same rows). tests/test_readme.py fails when a block and its
stores disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from rlsub.analysis.estimate import estimate_all
from rlsub.analysis.report import load_records
from rlsub.analysis.rows import build_rows, paper_rows
from rlsub.analysis.tables import markdown_rows

ROOT = Path(__file__).resolve().parents[1]


def table(stores: list[str], with_paper: bool = False) -> list[str]:
    paths = sorted(p for s in stores for p in ROOT.glob(s))
    records = load_records(paths)
    rows, _ = build_rows(records, estimate_all(records))
    return markdown_rows(rows + (paper_rows(rows) if with_paper else []))


def update(doc: Path, tag: str) -> None:
    text = doc.read_text()
    pattern = re.compile(rf"(<!-- {tag}: (.*?) -->\n)(.*?)(<!-- /{tag} -->)", flags=re.S)
    m = pattern.search(text)
    if m is None:
        raise SystemExit(f"{doc}: no <!-- {tag} --> block")
    stores = re.findall(r"STORES=(\S+)", m.group(2))
    new = m.group(1) + "\n".join(table(stores, "PAPER=1" in m.group(2))) + "\n" + m.group(4)
    doc.write_text(text[: m.start()] + new + text[m.end() :])
    print(f"{doc.relative_to(ROOT)}: table of {', '.join(stores)}")


if __name__ == "__main__":
    update(ROOT / "README.md", "demo-table")
    update(ROOT / "docs" / "RESULTS.md", "results-table")
    update(ROOT / "docs" / "RESULTS.md", "paper-table")
