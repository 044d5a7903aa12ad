"""Rewrite the tables of README.md and docs/RESULTS.md from the committed stores.

    python docs/update_tables.py

Each document holds a block `<!-- TAG: STORES=GLOB ... -->` ... `<!-- /TAG -->`; the
table inside is replaced by `rlsub report`'s table of the stores matching GLOB (the
same estimator, the same rows). Only stores git tracks count (in a git checkout):
a sweep still writing beside them, untracked, changes no table until its store is
committed. tests/test_readme.py fails when a block and its stores disagree.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rlsub.analysis.estimate import estimate_all
from rlsub.analysis.report import load_records
from rlsub.analysis.rows import build_rows, paper_rows
from rlsub.analysis.tables import markdown_rows

ROOT = Path(__file__).resolve().parents[1]


def tracked(paths: list[Path]) -> list[Path]:
    """The paths git tracks (staged ones included); all of them outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", *map(str, paths)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return paths
    known = {(ROOT / p).resolve() for p in out.decode().split("\0") if p}
    return [p for p in paths if p.resolve() in known]


def table(stores: list[str], with_paper: bool = False) -> list[str]:
    paths = tracked(sorted(p for s in stores for p in ROOT.glob(s)))
    assert paths, f"no committed stores match {stores}"
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
