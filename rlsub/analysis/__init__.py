"""From records to results: the d_int estimator with intervals, difficulty tables and
figures. Pure functions: they return data, strings and figures; they print nothing.

Imports: experiment, algos (`algos.base`: what a registered trainer says of itself), envs,
core.
"""
