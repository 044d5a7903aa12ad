"""rlsub: intrinsic dimension of RL and supervised objective landscapes.

theta = theta0 + P z: a network is trained only inside a random d-dimensional
subspace (Li, Farkhoor, Liu, Yosinski, "Measuring the Intrinsic Dimension of
Objective Landscapes", ICLR 2018).
"""

__version__ = "0.1.0"
