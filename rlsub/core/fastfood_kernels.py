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

Imports: numba only (imported by rlsub.core.fastfood on first CPU use).
"""

from __future__ import annotations

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


@njit(cache=True, inline="always")
def _stages(x, h):  # type: ignore[no-untyped-def]
    """The stages h, 2h, ... < n of x (length n, a power of two), two at a time."""
    n = x.shape[0]
    while 4 * h <= n:
        for q in range(0, n, 4 * h):
            _r4(x[q : q + h], x[q + h : q + 2 * h], x[q + 2 * h : q + 3 * h], x[q + 3 * h : q + 4 * h], h)  # fmt: skip
        h *= 4
    while h < n:
        for q in range(0, n, 2 * h):
            _r2(x[q : q + h], x[q + h : q + 2 * h], h)
        h *= 2


@njit(cache=True)
def _wht_block(x):  # type: ignore[no-untyped-def]
    """Every stage of x (length n, a power of two): H_n x in place."""
    n = x.shape[0]
    if n >= 8:
        _r8(x, n)
        _stages(x, 8)
    else:
        _stages(x, 1)


@njit(cache=True, inline="always")
def _chunk(X, c):  # type: ignore[no-untyped-def]
    """The stages h >= n on columns c .. c + CHUNK - 1 of X (R, n): down the columns."""
    R = X.shape[0]
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
    if L > n:  # the stages h >= n: x as (L / n, n), down its columns, a chunk at a time (L2)
        X = x.reshape(L // n, n)
        for c in range(0, n, CHUNK):
            _chunk(X, c)


@njit(cache=True)
def _small(z, B, v):  # type: ignore[no-untyped-def]
    """u = H_m B pad(z) in v[:m] (m: the power of two >= len(z)); returns u."""
    d_b = z.shape[0]
    m = 1
    while m < d_b:
        m *= 2
    u = v[:m]
    for j in range(d_b):
        u[j] = z[j] * B[j]
    for j in range(d_b, m):
        u[j] = 0.0
    wht(u)
    return u


@njit(cache=True, inline="always")
def _emit(out, w, base, first, last):  # type: ignore[no-untyped-def]
    """A block's result w[:D] into out (D,): out = w for the first block, out + w after,
    and base + out after the last when base (D,) is given."""
    D = out.shape[0]
    if last and base.shape[0] > 0:
        if first:
            for i in range(D):
                out[i] = base[i] + w[i]
        else:
            for i in range(D):
                out[i] = base[i] + (out[i] + w[i])
    elif first:
        for i in range(D):
            out[i] = w[i]
    else:
        for i in range(D):
            out[i] = out[i] + w[i]


@njit(cache=True)
def forward(z, B, fold, G, work, v, base, out, first, last):  # type: ignore[no-untyped-def]
    """One block's share of (base +) P z into out (D,) (`_emit`): H G Pi H B pad(z), with
    z (d_b,), B, G (L,) float32, fold = Pi mod m (L,); work (L,), v (>= m,) scratch.

    The gather G[i] * u[fold[i]] fills work an L1 block at a time, transformed there
    (its first three stages in registers as it is gathered: 15 % faster than a separate
    gather), then the stages across blocks, then one pass into out."""
    u = _small(z, B, v)
    L = work.shape[0]
    n = min(L, BLOCK)
    for s in range(0, L, n):
        x = work[s : s + n]
        if n < 8:
            for i in range(n):
                x[i] = u[fold[s + i]] * G[s + i]
            _wht_block(x)
            continue
        for j in range(n // 8):
            i = s + 8 * j
            a0, a1 = u[fold[i]] * G[i], u[fold[i + 1]] * G[i + 1]
            a2, a3 = u[fold[i + 2]] * G[i + 2], u[fold[i + 3]] * G[i + 3]
            a4, a5 = u[fold[i + 4]] * G[i + 4], u[fold[i + 5]] * G[i + 5]
            a6, a7 = u[fold[i + 6]] * G[i + 6], u[fold[i + 7]] * G[i + 7]
            b0, b1, b2, b3 = a0 + a1, a0 - a1, a2 + a3, a2 - a3
            b4, b5, b6, b7 = a4 + a5, a4 - a5, a6 + a7, a6 - a7
            c0, c1, c2, c3 = b0 + b2, b1 + b3, b0 - b2, b1 - b3
            c4, c5, c6, c7 = b4 + b6, b5 + b7, b4 - b6, b5 - b7
            u8 = 8 * j
            x[u8], x[u8 + 1], x[u8 + 2], x[u8 + 3] = c0 + c4, c1 + c5, c2 + c6, c3 + c7
            x[u8 + 4], x[u8 + 5], x[u8 + 6], x[u8 + 7] = c0 - c4, c1 - c5, c2 - c6, c3 - c7
        _stages(x, 8)
    if L > n:
        X = work.reshape(L // n, n)
        for c in range(0, n, CHUNK):
            _chunk(X, c)
    _emit(out, work, base, first, last)


@njit(cache=True)
def backward(a, B, fold, Pi_inv, G, gz, v):  # type: ignore[no-untyped-def]
    """One block's share of P^T g: gz (d_b,) <- the first d_b entries of B H Pi^T G a,
    where a = H pad(g) (L,) is already transformed (blocks share it); v (>= m,) scratch.
    Pi^T G a folded onto m entries is u[fold[i]] += G[i] a[i] (m < L, a table in L1),
    or for m == L, a gather through Pi's inverse. (Folding each column chunk of the
    transform as it ends measured slower: 0.50 against 0.40 ms at L = 2^18.)"""
    d_b = gz.shape[0]
    L = a.shape[0]
    m = 1
    while m < d_b:
        m *= 2
    u = v[:m]
    if m == L:  # a permutation: every entry gets one term
        for k in range(L):
            i = Pi_inv[k]
            u[k] = G[i] * a[i]
    else:
        for k in range(m):
            u[k] = 0.0
        for i in range(L):
            u[fold[i]] += G[i] * a[i]
    wht(u)
    for j in range(d_b):
        gz[j] = B[j] * u[j]
