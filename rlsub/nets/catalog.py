"""The bundled networks, registered by name in `rlsub.core.registry.NETWORKS`.

Networks know nothing of subspaces. A spec plus an init seed rebuilds the same
network (and so the same theta0) in any process. Parameter counts match the
original paper (docs/REFERENCE.md) where it states them:

=====================  =========  ==============================================
name                   D          notes
=====================  =========  ==============================================
mlp                    varies     obs -> hidden... -> out; 4-20-20-2 ReLU is 562
fc_mnist               199,210    784-200-200-10 ReLU
fc_cifar               656,810    3072-200-200-10 ReLU
lenet_mnist            44,426     6c5-pool-16c5-pool-120-84-10 on 1x28x28
lenet_cifar            62,006     the same on 3x32x32
es_pong                1,005,974  conv16 8x8/4 - BN - conv32 4x4/2 - BN - FC256 - BN - 6
nature_cnn             1,687,206  conv32 8/4, conv64 4/2, conv64 3/1, FC512, 6 (Mnih 2015)
=====================  =========  ==============================================

The ES Pong network reaches the original's D = 1,005,974 exactly when its
convolutions use TensorFlow's 'SAME' padding (84 -> 21 -> 11), which the
original TF code used: 32 x 11 x 11 = 3,872 features feed the FC256 layer.
With PyTorch's default 'valid' padding (84 -> 20 -> 9) it would be 678,294.
BatchNorm scale and shift count as parameters (they are in the subspace);
running statistics are buffers (`set_batchnorm_statistics` sets them from a
reference batch). es_pong and nature_cnn are `ConvNet`s: besides the ordinary
forward they evaluate a whole population of parameter sets in one call
(grouped convolutions, batched matmuls), which ES rollouts use every step.

Imports: nets.mlp, nets.convnet (torch only). Knows nothing of subspaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from rlsub.nets.convnet import lenet
from rlsub.nets.mlp import MLP


def mlp(
    in_dim: int, out_dim: int, hidden: Sequence[int] = (20, 20), activation: str = "tanh"
) -> nn.Module:
    """`MLP(sizes, activation)` from in_dim, hidden, out_dim (RL: sizes come from the env)."""
    return MLP([in_dim, *hidden, out_dim], activation=activation)


def fc_mnist() -> nn.Module:
    return MLP([784, 200, 200, 10], "relu", flatten=True)


def fc_cifar() -> nn.Module:
    return MLP([3072, 200, 200, 10], "relu", flatten=True)


def lenet_mnist() -> nn.Module:
    return lenet(1, 28)


def lenet_cifar() -> nn.Module:
    return lenet(3, 32)


# Default keyword arguments so that `rlsub info --network NAME` works by name alone.
INFO_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"in_dim": 4, "out_dim": 2, "hidden": [20, 20], "activation": "relu"},
}
