"""Fastfood's products on the CPU (numba kernels): y = H G Pi H B pad(z) and its transpose.

H is the unnormalised Walsh-Hadamard transform of length L = 2^k, computed by
`wht` in place as the radix-2 butterfly (a, b) -> (a + b, a - b) over the
stages h = 1, 2, 4, ..., L/2 in that order. The stages are grouped (three at a
time in registers, then two at a time, first inside blocks of `BLOCK` floats
that stay in L1, then across blocks in column chunks that stay in L2), but every
grouping performs exactly the additions of the plain radix-2 transform in the
same order, so the result is the same to the bit (tests/test_fastfood.py).

The first H acts on pad(z), zero past the block's d_b entries. With m = the
power of two >= d_b, H_L x for x zero past m is H_m x tiled L/m times:
(H_L x)[i] = (H_m x)[i mod m]. So the forward computes one transform of length m,
gathers G[i] * v[Pi[i] mod m] (from a table that stays in L1) and transforms once
at length L; the transpose (the backward) transforms g once at length L,
scatter-adds G[i] * a[i] into v[Pi[i] mod m] and transforms v at length m. One
length-L transform each way instead of two, and no batched matmuls.

Kernels are compiled without fast-math (no reassociation, no FMA contraction):
the same bits on any x86-64 CPU.

Imports: numpy and numba only (imported by rlsub.core.fastfood on first CPU use).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 2**13  # 32 KiB of float32: the stages h < BLOCK run block by block, in L1
CHUNK = 256  # columns per chunk in the stages h >= BLOCK (the rows of L / BLOCK)


@njit(cache=True, inline="always")
def _r8(x, n):  # type: ignore[no-untyped-def]
    """Stages h = 1, 2, 4 of x[:n] (n a multiple of 8), eight values at a time in registers
    (written with constant offsets from 8 j so that LLVM vectorises it with shuffles)."""
    for j in range(n // 8):
        u = 8 * j
        a0, a1, a2, a3 = x[u], x[u + 1], x[u + 2], x[u + 3]
        a4, a5, a6, a7 = x[u + 4], x[u + 5], x[u + 6], x[u + 7]
        b0, b1, b2, b3 = a0 + a1, a0 - a1, a2 + a3, a2 - a3
        b4, b5, b6, b7 = a4 + a5, a4 - a5, a6 + a7, a6 - a7
        c0, c1, c2, c3 = b0 + b2, b1 + b3, b0 - b2, b1 - b3
        c4, c5, c6, c7 = b4 + b6, b5 + b7, b4 - b6, b5 - b7
        x[u], x[u + 1], x[u + 2], x[u + 3] = c0 + c4, c1 + c5, c2 + c6, c3 + c7
        x[u + 4], x[u + 5], x[u + 6], x[u + 7] = c0 - c4, c1 - c5, c2 - c6, c3 - c7


@njit(cache=True, inline="always")
def _r4(a, b, c, e, n):  # type: ignore[no-untyped-def]
    """Stages h and 2h on four slices of length n at distances h (contiguous: vectorised)."""
    for t in range(n):
        s0 = a[t] + b[t]
        s1 = a[t] - b[t]
        s2 = c[t] + e[t]
        s3 = c[t] - e[t]
        a[t] = s0 + s2
        b[t] = s1 + s3
        c[t] = s0 - s2
        e[t] = s1 - s3


@njit(cache=True, inline="always")
def _r2(a, b, n):  # type: ignore[no-untyped-def]
    """Stage h on two slices of length n at distance h."""
    for t in range(n):
        u = a[t]
        w = b[t]
        a[t] = u + w
        b[t] = u - w


@njit(cache=True)
def _wht_block(x):  # type: ignore[no-untyped-def]
    """Every stage of x (length n, a power of two): H_n x in place."""
    n = x.shape[0]
    h = 1
    if n >= 8:
        _r8(x, n)
        h = 8
    while 4 * h <= n:
        for q in range(0, n, 4 * h):
            _r4(x[q : q + h], x[q + h : q + 2 * h], x[q + 2 * h : q + 3 * h], x[q + 3 * h : q + 4 * h], h)  # fmt: skip
        h *= 4
    while h < n:
        for q in range(0, n, 2 * h):
            _r2(x[q : q + h], x[q + h : q + 2 * h], h)
        h *= 2


@njit(cache=True, inline="always")
def _columns(x, n):  # type: ignore[no-untyped-def]
    """The stages h >= n of x (L,), after those below n: x as (L / n, n), transformed down
    its columns, CHUNK columns at a time (they stay in L2)."""
    R = x.shape[0] // n
    X = x.reshape(R, n)
    for c in range(0, n, CHUNK):
        h = 1
        while 4 * h <= R:
            for q in range(0, R, 4 * h):
                for r in range(q, q + h):
                    _r4(X[r, c : c + CHUNK], X[r + h, c : c + CHUNK], X[r + 2 * h, c : c + CHUNK], X[r + 3 * h, c : c + CHUNK], CHUNK)  # fmt: skip
            h *= 4
        while h < R:
            for q in range(0, R, 2 * h):
                for r in range(q, q + h):
                    _r2(X[r, c : c + CHUNK], X[r + h, c : c + CHUNK], CHUNK)
            h *= 2


@njit(cache=True)
def wht(x):  # type: ignore[no-untyped-def]
    """H_L x in place for x: (L,) float32, L a power of two (unnormalised, natural order)."""
    L = x.shape[0]
    n = min(L, BLOCK)
    for s in range(0, L, n):
        _wht_block(x[s : s + n])
    if L > n:
        _columns(x, n)


@njit(cache=True)
def forward_block(z, B, Pi, G, work, v):  # type: ignore[no-untyped-def]
    """work <- H G Pi H B pad(z) for one block: z (d_b,), B, G (L,) float32, Pi (L,) int32;
    work (L,) and v (>= m,) are scratch (work holds the result). The gather
    G[i] * v[Pi[i] mod m] fills work one L1 block at a time, transformed at once."""
    d_b = z.shape[0]
    L = work.shape[0]
    m = 1
    while m < d_b:
        m *= 2
    u = v[:m]
    for j in range(d_b):
        u[j] = z[j] * B[j]
    for j in range(d_b, m):
        u[j] = 0.0
    wht(u)
    mask = m - 1
    n = min(L, BLOCK)
    for s in range(0, L, n):
        for i in range(s, s + n):
            work[i] = u[Pi[i] & mask] * G[i]
        _wht_block(work[s : s + n])
    if L > n:
        _columns(work, n)


@njit(cache=True)
def backward_block(a, B, Pi, Pi_inv, G, gz, v):  # type: ignore[no-untyped-def]
    """gz (d_b,) <- the block's share of P^T g: B H Pi^T G a, first d_b entries, where
    a = H pad(g) (L,) is already transformed (it is the same for every block)."""
    d_b = gz.shape[0]
    L = a.shape[0]
    m = 1
    while m < d_b:
        m *= 2
    u = v[:m]
    if m == L:  # a permutation: gather through its inverse (every entry gets one term)
        for k in range(L):
            i = Pi_inv[k]
            u[k] = G[i] * a[i]
    else:  # fold the L entries onto m: v[k mod m] sums every i with Pi[i] = k
        mask = m - 1
        for k in range(m):
            u[k] = 0.0
        for i in range(L):
            u[Pi[i] & mask] += G[i] * a[i]
    wht(u)
    for j in range(d_b):
        gz[j] = B[j] * u[j]


@njit(cache=True)
def add_block(out, work, base, first, last):  # type: ignore[no-untyped-def]
    """Sum the blocks into out (D,): out = work[:D] for the first, out + work[:D] after;
    then base + out after the last when base (D,) is given (an empty base: none)."""
    D = out.shape[0]
    with_base = last and base.shape[0] == D
    if first and with_base:
        for i in range(D):
            out[i] = base[i] + work[i]
        return
    if first:
        for i in range(D):
            out[i] = work[i]
    else:
        for i in range(D):
            out[i] = out[i] + work[i]
    if with_base:
        for i in range(D):
            out[i] = base[i] + out[i]


def scratch(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(work, v): the two float32 buffers of length L the kernels write into."""
    return np.empty(L, dtype=np.float32), np.empty(L, dtype=np.float32)
