"""Run the README's Python examples as written: `python tests/readme_examples.py README.md`.

Every ```python block of the README runs in order, in one namespace, in a fresh
temporary folder (on sys.path, so the README's own modules import); a block whose
first line is `# file: NAME` is written to NAME instead of run. Exits non-zero on
the first failing block, naming it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
from pathlib import Path


def blocks(readme: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)


def run(readme_path: str) -> int:
    code_blocks = blocks(Path(readme_path).read_text())
    if not code_blocks:
        print(f"{readme_path}: no python blocks", file=sys.stderr)
        return 1
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        sys.path.insert(0, tmp)
        namespace: dict[str, object] = {"__name__": "__readme__"}
        try:
            for i, code in enumerate(code_blocks, 1):
                first = code.splitlines()[0] if code.strip() else ""
                m = re.match(r"#\s*file:\s*(\S+)", first)
                if m:
                    Path(m.group(1)).write_text(code)
                    continue
                try:
                    exec(compile(code, f"README block {i}", "exec"), namespace)
                except Exception:
                    traceback.print_exc()
                    print(f"README python block {i} failed", file=sys.stderr)
                    return 1
        finally:
            os.chdir(here)
            sys.path.remove(tmp)
    print(f"readme examples: {len(code_blocks)} python blocks ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
