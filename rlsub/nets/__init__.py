"""Networks: MLPs, ConvNets (es_pong, nature_cnn, LeNet) with batched population
forwards; registered by name in `rlsub.core.registry.NETWORKS`. They know nothing of
subspaces.

Imports: core only.
"""
