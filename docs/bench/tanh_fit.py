"""The rational tanh of the lane kernels (rlsub/rollout/lanes.py: _TANH_P, _TANH_Q).

    python docs/bench/tanh_fit.py

tanh(x) / x is fitted as P(s) / Q(s), s = x^2 / 81, degrees 7 and 4, on
0 < x <= 9 by Sanathanan-Koerner iteration (weighted linear least squares
that converges towards the minimax relative error), then rescaled to
polynomials in x^2. It prints the coefficients, the float64 relative error,
and how the kernel's evaluation (float64, clamped, rounded once to float32)
compares with the correctly rounded float32 tanh over 2.1M inputs.
"""

from __future__ import annotations

import numpy as np

C = 9.0  # |x| beyond 9: tanh rounds to +-1 in float32
M, N = 7, 4  # numerator and denominator degrees in s


def fit() -> tuple[np.ndarray, np.ndarray, float]:
    x = np.linspace(1e-4, C, 400001)
    f = np.tanh(x) / x
    s = x * x / (C * C)
    q_prev = np.ones_like(s)
    p = q = np.zeros(1)
    err = np.zeros(1)
    for _ in range(40):
        wt = 1.0 / (np.abs(q_prev) * f)
        a = np.concatenate(
            [s[:, None] ** np.arange(M + 1), -f[:, None] * s[:, None] ** np.arange(1, N + 1)], 1
        )
        sol, *_ = np.linalg.lstsq(a * wt[:, None], f * wt, rcond=None)
        p, q = sol[: M + 1], np.concatenate([[1.0], sol[M + 1 :]])
        q_prev = np.polyval(q[::-1], s)
        err = (np.polyval(p[::-1], s) / q_prev - f) / f
    scale = C * C
    return p / scale ** np.arange(M + 1), q / scale ** np.arange(N + 1), float(np.abs(err).max())


def kernel_tanh(x32: np.ndarray, pk: np.ndarray, qk: np.ndarray) -> np.ndarray:
    """What rlsub.rollout.lanes._tanh computes, vectorised in numpy."""
    x = np.clip(x32.astype(np.float64), -C, C)
    u = x * x
    p = np.polyval(pk[::-1], u)
    q = np.polyval(qk[::-1], u)
    return np.clip(x * p / q, -1.0, 1.0).astype(np.float32)


def main() -> None:
    pk, qk, rel = fit()
    print("_TANH_P =", tuple(float(v) for v in pk))
    print("_TANH_Q =", tuple(float(v) for v in qk))
    print(f"float64 max relative error {rel:.2e}")
    xs = np.concatenate([np.linspace(-10, 10, 2000001), np.geomspace(1e-8, 10, 100001)])
    x32 = xs.astype(np.float32)
    mine = kernel_tanh(x32, pk, qk)
    exact = np.tanh(x32.astype(np.float64)).astype(np.float32)
    ulp = np.abs(mine.astype(np.float64) - exact) / np.spacing(np.abs(exact)).astype(np.float64)
    print(
        f"float32: equal to the correctly rounded tanh for {(mine == exact).mean():.6f} of inputs, "
        f"max {ulp.max():.0f} ulp"
    )


if __name__ == "__main__":
    main()
