"""Where the bundled env specs and experiment configs are found.

They ship inside the package (rlsub/bundled/envs/*.yaml, rlsub/bundled/configs/*.yaml,
package data of the wheel); the repository's top-level envs/ and configs/ are links to
those folders. This is the one module that knows their location; everything else asks
here, by name (`cartpole_es`) or by path, so nothing depends on the working directory.

Imports: nothing of rlsub.
"""

from __future__ import annotations

from pathlib import Path

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
