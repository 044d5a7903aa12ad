"""The Fastfood projection's CPU kernels (rlsub.core.fastfood_kernels) against the torch
path (`apply_torch`, the Kronecker-matmul transform) and against a plain radix-2 transform."""

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from rlsub.core import fastfood_kernels as fk
from rlsub.core.fastfood import FastfoodProjection


def _radix2(x: np.ndarray) -> np.ndarray:
    """The textbook in-place radix-2 transform, stages h = 1, 2, 4, ... (numpy, float32)."""
    x = x.copy()
    h = 1
    while h < len(x):
        y = x.reshape(-1, 2, h)
        a, b = y[:, 0].copy(), y[:, 1].copy()
        y[:, 0], y[:, 1] = a + b, a - b
        h *= 2
    return x


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 7, 10, 13, 14, 16])
def test_wht_is_the_radix2_transform_to_the_bit(k):
    # k >= 14 runs the stages across blocks (fk.BLOCK = 2^13) in column chunks
    x = np.random.default_rng(k).standard_normal(2**k).astype(np.float32)
    y = x.copy()
    fk.wht(y)
    assert np.array_equal(y.view(np.int32), _radix2(x).view(np.int32))
    if k <= 10:
        np.testing.assert_allclose(y, hadamard(2**k) @ x.astype(np.float64), rtol=1e-4, atol=1e-4)


CASES = [(1, 1), (3, 2), (300, 20), (3000, 40), (40, 100), (562, 5000), (20_000, 3_000)]


@pytest.mark.parametrize("D,d", CASES)
def test_kernels_agree_with_the_torch_path(D, d):
    P = FastfoodProjection(D, d, seed=4)
    Z = torch.randn(3, d, requires_grad=True)
    out = P(Z)
    ref = P.apply_torch(Z)
    scale = ref.abs().max()
    torch.testing.assert_close(out / scale, ref / scale, rtol=0, atol=2e-6)
    g = torch.randn(3, D)
    (gz,) = torch.autograd.grad(out, Z, g)
    (gz_ref,) = torch.autograd.grad(ref, Z, g)
    scale = gz_ref.abs().max()
    torch.testing.assert_close(gz / scale, gz_ref / scale, rtol=0, atol=2e-6)


@pytest.mark.parametrize("D,d", CASES)
def test_affine_is_theta0_plus_the_product_to_the_bit(D, d):
    P = FastfoodProjection(D, d, seed=2)
    theta0, z, Z = torch.randn(D), torch.randn(d), torch.randn(4, d)
    assert torch.equal(P.affine(theta0, z), theta0 + P(z))
    assert torch.equal(P.affine(theta0, Z), theta0 + P(Z))
    assert torch.equal(P(Z)[1], P(Z[1]))  # a population row is the single product


def test_transpose_parts_is_the_gradient():
    D, d = 5_000, 70
    P = FastfoodProjection(D, d, seed=1)
    z = torch.randn(d, requires_grad=True)
    g = torch.randn(D)
    P(z).backward(g)
    parts = [(0, g[:1000].numpy()), (1000, g[1000:4000].reshape(30, 100).numpy())]
    parts.append((4000, g[4000:].numpy()))
    assert np.array_equal(P.transpose_parts(parts), z.grad.numpy())
    g[:1000] = 0  # a part left out counts as zeros
    assert np.array_equal(P.transpose_parts(parts[1:]), P.transpose_np(g[None].numpy())[0])
