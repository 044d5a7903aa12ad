"""Population rollouts: N members x K episodes in one vector env, one batched forward per
step; pipelined halves for Atari; ES's antithetic pairs; compiled lane kernels for
small MLPs.

Imports: core, nets, envs.
"""
