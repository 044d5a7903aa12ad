"""Where the bundled env specs and experiment configs are found.

They ship inside the package (rlsub/bundled/envs/*.yaml, rlsub/bundled/configs/*.yaml,
package data of the wheel); the repository's top-level envs/ and configs/ are links to
those folders. This is the one module that knows their location; everything else asks
here, by name (`cartpole_es`) or by path, so nothing depends on the working directory.
`catalog()` lists them, one line each (`rlsub configs`).

Imports: nothing of rlsub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1] / "bundled"
ENV_DIR = ROOT / "envs"
CONFIG_DIR = ROOT / "configs"


def config_path(name_or_path: str | Path) -> Path:
    """A config file as given (if it exists), else the bundled config of that name
    (`cartpole_es`, `cartpole_es.yaml` or `configs/cartpole_es.yaml` from any folder);
    the path as given when neither exists (the caller reports it)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidates = [CONFIG_DIR / p.name] if p.suffix else [CONFIG_DIR / f"{p}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    return p


def _budget(train: dict[str, Any]) -> str:
    for key, unit in (
        ("generations", "generations"),
        ("total_timesteps", "steps"),
        ("epochs", "epochs"),
    ):
        if key in train:
            value = train[key]
            return f"{value:,} {unit}" if isinstance(value, int) else f"{value} {unit}"
    return ""


def _network(net: Any) -> str:
    if not isinstance(net, dict):
        return str(net)
    kwargs = net.get("kwargs") or {}
    hidden = kwargs.get("hidden")
    shape = "-".join(str(h) for h in hidden) if isinstance(hidden, list) else ""
    return " ".join(str(p) for p in (net.get("name", "?"), shape, kwargs.get("activation")) if p)


def _describe_config(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """One bundled config (or suite) as a short summary, from its YAML alone."""
    if "experiments" in data:
        n = len(data.get("experiments") or [])
        return {"name": path.stem, "kind": "suite", "line": f"suite of {n} experiments"}
    sweep = data.get("sweep") or {}
    grid, seeds = sweep.get("d_grid") or [], sweep.get("seeds") or []
    dataset = data.get("dataset")
    task = dataset.get("name", "?") if isinstance(dataset, dict) else data.get("env", "?")
    if isinstance(task, dict):  # an inline env spec
        task = task.get("name") or task.get("id", "?")
    if data.get("env_variant"):
        task = f"{task}-{data['env_variant']}"
    if isinstance(dataset, dict) and dataset.get("variant", "standard") != "standard":
        task = f"{task}-{dataset['variant']}"
    parts = [str(task), str(data.get("algorithm", "?")), _network(data.get("network"))]
    budget = _budget(data.get("train") or {})
    if budget:
        parts.append(budget)
    if grid:
        parts.append(f"d {min(grid)}..{max(grid)} ({len(grid)}) x {len(seeds)} seeds")
    return {"name": path.stem, "kind": "config", "line": " / ".join(parts)}


def _describe_env(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    bits = [f"{data.get('id', '?')}", f"solved at {data.get('solved_score', '?')}"]
    if data.get("random_score") is not None:
        bits.append(f"random {data['random_score']}")
    bits.append(f"episodes of at most {data.get('max_episode_steps', '?')} steps")
    if data.get("requires"):
        bits.append(f"needs {data['requires']}")
    if data.get("variants"):
        bits.append(f"variants: {', '.join(data['variants'])}")
    return {"name": path.stem, "kind": "env", "line": ", ".join(bits)}


def catalog() -> dict[str, list[dict[str, Any]]]:
    """The bundled configs, suites and env specs, each {name, kind, line}: one line that
    says what it is, read from the YAML files alone (nothing is built or imported)."""
    import yaml

    def read(path: Path) -> dict[str, Any]:
        data = yaml.safe_load(path.read_text())
        return data if isinstance(data, dict) else {}

    entries = [_describe_config(p, read(p)) for p in sorted(CONFIG_DIR.glob("*.yaml"))]
    return {
        "configs": [e for e in entries if e["kind"] == "config"],
        "suites": [e for e in entries if e["kind"] == "suite"],
        "envs": [_describe_env(p, read(p)) for p in sorted(ENV_DIR.glob("*.yaml"))],
    }
