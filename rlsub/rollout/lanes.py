"""Compiled rollout step for populations of small MLP policies on the CPU (numba).

CartPole's vector env steps 256 slots in about 100 us, less than torch spends on
one batched matmul of 256 different small nets plus dispatch. So for MLP
policies on flat observations, `rlsub.rollout.population.population_rollout` runs every
step through one numba kernel, `_step`, instead of torch:

- book-keeping (`_account`): add the rewards and lengths of slots not done,
  mark the slots that ended, count the ones still playing;
- dropping finished slots (`compact_lanes`, in place) once half the lanes in use
  are done, as the torch loop drops finished individuals;
- the next actions (`act_lanes`): for every lane (a slot still to be played),
  normalise the slot's observation, run its network, write its action
  (argmax, or the output clipped to the action box). Parameters are stored
  lane-minor, w[p, j] = parameter p of lane j, so the inner loops run over
  lanes with contiguous loads (the SIMD lanes are the population). The
  observations of slots not done are summed (and squared) for the running
  statistics.

Parameters per lane follow the MLP's own order: for each Linear, W (out, in)
row-major, then b. The results equal the torch loop's (tests/test_rollout.py);
float32 sums may be ordered differently, so a near-tie between two logits could
in principle pick the other action, and box actions differ in their last bits.
The kernels compile without fast-math so that a trial gives the same bits on any
x86-64 CPU, whatever target numba compiles for (see the note above `supported`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit
from torch import nn

from rlsub.core.subspace import Subspace
from rlsub.envs.spec import EnvDims
from rlsub.nets.mlp import MLP
from rlsub.rollout.slots import SlotStepper

# No fast-math: with `reassoc` and `contract` the results depended on the CPU that numba
# compiled for (FMA fused or not: NUMBA_CPU_NAME=generic vs the host changed InvertedPendulum
# CMA-ES trials), so a trial could score differently on two machines (issue 31). Plain IEEE
# float32 gives the same bits for any target; the lane loops still vectorise (over lanes,
# no reductions). Cost: CartPole slot step 272 -> 365 ns CPU (docs/bench/kernel_step.py),
# an InvertedPendulum CMA-ES trial 1.02x (docs/BENCHMARKS.md).
# error_model="numpy" (issue 27): numba's default Python error model checks every division
# for a zero divisor (to raise ZeroDivisionError), and that branch kept the tanh loop
# (x * p / q) from vectorising; IEEE division is the same operation, q >= 1 never zero, so
# the results are the same bits, and a policy step is about 1.8x faster.


def supported(sub: Subspace, dims: EnvDims) -> bool:
    """True when the lane kernels can run this policy: an MLP on flat float observations, CPU."""
    module = sub.module
    return (
        isinstance(module, MLP)
        and isinstance(module[0], nn.Linear)  # no Flatten in front
        and len(dims.obs_shape) == 1
        and module.activation in ("relu", "tanh")
        and sub.theta0.device.type == "cpu"
        and sub.theta0.dtype == torch.float32
    )


# tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9, evaluated in float64 (relative error 8e-9) and
# rounded once: the correctly rounded float32 tanh for 97.8 % of inputs, 1 ulp off for the
# rest (libm's tanhf is not exact either). libm's scalar tanhf was 75-90 % of a CartPole
# policy step; this one vectorises over the lanes.
# Fitted by docs/bench/tanh_fit.py (SK iteration, minimax relative error in s = x^2 / 81).
_TANH_P = (
    0.9999999980442406, 0.12359308895453282, 0.0021444826885804653, -1.2545598467728133e-05,
    -1.1245614680264994e-07, 2.3933879723503284e-10, -6.307495793259928e-13,
    9.70827026788576e-16,
)  # fmt: skip
_TANH_Q = (
    1.0, 0.4569264024340557, 0.021119983904686154, 7.215697250543127e-05,
    -2.0132362377469506e-06,
)  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _tanh(v):
    """tanh of a float32, computed in float64 and rounded once (see _TANH_P)."""
    x = min(max(np.float64(v), -9.0), 9.0)
    u = x * x
    p = _TANH_P[7]
    for k in range(6, -1, -1):
        p = p * u + _TANH_P[k]
    q = _TANH_Q[4]
    for k in range(3, -1, -1):
        q = q * u + _TANH_Q[k]
    return np.float32(min(max(x * p / q, -1.0), 1.0))


@njit(cache=True, error_model="numpy")
def _hidden(obs, lanes, n, done, mean, inv_std, clip, group, s1, s2, update, w, sizes, tanh, buf):
    """Every layer but the last's activation on lanes[:n]; returns k: the output rows are
    buf[k, :n_out, :n].

    Slot s is normalised with the statistics of its group t = group[s] (mean[t], inv_std[t]),
    and its observation is summed into s1[t], s2[t] (one group per trial). w and buf are
    indexed whole (C-contiguous: the lane loops vectorise), never sliced.
    """
    nl = sizes.shape[0] - 1
    fi = sizes[0]
    for j in range(n):
        s = lanes[j]
        t = group[s]
        live = update and not done[s]
        for i in range(fi):
            v = obs[s, i]
            if live:
                s1[t, i] += v
                s2[t, i] += v * v
            buf[0, i, j] = min(max((v - mean[t, i]) * inv_std[t, i], -clip), clip)
    off = 0
    k = 0
    for layer in range(nl):
        fi = sizes[layer]
        fo = sizes[layer + 1]
        q = 1 - k
        bias = off + fo * fi
        for o in range(fo):
            for j in range(n):
                buf[q, o, j] = w[bias + o, j]
            for i in range(fi):
                row = off + o * fi + i
                for j in range(n):
                    buf[q, o, j] += w[row, j] * buf[k, i, j]
        if layer < nl - 1:
            for o in range(fo):
                for j in range(n):
                    x = buf[q, o, j]
                    buf[q, o, j] = _tanh(x) if tanh else max(x, 0.0)
        k = q
        off = bias + fo
    return k


@njit(cache=True)
def _account(reward, term, trunc, done, returns, lengths):
    """Add the step's rewards of slots still playing; mark the ones that ended; count the rest."""
    playing = 0
    for s in range(done.shape[0]):
        if not done[s]:
            returns[s] += reward[s]
            lengths[s] += 1
            if term[s] or trunc[s]:
                done[s] = True
            else:
                playing += 1
    return playing


