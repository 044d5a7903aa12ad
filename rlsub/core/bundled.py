"""Where the bundled env specs (envs/) and experiment configs (configs/) are found.

The one module that knows their location; everything else asks here, by name
(`cartpole_es`) or by path.

Imports: nothing of rlsub.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = ROOT / "envs"
CONFIG_DIR = ROOT / "configs"


def config_path(name_or_path: str | Path) -> Path:
    """A config file as given (if it exists), else the bundled configs/NAME.yaml (or
    configs/PATH for a relative path such as `configs/cartpole_es.yaml`); the path as
    given when neither exists (the caller reports it)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidates = [CONFIG_DIR / p.name] if p.suffix else [CONFIG_DIR / f"{p}.yaml"]
    if not p.is_absolute():
        candidates.append(ROOT / p)
    for c in candidates:
        if c.is_file():
            return c
    return p
