"""One trial and where it is kept: `run_trial` (config, d, seed) -> `TrialRecord`, and the
SQLite results store.

Imports: core, algos (through the trainer registry), and below.
"""