@njit(cache=True)
def act_lanes(
    obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, discrete, ai, af, low, high
):
    """Actions of lanes[:n] into ai (discrete: argmax) or af (box: the output clipped)."""
    mean, inv_std, clip, group = norm[0], norm[1], norm[2][0], norm[3]
    k = _hidden(
        obs, lanes, n, done, mean, inv_std, clip, group, s1, s2, update, w, sizes, tanh, buf
    )
    out = buf[k, : sizes[-1]]
    for j in range(n):
        if discrete:
            best = 0
            for o in range(1, out.shape[0]):
                if out[o, j] > out[best, j]:
                    best = o
            ai[lanes[j]] = best
        else:
            for o in range(out.shape[0]):
                af[lanes[j], o] = min(max(out[o, j], low[o]), high[o])


@njit(cache=True)
def _step(obs, reward, term, trunc, done, returns, lengths, lanes, state, w, sizes, tanh, buf,
          norm, s1, s2, update, last, discrete, ai, af, low, high):  # fmt: skip
    """One step's book-keeping, then the next actions (unless `last` or none plays).

    state[0] is the number of lanes in use; lanes are compacted once half are done.
    """
    playing = _account(reward, term, trunc, done, returns, lengths)
    if playing == 0 or last:
        return playing
    n = state[0]
    if 2 * playing <= n:
        n = compact_lanes(w, lanes, done, n)
        state[0] = n
    act_lanes(
        obs, done, lanes, n, w, sizes, tanh, buf, norm, s1, s2, update, discrete, ai, af, low, high
    )
    return playing


@njit(cache=True)
def compact_lanes(w, lanes, done, n):
    """Move the lanes whose slot is not done to the front, in place; returns their count."""
    m = 0
    for j in range(n):
        if not done[lanes[j]]:
            if m != j:
                lanes[m] = lanes[j]
                for p in range(w.shape[0]):
                    w[p, m] = w[p, j]
            m += 1
    return m


def lane_weights(sub: Subspace, Z: torch.Tensor, K: int) -> np.ndarray:
    """The parameters of population Z, lane-minor: w[p, i * K + k] = parameter p of member i."""
    module = sub.module
    assert isinstance(module, MLP)
    N = Z.shape[0]
    linears = [name for name, m in module.named_children() if isinstance(m, nn.Linear)]
    order = [f"{n}.{p}" for n in linears for p in ("weight", "bias")]
    if sub.names == order:  # the whole net in the subspace: theta is already in lane order
        flat = sub.theta(Z)
    else:
        full = sub.population_params(Z)
        flat = torch.cat([full[name].reshape(N, -1) for name in order], 1)
    # (P, N), writable: theta is a fresh tensor (a sparse P hands it over as the transpose
    # of a (D, N) array, so no copy is made then)
    w = np.ascontiguousarray(flat.detach().T.numpy(), dtype=np.float32)
    return np.repeat(w, K, axis=1) if K > 1 else w


