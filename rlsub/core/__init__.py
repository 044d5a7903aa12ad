"""The measurement's building blocks: typed configs, the plug-in registries, random
projections P, `Subspace` (theta = theta0 + P z), populations, seeds, errors.

Imports: nothing else of rlsub (torch, numpy, scipy, numba, yaml only).
"""
