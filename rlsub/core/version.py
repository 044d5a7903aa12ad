"""rlsub's version (one place: `rlsub.__version__` and `rlsub --version` read it; the
test of `rlsub --version` checks it against pyproject.toml)."""

__version__ = "0.1.0"
