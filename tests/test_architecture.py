"""The house rules of rlsub/ (ARCHITECTURE.md), checked on the source with `ast`.

- Subpackages form layers along the data flow; a module imports only from its own
  layer or layers below it (lazy imports inside functions included).
- No import cycle between modules, lazy imports included.
- Results are printed only under rlsub/cli (`emit`).
- No module longer than 400 lines; every module has a docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlsub"
# bottom to top: a layer may import the layers before it, never those after it
LAYERS = [
    "core",
    "nets",
    "envs",
    "data",
    "rollout",
    "algos",
    "experiment",
    "analysis",
    "sweep",
    "cli",
    "benches",
]
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """rlsub modules imported anywhere in the file (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rlsub")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("rlsub"):
                continue
            for a in node.names:  # `from rlsub.rollout import lanes` imports a module
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def test_every_module_sits_in_a_layer():
    facade = ("rlsub", "rlsub.__main__")  # the package and `python -m rlsub`
    stray = [m for m in MODULES if m not in facade and _layer(m) is None]
    assert stray == [], f"modules outside the layers {LAYERS}: {stray}"


def test_imports_flow_one_way():
    wrong = []
    for mod, targets in GRAPH.items():
        layer = _layer(mod)
        if layer is None:  # rlsub/__init__.py: the public facade over every layer
            continue
        for t in targets:
            tl = _layer(t)
            if tl is None or LAYERS.index(tl) > LAYERS.index(layer):
                wrong.append(f"{mod} ({layer}) imports {t} ({tl})")
    assert wrong == [], "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {m: {t for t in ts if t in MODULES and t != m} for m, ts in GRAPH.items()}
    graph.pop("rlsub")  # the facade imports lazily from every layer
    # the package __init__ of a layer is imported with any of its modules: not an edge back
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if t == "rlsub" or m.startswith(t + "."):
                continue
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_emit_only_in_cli():
    users = []
    for mod, path in MODULES.items():
        if _layer(mod) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "emit" for a in node.names):
                users.append(mod)
    assert users == [], f"emit (printing results) imported outside rlsub/cli: {users}"


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_module_size_and_docstring(mod: str):
    path = MODULES[mod]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path} has {len(text.splitlines())} lines"
    assert ast.get_docstring(ast.parse(text)), f"{path} has no module docstring"


def test_each_layer_states_its_import_rule():
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())) or ""
        assert "Imports:" in doc, f"rlsub/{layer}/__init__.py does not state what it may import"
