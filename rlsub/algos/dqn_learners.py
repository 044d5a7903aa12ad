"""The paper's Q-learning update in a subspace, two ways: `TorchLearner` (autograd, any
network: the reference) and `NumpyMLPLearner` (a ReLU MLP's forward and backward by
hand, numba kernels in `dqn_kernels`: the same arithmetic in float32, without
autograd's per-op cost, which is most of a step for a 4-20-20-2 net).

One update (rlsub.algos.dqn_paper): y = r + gamma max_a Q_target(s2, a) (0 past a
terminal step); loss = mean (Q(s, a) - y)^2 + l2 |z|^2; each trained variable's
gradient clipped to norm `max_grad_norm` (tf.clip_by_norm); TF1's RMSProp with
momentum; then z_target moves towards z by `target_update_rate` (at 1 it is z).
Both learners hold z, z_target and the optimiser's two slots as float32 and give
them to a checkpoint as the same named tensors, so a run may resume on either.

Imports: algos.dqn_kernels, core (Subspace only), nets (MLP), torch, numpy.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch

from rlsub.algos.dqn_kernels import q_values, td_grad
from rlsub.core.subspace import Subspace
from rlsub.nets.mlp import MLP

RMSPROP_DECAY = 0.9  # TF1 RMSPropOptimizer's defaults, as the paper's code left them
RMSPROP_EPS = 1e-10


def clip_scale(norm: float, max_norm: float) -> float | None:
    """tf.clip_by_norm's factor for a gradient of this norm, or None where it is kept."""
    return max_norm / norm if norm > max_norm else None


