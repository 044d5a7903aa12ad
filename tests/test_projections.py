import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from rlsub.core.errors import RlsubError
from rlsub.core.fastfood import FastfoodProjection, _factor_sizes, _hadamard, fwht
from rlsub.core.projections import make_projection, materialize

KINDS = ["dense", "sparse", "fastfood"]


def test_fwht_matches_hadamard_matrix():
    for L in (2, 8, 64, 1024, 4096):
        x = torch.randn(3, L, dtype=torch.float64)
        Hs = [_hadamard(n, torch.float64) for n in _factor_sizes(L)]
        ref = x @ torch.tensor(hadamard(L), dtype=torch.float64)
        torch.testing.assert_close(fwht(x, Hs), ref)


def test_fastfood_equals_explicit_matrix():
    D, d = 300, 20
    P = FastfoodProjection(D, d, seed=3)
    L = P.L
    H = torch.tensor(hadamard(L), dtype=torch.float32)
    Pi = torch.zeros(L, L)
    Pi[torch.arange(L), P.Pi[0].long()] = 1.0  # (Pi x)_i = x[Pi[i]]
    # y = H G Pi H B pad(z), first D rows, G already carries the 1/(sqrt(D)||G||) scale
    M = (H @ torch.diag(P.G[0]) @ Pi @ H @ torch.diag(P.B[0]))[:D, :d]
    torch.testing.assert_close(materialize(P), M, rtol=1e-4, atol=1e-5)
    z = torch.randn(d)
    torch.testing.assert_close(P(z), M @ z, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_column_norms_are_one(kind):
    # D = 3000 is not a power of two, so fastfood truncates L = 4096 to D rows
    P = make_projection(
        kind, 3000, 40, seed=1, layer_sizes=[2000, 1000] if kind == "sparse" else None
    )
    norms = materialize(P).norm(dim=0)
    assert torch.all((norms - 1).abs() < 0.05), norms


def test_sparse_nbytes_counts_the_scipy_copy_it_holds():
    P = make_projection("sparse", 5_000, 20, seed=1)
    torch_bytes = sum(t.element_size() * t.nelement() for t in P._tensors())
    nnz = P.P.values().numel()
    # the CSC blocks add at least float32 values + int32 row indices per non-zero
    assert P.nbytes >= torch_bytes + 8 * nnz


def test_sparse_cpu_forward_over_several_row_blocks_equals_the_csr_product():
    from rlsub.core.sparse import CSC_BLOCK_ROWS, _csr_matmul

    D = 2 * CSC_BLOCK_ROWS + 1_000  # three row blocks, the last one short
    P = make_projection("sparse", D, 6, seed=3)
    assert [(a, b) for a, b, _ in P.csc()] == [
        (0, CSC_BLOCK_ROWS),
        (CSC_BLOCK_ROWS, 2 * CSC_BLOCK_ROWS),
        (2 * CSC_BLOCK_ROWS, D),
    ]
    Z = torch.randn(3, 6)
    expected = _csr_matmul(P.P, Z)  # torch's CSR product, not the SciPy path
    torch.testing.assert_close(P(Z), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(P(Z[1]), expected[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_equals_single_and_is_differentiable(kind):
    P = make_projection(kind, 500, 12, seed=2)
    Z = torch.randn(4, 12)
    out = P(Z)
    assert out.shape == (4, 500)
    for i in range(4):
        torch.testing.assert_close(out[i], P(Z[i]), rtol=1e-5, atol=1e-6)
    z = torch.randn(12, requires_grad=True)
    g = torch.randn(500)
    P(z).backward(g)
    torch.testing.assert_close(z.grad, materialize(P).t() @ g, rtol=1e-4, atol=1e-5)


def test_fastfood_stacks_blocks_when_d_exceeds_L():
    P = FastfoodProjection(100, 300, seed=0)  # L = 128, so 3 blocks
    assert P.n_blocks == 3
    M = materialize(P)
    assert M.shape == (100, 300)
    assert torch.all((M.norm(dim=0) - 1).abs() < 0.35)  # D=100 of L=128 rows: norm about 1
    assert abs(M.norm(dim=0).mean().item() - 1) < 0.05
    assert torch.linalg.matrix_rank(M) == 100


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_P_in_fresh_process(kind):
    code = (
        "import torch; from rlsub.core.projections import make_projection, materialize;"
        f"print(repr(materialize(make_projection('{kind}', 200, 7, seed=11)).sum(0).tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    here = materialize(make_projection(kind, 200, 7, seed=11)).sum(0).tolist()
    assert np.allclose(eval(out), here, rtol=0, atol=0)
    other = materialize(make_projection(kind, 200, 7, seed=12)).sum(0).tolist()
    assert not np.allclose(other, here)


def test_projections_leave_global_rng_alone():
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    for kind in KINDS:
        make_projection(kind, 100, 5, seed=1)
    assert torch.equal(torch.rand(3), a)


def test_fastfood_memory_is_order_D():
    D = 200_000
    P = make_projection("fastfood", D, 5000, seed=0)
    assert (
        P.nbytes < 8 * 4 * 2**18
    )  # a few L = 2^18 floats (B, Pi, G, the kernels' scratch), never D x d


@pytest.mark.parametrize(
    "kind,D,d,match",
    [
        ("dense", 100, 0, "d must be > 0"),
        ("sparse", 100, -3, "d must be > 0"),
        ("dense", 100, 101, "exceeds D=100"),
        ("sparse", 100, 101, "exceeds D=100"),
        (
            "gaussian",
            100,
            10,
            "unknown projection kind 'gaussian'; allowed: dense, sparse, fastfood",
        ),
    ],
)
def test_bad_input_gives_clear_error(kind, D, d, match):
    with pytest.raises(RlsubError, match=match):
        make_projection(kind, D, d, seed=0)


def test_dense_refuses_over_memory_limit_naming_alternatives():
    with pytest.raises(RlsubError, match="sparse or fastfood"):
        make_projection("dense", 1_000_000, 1000, seed=0, dense_limit_gib=1.0)


@pytest.mark.parametrize(
    "D,d,sizes",
    [
        (3_000, 40, [2_000, 990, 10]),  # a 10-row layer: rows far longer than the ELL width
        (50, 45, None),  # d close to D: many duplicated (row, column) draws
        (40_000, 33_000, None),  # 2d + 1 > 65,535: int32 codes instead of uint16
    ],
)
def test_sparse_single_z_cpu_path_equals_the_csr_product(D, d, sizes):
    from rlsub.core.sparse import _csr_matmul

    P = make_projection("sparse", D, d, seed=5, layer_sizes=sizes)
    assert P.ell.ell.dtype == (np.int32 if 2 * d + 1 > 65_535 else np.uint16)
    z = torch.randn(d, requires_grad=True)
    theta0 = torch.randn(D)
    expected = theta0 + _csr_matmul(P.P, z.detach()[None])[0]  # torch's CSR, not the ELL kernel
    out = P.affine(theta0, z)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(P(z), expected - theta0, rtol=1e-5, atol=1e-5)
    g = torch.randn(D)
    out.backward(g)
    torch.testing.assert_close(z.grad, torch.mv(P.Pt, g), rtol=1e-5, atol=1e-5)
    if sizes is not None:  # rows longer than the ELL width are there, so the test covers them
        assert P.ell.classes[:-1, 1].max() > 4


def test_sparse_ell_forward_sums_in_its_documented_order_to_the_bit():
    """base + ((t0 + t1) + (t2 + t3)) over a row's first four entries in draw order (a
    missing one is 0), then its later entries one after another: rlsub.core.sparse_ell's
    order, unchanged since its first version (a sweep's sparse trials depend on it)."""
    from rlsub.core import sparse_ell

    rng = np.random.default_rng(3)
    D, d, n = 700, 30, 5_000
    sizes = [600, 90, 10]  # the 10-row layer gets rows of hundreds of entries
    rows = np.concatenate([rng.integers(0, 600, 2_000), rng.integers(600, 700, n - 2_000)])
    cols, neg = rng.integers(0, d, n), rng.random(n) < 0.5
    scale = rng.random(d).astype(np.float32) + np.float32(0.5)
    m = sparse_ell.build(rows, cols, neg, scale, D, sizes)
    z, base = rng.standard_normal(d).astype(np.float32), rng.standard_normal(D).astype(np.float32)
    s = z * scale
    vals = np.where(neg, -s[cols], s[cols]).astype(np.float32)
    order = np.argsort(rows, kind="stable")
    r, v = rows[order], vals[order]
    rank = np.arange(n) - np.searchsorted(r, r)
    t = np.zeros((4, D), dtype=np.float32)
    t[rank[rank < 4], r[rank < 4]] = v[rank < 4]
    expected = base + ((t[0] + t[1]) + (t[2] + t[3]))
    later = rank >= 4
    np.add.at(expected, r[later], v[later])  # one float32 addition at a time, in order
    assert m.classes[:-1, 1].max() > 10
    out = sparse_ell.affine(m, z, base)
    assert np.array_equal(out.view(np.int32), expected.view(np.int32))
