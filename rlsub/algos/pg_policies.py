"""Stable-baselines3 policies trained inside a random subspace (Li et al. 2018).

    theta = theta0 + P z        theta0: the policy's init, frozen (rebuilt from theta0_seed)
                                P: (D, d) random projection (rebuilt from projection_seed)
                                z: (d,) the only trained vector of the subspace, starts at 0

The network is SB3's own `mlp` / `nature_cnn`, or any other network as it is
(a user's `nn.Module` by import path: `rlsub.algos.pg_networks`).
Both classes plug into SB3 through its documented extension points: pass them
as the `policy` of PPO / A2C (`SubspaceActorCriticPolicy`) or DQN
(`SubspaceDQNPolicy`) and configure them with ``policy_kwargs={"subspace":
{...}, ...}`` (`subspace_kwargs` builds that dict and checks it).

Which parameters go into the subspace (`parts`):

- ``"actor"``: the network that picks actions. Actor-critic: the features
  extractor when it has parameters (NatureCNN, shared with the critic),
  ``mlp_extractor.policy_net`` and ``action_net``. DQN: the whole Q-network
  (it is the actor; there is no separate critic).
- ``"all"``: every network parameter, critic included (the original DQN put
  the whole Q-network in the subspace).

z's learning rate is the algorithm's times ``z_lr_scale`` (default 1): Adam moves
each coordinate of z by about lr per step, so theta moves about sqrt(d / D) as
far as in direct training, and small subspaces may need a larger step.

Parameters outside the subspace (the critic ``mlp_extractor.value_net`` +
``value_net`` under ``"actor"``, and ``log_std`` of a Gaussian policy under
either part: it is exploration noise, one float per action dimension, not part
of the obs -> action-mean map) are trained directly when ``rest="direct"`` and
kept at their init when ``rest="frozen"``. The optimizer sees exactly z plus
those directly trained tensors.

theta0: the actor's weights are the rlsub network's own init
(`rlsub.core.registry.build_network(network, network_kwargs, seed=theta0_seed)`,
copied in layer by layer), so the compact rlsub policy file rebuilds exactly
the same actor; everything else (critic) is SB3's ordinary init drawn under
the same seed. theta0 and P are non-persistent buffers, rebuilt from the
seeds in `__init__`: ``model.save`` stores z, the directly trained tensors and
the optimizer state, never D floats of theta0 or D x d floats of P.

theta is recomputed once per call of an SB3 entry point (forward,
evaluate_actions, get_distribution, predict_values; _predict / predict go
through get_distribution), i.e. once per batch, and cached while gradients are
off and z is unchanged (rollout collection recomputes it once per update).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import Tensor, nn

from rlsub.algos.pg_networks import is_own, own_actor_critic, own_q_net
from rlsub.algos.step_size import resolve_z_lr_scale
from rlsub.core.errors import RlsubError
from rlsub.core.projection_base import DEFAULT_DENSE_LIMIT_GIB
from rlsub.core.registry import build_network
from rlsub.core.subspace import DIRECT, Subspace

PARTS = ("actor", "all")
RESTS = ("frozen", "direct")
_KEYS = (
    "d",
    "projection",
    "projection_seed",
    "theta0_seed",
    "parts",
    "rest",
    "network",
    "network_kwargs",
    "dense_limit_gib",
    "z_lr_scale",
)


def subspace_kwargs(
    d: int | str,
    network: str,
    network_kwargs: dict[str, Any],
    theta0_seed: int,
    projection: str = "dense",
    projection_seed: int = 0,
    parts: str = "actor",
    rest: str = "direct",
    dense_limit_gib: float = DEFAULT_DENSE_LIMIT_GIB,
    z_lr_scale: float | str = 1.0,
) -> dict[str, Any]:
    """The ``policy_kwargs["subspace"]`` dict of both policies (checked)."""
    return check_subspace_kwargs(
        {
            "d": d,
            "projection": projection,
            "projection_seed": int(projection_seed),
            "theta0_seed": int(theta0_seed),
            "parts": parts,
            "rest": rest,
            "network": network,
            "network_kwargs": dict(network_kwargs),
            "dense_limit_gib": float(dense_limit_gib),
            "z_lr_scale": z_lr_scale if isinstance(z_lr_scale, str) else float(z_lr_scale),
        }
    )


def check_subspace_kwargs(kw: Any) -> dict[str, Any]:
    """One clear RlsubError for a missing, unknown or bad key of ``policy_kwargs["subspace"]``."""
    if not isinstance(kw, dict):
        raise RlsubError(f"policy_kwargs['subspace'] must be a dict, got {kw!r}")
    unknown = [k for k in kw if k not in _KEYS]
    if unknown:
        raise RlsubError(
            f"subspace policy: unknown key {unknown[0]!r}; allowed: {', '.join(_KEYS)}"
        )
    missing = [k for k in _KEYS if k not in kw]
    if missing:
        raise RlsubError(f"subspace policy: missing key {missing[0]!r}")
    if kw["parts"] not in PARTS:
        raise RlsubError(
            f"subspace policy: unknown part {kw['parts']!r}; allowed: {', '.join(PARTS)}"
        )
    if kw["rest"] not in RESTS:
        raise RlsubError(f"subspace policy: rest must be one of {RESTS}, got {kw['rest']!r}")
    d = kw["d"]
    if d != DIRECT and (not isinstance(d, int) or isinstance(d, bool) or d <= 0):
        raise RlsubError(f"subspace policy: d must be a positive integer or 'direct', got {d!r}")
    try:
        resolve_z_lr_scale(kw["z_lr_scale"], 1, 1)
    except ValueError as exc:
        raise RlsubError(f"subspace policy: {exc}") from None
    return dict(kw)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Draw inits from `seed` without touching the caller's global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def _with_params(modules: dict[str, nn.Module]) -> dict[str, nn.Module]:
    return {k: m for k, m in modules.items() if any(True for _ in m.parameters())}


def _shell(modules: dict[str, nn.Module]) -> nn.Module:
    """A container holding `modules` (shared, not copied) under their dotted policy paths,
    so the subspace's parameter names are the policy's own (``action_net.weight``, ...)."""
    root = nn.Module()
    for path, module in modules.items():
        owner = root
        *heads, leaf = path.split(".")
        for head in heads:
            if head not in owner._modules:
                owner.add_module(head, nn.Module())
            owner = owner._modules[head]  # type: ignore[assignment]
        owner.add_module(leaf, module)
    return root


def _copy_reference_init(actor: dict[str, nn.Module], cfg: dict[str, Any]) -> None:
    """Overwrite the actor's weights with the rlsub network's init from theta0_seed."""
    ref = build_network(cfg["network"], cfg["network_kwargs"], seed=cfg["theta0_seed"])
    ref_params = list(ref.parameters())
    own = [p for m in actor.values() for p in m.parameters()]
    ref_shapes = [tuple(p.shape) for p in ref_params]
    own_shapes = [tuple(p.shape) for p in own]
    if ref_shapes != own_shapes:
        raise RlsubError(
            f"subspace policy: network {cfg['network']!r} {cfg['network_kwargs']} has parameter "
            f"shapes {ref_shapes}, but the SB3 actor has {own_shapes}"
        )
    with torch.no_grad():
        for p, r in zip(own, ref_params, strict=True):
            p.copy_(r)


class ThetaSwap:
    """Puts theta = theta0 + P z into the wrapped modules for the length of one call.

    The subspace's tensors are buffers of the SB3 modules (views of theta0 at rest);
    inside `applied()` they are views of theta, so gradients flow to z. Nested calls
    (e.g. _predict -> get_distribution) reuse the outer theta. With gradients off,
    theta is cached until z or theta0 changes (z compared by value: writes through
    `.data` bypass the version counter).
    """

    def __init__(self, sub: Subspace) -> None:
        self.sub = sub
        self.owners = sub.owners
        self.depth = 0
        self.cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    def theta(self) -> Tensor:
        sub = self.sub
        if torch.is_grad_enabled():
            return sub.theta()
        # z's version counter misses writes through `z.data` (SB3's polyak_update writes the
        # target network's z that way), so the cache also keeps a copy of z to compare (O(d)).
        key = (sub.theta0._version, sub.theta0.data_ptr())
        if self.cache is None or self.cache[0] != key or not torch.equal(self.cache[1], sub.z):
            z = sub.z.detach().clone()
            self.cache = (key, z, sub.theta().detach())
        return self.cache[2]

    def _put(self, theta: Tensor) -> None:
        for (owner, leaf), t in zip(self.owners, self.sub.split(theta).values(), strict=True):
            owner._buffers[leaf] = t

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        if self.depth > 0:
            yield
            return
        self._put(self.theta())
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            self._put(self.sub.theta0)


def make_optimizer(
    owner: Any, z: nn.Parameter, direct: list[nn.Parameter], lr: float, z_lr_scale: float
) -> torch.optim.Optimizer:
    """owner.optimizer_class over [z] (its lr times z_lr_scale) and the directly trained tensors.

    SB3 sets every group's lr from its schedule before each update; step hooks apply
    the group's ``lr_scale`` for the length of the step only.
    """
    groups: list[dict[str, Any]] = [{"params": [z], "lr_scale": float(z_lr_scale)}]
    if direct:
        groups.append({"params": direct, "lr_scale": 1.0})
    opt = owner.optimizer_class(groups, lr=lr, **owner.optimizer_kwargs)
    if z_lr_scale != 1.0:
        opt.register_step_pre_hook(_scale_lr)
        opt.register_step_post_hook(_unscale_lr)
    return opt


def _scale_lr(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for g in opt.param_groups:
        g["lr"] = g["lr"] * g.get("lr_scale", 1.0)


def _unscale_lr(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for g in opt.param_groups:
        g["lr"] = g["lr"] / g.get("lr_scale", 1.0)


class SubspaceActorCriticPolicy(ActorCriticPolicy):
    """SB3 `ActorCriticPolicy` (PPO, A2C) whose chosen parts live in theta0 + P z.

    Extra keyword: ``subspace`` (see `subspace_kwargs`). Everything else is
    ActorCriticPolicy's (net_arch, activation_fn, features_extractor_class, ...).
    """

    subspace: Subspace

    def __init__(self, *args: Any, subspace: dict[str, Any], **kwargs: Any) -> None:
        self.subspace_cfg = check_subspace_kwargs(subspace)
        with _seeded(self.subspace_cfg["theta0_seed"]):
            super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        if is_own(self.subspace_cfg["network"]):  # the network itself is the actor
            own_actor_critic(self)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)  # SB3 networks and init; its optimizer is replaced below
        cfg = self.subspace_cfg
        if is_own(cfg["network"]):  # its outputs are the logits / the mean already
            self.action_net = nn.Identity()
        fe = "features_extractor" if self.share_features_extractor else "pi_features_extractor"
        actor = _with_params(
            {
                fe: self.pi_features_extractor,
                "mlp_extractor.policy_net": self.mlp_extractor.policy_net,
                "action_net": self.action_net,
            }
        )
        critic = _with_params(
            {
                "vf_features_extractor": self.vf_features_extractor,
                "mlp_extractor.value_net": self.mlp_extractor.value_net,
                "value_net": self.value_net,
            }
        )
        if self.share_features_extractor:
            critic.pop("vf_features_extractor", None)
        _copy_reference_init(actor, cfg)
        modules = actor if cfg["parts"] == "actor" else {**actor, **critic}
        self.subspace = Subspace(
            _shell(modules),
            cfg["d"],
            projection=cfg["projection"],
            seed=cfg["projection_seed"],
            rest="frozen",
            dense_limit_gib=cfg["dense_limit_gib"],
        )
        self.swap = ThetaSwap(self.subspace)
        if cfg["rest"] == "frozen":
            for name, p in self.named_parameters():
                if name != "subspace.z":
                    p.requires_grad_(False)
        z = self.subspace.z
        direct = [p for p in self.parameters() if p.requires_grad and p is not z]
        scale = resolve_z_lr_scale(cfg["z_lr_scale"], self.subspace.D, cfg["d"])
        self.optimizer = make_optimizer(self, z, direct, lr_schedule(1), scale)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "subspace": dict(self.subspace_cfg)}

    def forward(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        with self.swap.applied():
            return super().forward(obs, deterministic)

    def evaluate_actions(self, obs: Any, actions: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        with self.swap.applied():
            return super().evaluate_actions(obs, actions)

    def get_distribution(self, obs: Any) -> Any:
        with self.swap.applied():
            return super().get_distribution(obs)

    def predict_values(self, obs: Any) -> Tensor:
        with self.swap.applied():
            return super().predict_values(obs)


class SubspaceQNetwork(QNetwork):
    """SB3 `QNetwork` whose parameters live in theta0 + P z (its own z)."""

    subspace: Subspace

    def __init__(self, *args: Any, subspace: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subspace_cfg = check_subspace_kwargs(subspace)
        if is_own(self.subspace_cfg["network"]):
            own_q_net(self)
        modules = _with_params({"features_extractor": self.features_extractor, "q_net": self.q_net})
        _copy_reference_init(modules, self.subspace_cfg)
        cfg = self.subspace_cfg
        self.subspace = Subspace(
            _shell(modules),
            cfg["d"],
            projection=cfg["projection"],
            seed=cfg["projection_seed"],
            rest="frozen",
            dense_limit_gib=cfg["dense_limit_gib"],
        )
        self.swap = ThetaSwap(self.subspace)

    def forward(self, obs: Any) -> Tensor:
        with self.swap.applied():
            return super().forward(obs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "subspace": dict(self.subspace_cfg)}


class SubspaceDQNPolicy(DQNPolicy):
    """SB3 `DQNPolicy` whose Q-network and target network are subspace networks.

    Both are built from the same seeds, so they hold the same theta0 and P and
    each has its own z: SB3's target update (polyak_update over
    ``q_net.parameters()``) copies z. Both "actor" and "all" put the whole
    Q-network in the subspace.
    """

    def __init__(self, *args: Any, subspace: dict[str, Any], **kwargs: Any) -> None:
        self.subspace_cfg = check_subspace_kwargs(subspace)
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        q_net: Any = self.q_net
        z = q_net.subspace.z
        cfg = self.subspace_cfg
        scale = resolve_z_lr_scale(cfg["z_lr_scale"], q_net.subspace.D, cfg["d"])
        self.optimizer = make_optimizer(self, z, [], lr_schedule(1), scale)

    def make_q_net(self) -> QNetwork:
        with _seeded(self.subspace_cfg["theta0_seed"]):
            net_args = self._update_features_extractor(self.net_args, features_extractor=None)
            return SubspaceQNetwork(**net_args, subspace=self.subspace_cfg).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "subspace": dict(self.subspace_cfg)}
