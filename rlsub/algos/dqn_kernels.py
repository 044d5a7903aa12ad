"""The paper's Q-learning gradient for a ReLU MLP, as numba kernels (float32).

A network is a flat theta and a table `offs` with one row per Linear layer:
(first weight index, first bias index, outputs, inputs); the weight is stored
(outputs, inputs) row-major, as torch's Linear keeps it. `q_values` is the forward;
`td_grad` the gradient of mean (Q(s, a) - y)^2 with respect to theta, with
y = r + gamma max_a' Q_target(s2, a') (1 - done) from the target's theta.

Compiled without fast-math: the same bits on any x86-64 CPU.

Imports: numba, numpy (rlsub.algos.dqn_learners imports it).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def q_values(theta: np.ndarray, offs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Q-values (B, n_actions) of the states x (B, obs_dim)."""
    h = x
    zero = np.float32(0)
    for k in range(offs.shape[0]):
        w0, b0, n_out, n_in = offs[k, 0], offs[k, 1], offs[k, 2], offs[k, 3]
        W = theta[w0 : w0 + n_out * n_in].reshape((n_out, n_in))
        h = h @ W.T + theta[b0 : b0 + n_out]
        if k < offs.shape[0] - 1:
            h = np.maximum(h, zero)
    return h


@njit(cache=True)
def td_grad(
    theta: np.ndarray,
    theta_target: np.ndarray,
    offs: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    r: np.ndarray,
    s2: np.ndarray,
    done: np.ndarray,
    gamma: np.float32,
) -> np.ndarray:
    """d/dtheta of the mean squared TD error of one batch (the target held fixed)."""
    q2 = q_values(theta_target, offs, s2)
    n = s.shape[0]
    y = np.empty(n, np.float32)
    for i in range(n):
        y[i] = r[i] + gamma * q2[i].max() * (np.float32(1) - done[i])
    L = offs.shape[0]
    inputs = [s]
    h = s
    zero = np.float32(0)
    for k in range(L):
        w0, b0, n_out, n_in = offs[k, 0], offs[k, 1], offs[k, 2], offs[k, 3]
        W = theta[w0 : w0 + n_out * n_in].reshape((n_out, n_in))
        h = h @ W.T + theta[b0 : b0 + n_out]
        if k < L - 1:
            h = np.maximum(h, zero)
            inputs.append(h)
    g = np.zeros_like(h)
    scale = np.float32(2.0 / n)
    for i in range(n):
        g[i, a[i]] = scale * (h[i, a[i]] - y[i])
    out = np.empty_like(theta)
    for k in range(L - 1, -1, -1):
        w0, b0, n_out, n_in = offs[k, 0], offs[k, 1], offs[k, 2], offs[k, 3]
        x = inputs[k]
        out[w0 : w0 + n_out * n_in] = (g.T @ x).reshape(-1)
        out[b0 : b0 + n_out] = g.sum(axis=0)
        if k:
            W = theta[w0 : w0 + n_out * n_in].reshape((n_out, n_in))
            g = (g @ W) * (x > zero)
    return out
