"""Train any `torch.nn.Module` only inside a random affine subspace.

    theta = theta0 + P z       theta0: (D,) the module's own init, frozen
                               P: (D, d) random projection (rlsub.core.projections)
                               z: (d,) the only trained vector, starts at 0

`Subspace(module, d, ...)` takes a module after its own initialisation. The
parameters chosen for the subspace (`include`, by name prefix; all by default)
are turned into buffers holding theta0, so `Subspace.parameters()` yields
exactly z plus the parameters left outside the subspace when `rest="direct"`
(with `rest="frozen"` those become buffers too). The module's own code is not
touched: the forward puts theta, split back into named views, in place of
those buffers for the length of the call (`call`), as `torch.func.functional_call`
would, and puts theta0 back after it.

A population of N vectors Z: (N, d) is evaluated in one call with
`population_forward(Z, x)` for x: (N, B, ...) -> (N, B, ...): the module's own
`batched_prepare`/`batched_apply` when it has them (rlsub.nets.mlp.MLP: batched
matmuls; rlsub.nets.convnet.ConvNet: grouped convolutions), else `torch.vmap` over
`functional_call`. `population_fn(params)` prepares a population once
(`PopulationPolicy`); ES's antithetic pairs are prepared on the rollout side
(rlsub.rollout.pairs) through `split`, `theta`, `P` and `PopulationPolicy`.

Imports: core only (projections, population, registry, errors). Knows nothing of ES,
environments or Pong.

`save(path)` writes a compact file (network spec, projection kind and seed, d,
theta0 seed, z, directly trained tensors and true buffers): kilobytes for a
small d, not D weights. `Subspace.load(path)` rebuilds the exact network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from rlsub.core.errors import RlsubError
from rlsub.core.population import PopulationPolicy
from rlsub.core.projection_base import DEFAULT_DENSE_LIMIT_GIB, KINDS
from rlsub.core.projections import make_projection
from rlsub.core.registry import build_network
from rlsub.core.trust import reading
from rlsub.core.views import views

FORMAT = "rlsub-subspace-v1"
DIRECT = "direct"  # d value meaning: train all D parameters (identity projection)


def _matches(name: str, prefixes: Sequence[str] | None) -> bool:
    if prefixes is None:
        return True
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    """(submodule, attribute) that holds the tensor `name` of `module`."""
    owner_name, _, leaf = name.rpartition(".")
    return (module.get_submodule(owner_name) if owner_name else module), leaf


def _to_buffer(module: nn.Module, name: str, value: Tensor, persistent: bool) -> None:
    owner, leaf = _owner(module, name)
    del owner._parameters[leaf]
    owner.register_buffer(leaf, value, persistent=persistent)


class Subspace(nn.Module):
    """theta = theta0 + P z over the chosen parameters of `module`.

    Args:
        module: an initialised network (its current weights become theta0).
        d: subspace dimension, or "direct" for P = I (the full-space baseline).
        projection: "dense", "sparse" or "fastfood" ("identity" when d is "direct").
        seed: the projection seed (its own torch.Generator).
        include: parameter-name prefixes that go into the subspace (None: all).
        rest: what happens to the other parameters: "frozen" (buffers) or "direct"
            (left as ordinary trainable parameters).
        spec: how to rebuild `module` ({"name", "kwargs", "seed"}), needed by save().
        dense_limit_gib: memory limit for the dense projection.
    """

    theta0: Tensor
    module: nn.Module

    def __init__(
        self,
        module: nn.Module,
        d: int | str,
        projection: str = "sparse",
        seed: int = 0,
        include: Sequence[str] | None = None,
        rest: str = "frozen",
        spec: dict[str, Any] | None = None,
        dense_limit_gib: float = DEFAULT_DENSE_LIMIT_GIB,
    ) -> None:
        super().__init__()
        if rest not in ("frozen", "direct"):
            raise RlsubError(f"subspace: rest must be 'frozen' or 'direct', got {rest!r}")
        if projection not in KINDS:
            raise RlsubError(f"unknown projection kind {projection!r}; allowed: {', '.join(KINDS)}")
        named = list(module.named_parameters())
        self.names = [n for n, _ in named if _matches(n, include)]
        if not self.names:
            known = ", ".join(n for n, _ in named)
            raise RlsubError(
                f"subspace: include={list(include or [])} matches no parameter; parameters: {known}"
            )
        if include is not None:
            for p in include:
                if not any(_matches(n, [p]) for n, _ in named):
                    raise RlsubError(
                        f"subspace: include entry {p!r} matches no parameter of the network"
                    )
        params = dict(named)
        self.shapes = [tuple(params[n].shape) for n in self.names]
        self.sizes = [params[n].numel() for n in self.names]
        self.D = sum(self.sizes)
        if d == DIRECT:
            d, projection = self.D, "identity"
        if not isinstance(d, int) or isinstance(d, bool):
            raise RlsubError(f"subspace: d must be a positive integer or 'direct', got {d!r}")
        if projection == "identity" and d != self.D:
            raise RlsubError(f"subspace: identity projection needs d == D = {self.D}, got {d}")
        self.d = d
        self.projection_kind = projection
        self.projection_seed = int(seed)
        self.include = None if include is None else list(include)
        self.rest = rest
        self.spec = spec
        self.P = make_projection(
            projection, self.D, d, seed, layer_sizes=self.sizes, dense_limit_gib=dense_limit_gib
        )

        with torch.no_grad():
            theta0 = torch.cat([params[n].detach().reshape(-1) for n in self.names]).clone()
        self.register_buffer("theta0", theta0, persistent=False)
        offset = 0
        for n, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            _to_buffer(module, n, theta0[offset : offset + size].view(shape), persistent=False)
            offset += size
        self.direct_names = [n for n, _ in named if n not in self.names]
        if rest == "frozen":
            for n in self.direct_names:
                _to_buffer(module, n, params[n].detach(), persistent=True)
            self.direct_names = []
        self.module = module
        # (submodule, attribute) of each subspace tensor, in the order of self.names
        self.owners = [_owner(module, n) for n in self.names]
        self.z = nn.Parameter(torch.zeros(d))

    # ----------------------------------------------------------------- theta
    def theta(self, z: Tensor | None = None) -> Tensor:
        """theta0 + P z: (D,) for z: (d,), (N, D) for z: (N, d). Default z: self.z."""
        z = self.z if z is None else z
        return self.P.affine(self.theta0, z)

    def params(self, z: Tensor | None = None) -> dict[str, Tensor]:
        """split(theta(z)) for one z (d,) (default self.z), the same values; where P has a CPU
        kernel for its transpose, theta0 + P z and P^T g run as one autograd function
        (rlsub.core.views): no split and concatenation of (D,) tensors in the step."""
        z = self.z if z is None else z
        if z.dim() == 1 and self.P.has_transpose_kernel(self.theta0, z):
            out = views(z, self.theta0, self.P, self.sizes, self.shapes)
            return dict(zip(self.names, out, strict=True))
        return self.split(self.theta(z))

    def split(self, theta: Tensor) -> dict[str, Tensor]:
        """Flat theta (D,) or (N, D) -> {name: (shape) or (N, *shape)} views."""
        lead = theta.shape[:-1]
        chunks = torch.split(theta, list(self.sizes), dim=-1)
        return {
            n: c.reshape(*lead, *shape)
            for n, shape, c in zip(self.names, self.shapes, chunks, strict=True)
        }

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(self.split(self.theta()), *args, **kwargs)

    def call(self, params: dict[str, Tensor], *args: Any, **kwargs: Any) -> Any:
        """Run the module with subspace tensors `params` (e.g. from a theta cached once per step).

        The subspace tensors are buffers of the module (views of theta0 at rest), so for
        exactly those names they are swapped for `params` for the length of the call and
        put back after it: what `functional_call` does, without its generic
        re-parametrisation (about 0.1 ms a call on MNIST FC). Other names go through
        `functional_call`.
        """
        if len(params) != len(self.names) or any(n not in params for n in self.names):
            return functional_call(self.module, params, args, kwargs)
        old = [owner._buffers[leaf] for owner, leaf in self.owners]
        for (owner, leaf), name in zip(self.owners, self.names, strict=True):
            owner._buffers[leaf] = params[name]
        try:
            return self.module(*args, **kwargs)
        finally:
            for (owner, leaf), t in zip(self.owners, old, strict=True):
                owner._buffers[leaf] = t

    # ------------------------------------------------------------ population
    def population_forward(self, Z: Tensor, x: Tensor) -> Tensor:
        """Z: (N, d), x: (N, B, ...) -> (N, B, ...), one batched call (no loop over N)."""
        if Z.dim() != 2 or Z.shape[1] != self.d:
            raise ValueError(f"population_forward: Z must be (N, {self.d}), got {tuple(Z.shape)}")
        if x.shape[0] != Z.shape[0]:
            raise ValueError(f"population_forward: x has {x.shape[0]} members, Z has {Z.shape[0]}")
        return self.population_call(self.split(self.theta(Z)), x)

    def population_call(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """params: name -> (N, *shape) for the subspace tensors; x: (N, B, ...)."""
        return self.population_fn(params)(x)

    def population_params(self, Z: Tensor) -> dict[str, Tensor]:
        """Every tensor of the network for population Z: (N, d): name -> (N, *shape).

        Subspace tensors come from theta0 + P Z; the others (trained directly or
        frozen) are the module's own, expanded over N (views, no copies).
        """
        return self.complete_params(self.split(self.theta(Z)))

    def complete_params(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Subspace tensors (N, *shape) plus the module's other tensors expanded over N."""
        N = next(iter(params.values())).shape[0]
        full = dict(params)
        for name, t in [*self.module.named_parameters(), *self.module.named_buffers()]:
            if name not in full:
                full[name] = t.expand(N, *t.shape)
        return full

    def population_fn(self, params: dict[str, Tensor]) -> PopulationPolicy:
        """A function x: (N, B, ...) -> (N, B, ...) for a fixed population (prepared once).

        Rollouts call it every step, so per-population work (the full parameter
        dict, contiguous transposed weights for batched matmuls) happens here once.
        `.subset(idx)` gives the same function for individuals idx only.
        """
        return PopulationPolicy(self.module, self.complete_params(params))

    # ------------------------------------------------------------------ I/O
    def state(self) -> dict[str, Any]:
        """What save() writes: everything needed to rebuild this exact network."""
        if self.spec is None:
            raise RlsubError(
                "subspace: cannot save without a network spec (build it with from_spec)"
            )
        return {
            "format": FORMAT,
            "network": dict(self.spec),
            "projection": self.projection_kind,
            "projection_seed": self.projection_seed,
            "d": self.d,
            "include": self.include,
            "rest": self.rest,
            "z": self.z.detach().cpu().clone(),
            # directly trained parameters and true buffers (e.g. BatchNorm statistics)
            "module_state": {
                k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()
            },
        }

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the compact file; `extra` holds small trainer state (e.g. observation stats)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            torch.save({**self.state(), "extra": extra or {}}, tmp)
            tmp.replace(path)
        except BaseException:  # a full disk: no half-written .tmp left behind
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def from_spec(
        cls,
        network: str,
        kwargs: dict[str, Any] | None,
        theta0_seed: int,
        d: int | str,
        projection: str = "sparse",
        projection_seed: int = 0,
        include: Sequence[str] | None = None,
        rest: str = "frozen",
        dense_limit_gib: float = DEFAULT_DENSE_LIMIT_GIB,
    ) -> Subspace:
        """Build network `network` (init from theta0_seed) and wrap it."""
        module = build_network(network, kwargs, seed=theta0_seed)
        spec = {"name": network, "kwargs": dict(kwargs or {}), "seed": int(theta0_seed)}
        return cls(module, d, projection, projection_seed, include, rest, spec, dense_limit_gib)

    @classmethod
    def load(cls, path: str | Path, trust: Sequence[str] = ()) -> tuple[Subspace, dict[str, Any]]:
        """Rebuild a saved subspace network; returns (subspace, extra). The file names its
        network as data: an import path in it is refused unless its module is in `trust`
        or trusted otherwise (rlsub.core.trust)."""
        return cls.from_state(load_state(path), path, trust)

    @classmethod
    def from_state(
        cls, state: dict[str, Any], path: str | Path, trust: Sequence[str] = ()
    ) -> tuple[Subspace, dict[str, Any]]:
        """`load` from a policy file's contents (`load_state`)."""
        if state.get("format") != FORMAT:
            raise RlsubError(f"{path}: not an rlsub policy file (expected format {FORMAT})")
        try:
            net = state["network"]
            d = state["d"] if state["projection"] != "identity" else DIRECT
            with reading(path, trust):
                sub = cls.from_spec(
                    net["name"],
                    net["kwargs"],
                    net["seed"],
                    d,
                    state["projection"],
                    state["projection_seed"],
                    state["include"],
                    state["rest"],
                    dense_limit_gib=float("inf"),
                )
            with torch.no_grad():
                sub.z.copy_(state["z"])
            sub.module.load_state_dict(state["module_state"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise RlsubError(
                f"{path}: a damaged rlsub policy file ({type(exc).__name__})"
            ) from None
        return sub, state.get("extra", {})

    # ---------------------------------------------------------------- misc
    def _apply(self, fn: Any, recurse: bool = True) -> Subspace:
        super()._apply(fn, recurse)
        self.P.to(self.z.device)
        # keep the module's subspace buffers as views of theta0 on the new device
        offset = 0
        for (owner, leaf), shape, size in zip(self.owners, self.shapes, self.sizes, strict=True):
            owner._buffers[leaf] = self.theta0[offset : offset + size].view(shape)
            offset += size
        return self

    @contextlib.contextmanager
    def z_set_to(self, z: Tensor) -> Iterator[Subspace]:
        """Temporarily set z (no grad), e.g. to evaluate one member of a population."""
        old = self.z.detach().clone()
        with torch.no_grad():
            self.z.copy_(z)
        try:
            yield self
        finally:
            with torch.no_grad():
                self.z.copy_(old)

    def extra_repr(self) -> str:
        return f"D={self.D}, d={self.d}, projection={self.projection_kind}, rest={self.rest}"


def load_state(path: str | Path) -> dict[str, Any]:
    """The contents of a policy file, read without unpickling code (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise RlsubError(f"{path}: no such policy file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise RlsubError(f"{path}: not an rlsub policy file ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise RlsubError(f"{path}: not an rlsub policy file (expected format {FORMAT})")
    return state
