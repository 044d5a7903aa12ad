"""Sweeps: grid and adaptive strategies over d x seeds into a store, the executors they
run trials on (in-process, process pool, Ray), and suites of sweeps.

Imports: every layer below (analysis, experiment, algos, data, envs, nets, core).
"""
