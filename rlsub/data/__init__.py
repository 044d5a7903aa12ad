"""Supervised datasets: digits (bundled), MNIST and CIFAR-10 (downloaded or local), and
the original's variants. Registered by name in `rlsub.core.registry.DATASETS`.

Imports: core only.
"""