class LanePolicy:
    """MLPs one lane per slot, from lane-minor weights w (P, S) (`lane_weights`)."""

    def __init__(self, module: nn.Module, w: np.ndarray, dims: EnvDims) -> None:
        assert isinstance(module, MLP)
        self.w = w
        self.sizes = np.asarray(module.sizes, dtype=np.int64)
        self.tanh = module.activation == "tanh"
        S = w.shape[1]
        self.S = S
        self.lanes = np.arange(S, dtype=np.int64)
        self.state = np.array([S], dtype=np.int64)  # lanes in use
        self.buf = np.empty((2, int(self.sizes.max()), S), dtype=np.float32)
        self.discrete = dims.discrete
        self.ai = np.zeros(S, dtype=np.int64)
        self.af = np.zeros((S, 0 if dims.discrete else dims.n_actions), dtype=np.float32)
        if dims.discrete:
            self.low = self.high = np.zeros(0, dtype=np.float32)
        else:
            assert dims.low is not None and dims.high is not None
            self.low = np.asarray(dims.low, dtype=np.float32).reshape(-1)
            self.high = np.asarray(dims.high, dtype=np.float32).reshape(-1)

    @property
    def actions(self) -> np.ndarray:
        """All slots' actions (slots off the lanes keep their last action; they are masked)."""
        return self.ai if self.discrete else self.af

    @property
    def heads(self) -> tuple[Any, ...]:
        return (self.discrete, self.ai, self.af, self.low, self.high)


class LaneNorms:
    """The observation statistics of T groups of slots (one group per trial) for the kernels.

    `norms[g]` is group g's RunningNorm (None: no normalisation) and `group[s]` the group of
    slot s. `kernel_args` are (mean, 1/std, clip, group) as the kernels read them; after the
    rollout `fold(lengths)` adds the summed observations of each group to its RunningNorm.
    """

    def __init__(self, norms: list[Any], group: np.ndarray, n_obs: int, update: bool) -> None:
        T = len(norms)
        self.norms, self.group = norms, np.asarray(group, dtype=np.int64)
        mean = np.zeros((T, n_obs), np.float32)
        inv_std = np.ones((T, n_obs), np.float32)
        clip = np.inf
        for g, norm in enumerate(norms):
            if norm is not None:
                mean[g] = norm.mean
                inv_std[g] = 1.0 / np.sqrt(norm.var + 1e-8)
                clip = float(norm.clip)  # one clip for all groups (one config)
        self.kernel_args = (mean, inv_std, np.array([clip], dtype=np.float32), self.group)
        self.update = bool(update and any(n is not None for n in norms))
        self.s1, self.s2 = np.zeros((T, n_obs)), np.zeros((T, n_obs))

    def fold(self, lengths: np.ndarray) -> None:
        if not self.update:
            return
        counts = np.bincount(self.group, weights=lengths, minlength=len(self.norms))
        for g, norm in enumerate(self.norms):
            if norm is not None and counts[g] > 0:
                m = self.s1[g] / counts[g]
                norm.update_moments(
                    m, np.maximum(self.s2[g] / counts[g] - m * m, 0.0), int(counts[g])
                )


def rollout(
    sub: Subspace,
    Z: torch.Tensor,
    env: Any,
    dims: EnvDims,
    K: int,
    obs: np.ndarray,
    obs_norm: Any,
    update_norm: bool,
    max_steps: int | None,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The lane version of population_rollout's loop from reset observations `obs`.

    Returns (returns (S,), lengths (S,), slot_steps, capped); folds the observation
    statistics into obs_norm when update_norm.
    """
    pol = LanePolicy(sub.module, lane_weights(sub, Z, K), dims)
    S = pol.S
    norms = LaneNorms([obs_norm], np.zeros(S, np.int64), dims.obs_shape[0], update_norm)
    done = np.zeros(S, dtype=bool)
    returns = np.zeros(S)
    lengths = np.zeros(S, dtype=np.int64)
    net = (pol.w, pol.sizes, pol.tanh, pol.buf, norms.kernel_args, norms.s1, norms.s2, norms.update)
    act_lanes(np.asarray(obs), done, pol.lanes, S, *net, *pol.heads)  # type: ignore[call-arg]
    step = SlotStepper(env, obs)
    steps = capped = slot_steps = 0
    while True:
        obs, reward, term, trunc, stepped = step(pol.actions, done)
        steps += 1
        slot_steps += stepped
        last = max_steps is not None and steps >= max_steps
        playing = _step(  # type: ignore[call-arg]
            obs, reward, term, trunc, done, returns, lengths, pol.lanes, pol.state, *net, last,
            *pol.heads,
        )  # fmt: skip
        if playing == 0:
            break
        if last:
            capped = int(playing)
            break
    norms.fold(lengths)
    return returns, lengths, slot_steps, capped
