"""The bundled networks, registered by name in `rlsub.core.registry.NETWORKS`.

Networks know nothing of subspaces. A spec plus an init seed rebuilds the same
network (and so the same theta0) in any process. Parameter counts match the
original paper (docs/REFERENCE.md) where it states them:

=====================  =========  ==============================================
name                   D          notes
=====================  =========  ==============================================
mlp                    varies     obs -> hidden... -> out; 4-20-20-2 ReLU is 562;
                                  init: torch (default) or he_normal (the paper's)
fc_mnist               199,210    784-200-200-10 ReLU          (these four: init as mlp's)
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

Imports: nets.mlp, nets.convnet, core.errors (torch only). Knows nothing of subspaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rlsub.core.errors import RlsubError
from rlsub.nets.convnet import lenet
from rlsub.nets.mlp import MLP


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (20, 20),
    activation: str = "tanh",
    init: str = "torch",
) -> nn.Module:
    """`MLP(sizes, activation)` from in_dim, hidden, out_dim (RL: sizes come from the env).

    init: "torch" (PyTorch's Linear default) or "he_normal" (the original paper's Keras
    layers: weights from a normal of std sqrt(2 / fan_in) truncated at 2 std, biases 0)."""
    net = MLP([in_dim, *hidden, out_dim], activation=activation)
    _init(net, init, "mlp")
    return net


def he_normal_(net: nn.Module) -> None:
    """Keras 2.0's he_normal in place on every Linear and Conv2d: a normal of std
    sqrt(2 / fan_in) truncated at 2 std (fan_in: inputs, times the kernel's area for a
    convolution), biases 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                fan_in = m.weight[0].numel()  # in_features, or in_channels x kh x kw
                std = math.sqrt(2.0 / fan_in)
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def _init(net: nn.Module, init: str, name: str) -> nn.Module:
    """`init`: "torch" (PyTorch's defaults, as built) or "he_normal" (the paper's Keras)."""
    if init == "he_normal":
        he_normal_(net)
    elif init != "torch":
        raise RlsubError(f"{name} init must be 'torch' or 'he_normal', got {init!r}")
    return net


# The paper's image networks; init="he_normal" is its Keras init (its model_builders.py
# gives every kernel he_normal and every bias 0), "torch" PyTorch's default
def fc_mnist(init: str = "torch") -> nn.Module:
    return _init(MLP([784, 200, 200, 10], "relu", flatten=True), init, "fc_mnist")


def fc_cifar(init: str = "torch") -> nn.Module:
    return _init(MLP([3072, 200, 200, 10], "relu", flatten=True), init, "fc_cifar")


def lenet_mnist(init: str = "torch") -> nn.Module:
    return _init(lenet(1, 28), init, "lenet_mnist")


def lenet_cifar(init: str = "torch") -> nn.Module:
    return _init(lenet(3, 32), init, "lenet_cifar")


# Default keyword arguments so that `rlsub info --network NAME` works by name alone.
INFO_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"in_dim": 4, "out_dim": 2, "hidden": [20, 20], "activation": "relu"},
}