class TFRMSProp(torch.optim.Optimizer):
    """TF1's ``tf.train.RMSPropOptimizer`` (the paper's optimiser), which differs from
    ``torch.optim.RMSprop``: the mean square starts at 1, not 0, and epsilon sits inside
    the root. Per step: ms = decay ms + (1 - decay) g^2;
    mom = momentum mom + lr g / sqrt(ms + eps); p -= mom."""

    def __init__(
        self,
        params: Any,
        lr: float,
        decay: float = RMSPROP_DECAY,
        momentum: float = 0.0,
        eps: float = RMSPROP_EPS,
    ) -> None:
        super().__init__(params, {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                    state["mom"] = torch.zeros_like(p)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(group["decay"]).addcmul_(p.grad, p.grad, value=1 - group["decay"])
                mom.mul_(group["momentum"]).add_(
                    p.grad / (ms + group["eps"]).sqrt(), alpha=group["lr"]
                )
                p.sub_(mom)


class Learner(Protocol):
    def act(self, obs: np.ndarray) -> int: ...

    def update(self, batch: tuple[np.ndarray, ...]) -> None: ...

    def state(self) -> dict[str, torch.Tensor]: ...

    def load(self, tensors: dict[str, torch.Tensor]) -> None: ...

    def finish(self) -> None: ...


def make_learner(sub: Subspace, tc: Any, fast: bool = True) -> Learner:
    """The numpy learner where the network is a ReLU MLP wholly in the subspace, else (or
    with fast=False) the autograd one."""
    if fast and NumpyMLPLearner.serves(sub):
        return NumpyMLPLearner(sub, tc)
    return TorchLearner(sub, tc)


class TorchLearner:
    """The update by autograd on the Subspace module (any network)."""

    def __init__(self, sub: Subspace, tc: Any) -> None:
        self.sub, self.tc = sub, tc
        self.z_target = sub.z.detach().clone()
        self.opt = TFRMSProp([sub.z], lr=tc.lr, momentum=tc.momentum)

    def act(self, obs: np.ndarray) -> int:
        with torch.no_grad():
            q = self.sub(torch.as_tensor(obs, dtype=torch.float32)[None])
        return int(q.argmax(dim=1)[0])

    def update(self, batch: tuple[np.ndarray, ...]) -> None:
        sub, tc = self.sub, self.tc
        s, a, r, s2, done = (torch.from_numpy(x) for x in batch)
        with torch.no_grad():
            target_q = sub.call(sub.split(sub.theta(self.z_target)), s2).max(dim=1).values
            y = r + tc.gamma * target_q * (1.0 - done)
        q = sub(s).gather(1, a[:, None])[:, 0]
        loss = ((q - y) ** 2).mean() + tc.l2 * (sub.z**2).sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        assert sub.z.grad is not None
        grads = torch.split(sub.z.grad, sub.sizes) if _direct(sub) else [sub.z.grad]
        with torch.no_grad():
            for g in grads:
                factor = clip_scale(float(g.norm()), tc.max_grad_norm)
                if factor is not None:
                    g.mul_(factor)
        self.opt.step()
        with torch.no_grad():
            if tc.target_update_rate == 1.0:  # the target is the online network, exactly
                self.z_target.copy_(sub.z)
            else:
                self.z_target.add_(tc.target_update_rate * (sub.z.detach() - self.z_target))

    def state(self) -> dict[str, torch.Tensor]:
        slots = self.opt.state.get(self.sub.z, {})
        ms = slots.get("ms", torch.ones_like(self.sub.z))
        mom = slots.get("mom", torch.zeros_like(self.sub.z))
        return {
            "z": self.sub.z.detach().clone(),
            "z_target": self.z_target.clone(),
            "opt.ms": ms.detach().clone(),
            "opt.mom": mom.detach().clone(),
        }

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.sub.z.copy_(tensors["z"])
        self.z_target.copy_(tensors["z_target"])
        self.opt.state[self.sub.z] = {
            "ms": tensors["opt.ms"].clone(),
            "mom": tensors["opt.mom"].clone(),
        }

    def finish(self) -> None:
        pass


def _direct(sub: Subspace) -> bool:
    return sub.projection_kind == "identity"


class NumpyMLPLearner:
    """The update of a ReLU `MLP` by hand: forward and backward (numba), P^T g, clipping
    and RMSProp in float32 numpy.

    theta = theta0 + P z is formed once per update by the projection's own `affine`
    (the bits `Subspace.theta` gives); the gradient of z is P^T g (dense: one matvec;
    sparse and Fastfood: their transpose kernels; else autograd through P)."""

    @staticmethod
    def serves(sub: Subspace) -> bool:
        m = sub.module
        if not isinstance(m, MLP) or m.activation != "relu" or len(m) != 2 * len(m.sizes) - 3:
            return False
        names = [f"{2 * i}.{k}" for i in range(len(m.sizes) - 1) for k in ("weight", "bias")]
        return sub.names == names and sub.theta0.device.type == "cpu"

    def __init__(self, sub: Subspace, tc: Any) -> None:
        self.sub, self.tc = sub, tc
        starts = np.cumsum([0, *sub.sizes])
        self.offs = np.array(  # per Linear: first weight index, first bias index, out, in
            [
                [starts[k], starts[k + 1], sub.shapes[k][0], sub.shapes[k][1]]
                for k in range(0, len(sub.names), 2)
            ],
            dtype=np.int64,
        )
        self.z = sub.z.detach().numpy().astype(np.float32).copy()
        self.z_target = self.z.copy()
        self.ms = np.ones_like(self.z)
        self.mom = np.zeros_like(self.z)
        self.theta = self._theta(self.z)
        self.theta_target = self.theta

    # -------------------------------------------------------------------- P
    def _theta(self, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.sub.theta(torch.from_numpy(z)).numpy()

    def _transpose(self, g: np.ndarray) -> np.ndarray:
        sub = self.sub
        P: Any = sub.P
        if _direct(sub):
            return g
        if P.kind == "dense":
            return P.Pt.numpy() @ g
        z = torch.from_numpy(self.z)
        if P.has_transpose_kernel(sub.theta0, z):
            return np.asarray(P.transpose_parts([(0, g)]), dtype=np.float32)
        zv = torch.zeros(sub.d, requires_grad=True)
        (P(zv) @ torch.from_numpy(g)).backward()
        assert zv.grad is not None
        return zv.grad.numpy()

    # -------------------------------------------------------------- network
    def act(self, obs: np.ndarray) -> int:
        q = q_values(self.theta, self.offs, np.asarray(obs, dtype=np.float32)[None])
        return int(q[0].argmax())

    def update(self, batch: tuple[np.ndarray, ...]) -> None:
        tc = self.tc
        s, a, r, s2, done = batch
        g_theta = td_grad(
            self.theta, self.theta_target, self.offs, s, a, r, s2, done, np.float32(tc.gamma)
        )
        g_z = self._transpose(g_theta)
        if tc.l2:
            g_z = g_z + np.float32(2 * tc.l2) * self.z
        self._clip(g_z)
        self.ms = np.float32(RMSPROP_DECAY) * self.ms + np.float32(1 - RMSPROP_DECAY) * g_z * g_z
        self.mom = np.float32(tc.momentum) * self.mom + np.float32(tc.lr) * g_z / np.sqrt(
            self.ms + np.float32(RMSPROP_EPS)
        )
        self.z = self.z - self.mom
        self.theta = self._theta(self.z)
        if tc.target_update_rate == 1.0:
            self.z_target, self.theta_target = self.z, self.theta
        else:
            self.z_target = self.z_target + np.float32(tc.target_update_rate) * (
                self.z - self.z_target
            )
            self.theta_target = self._theta(self.z_target)

    def _clip(self, g_z: np.ndarray) -> None:
        """tf.clip_by_norm, in place: z as one variable, or (direct) each weight and bias."""
        sizes = self.sub.sizes if _direct(self.sub) else [len(g_z)]
        a = 0
        for n in sizes:
            part = g_z[a : a + n]
            factor = clip_scale(math.sqrt(float(np.dot(part, part))), self.tc.max_grad_norm)
            if factor is not None:
                part *= np.float32(factor)
            a += n

    def state(self) -> dict[str, torch.Tensor]:
        return {
            k: torch.from_numpy(np.array(v, dtype=np.float32))
            for k, v in (("z", self.z), ("z_target", self.z_target))
            + (("opt.ms", self.ms), ("opt.mom", self.mom))
        }

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.z = tensors["z"].numpy().astype(np.float32).copy()
        self.z_target = tensors["z_target"].numpy().astype(np.float32).copy()
        self.ms = tensors["opt.ms"].numpy().astype(np.float32).copy()
        self.mom = tensors["opt.mom"].numpy().astype(np.float32).copy()
        self.theta = self._theta(self.z)
        self.theta_target = self._theta(self.z_target)

    def finish(self) -> None:
        """Hand z back to the Subspace (for the evaluation and the policy file)."""
        with torch.no_grad():
            self.sub.z.copy_(torch.from_numpy(self.z))
