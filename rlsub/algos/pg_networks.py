"""Any network as the policy of SB3 PPO / A2C / DQN in a subspace: a user's
`nn.Module` by import path (`network: {name: mypkg.nets:make}`) or any rlsub
network other than `mlp` and `nature_cnn` (which SB3 builds itself from
``net_arch`` / NatureCNN).

The network is built as for ES, its sizes filled from the env where its builder
names them (`in_dim`, `obs_shape`, `in_channels`, `out_dim`, `n_actions`), and
its own init is theta0. It maps observations, (B, *obs_shape) as SB3 preprocesses
them (images divided by 255), to one value per action:

- PPO / A2C: it is the actor. Its outputs are the logits (discrete actions) or
  the Gaussian's mean (continuous; `log_std` stays SB3's, outside the network):
  `ObsExtractor` hands it the observation unflattened and SB3's `action_net` is
  an identity. SB3's critic is added beside it: an MLP of ``train.critic_hidden``
  (default 64-64, tanh) with its value head, in the subspace with ``parts: all``.
- DQN: it is the Q-network (and, with its own z, the target network).

So the trained actor (``parts: actor``, and DQN) is exactly the rlsub network
with the same theta0, P and z: `rlsub train` writes the compact policy file and
`rlsub eval` replays it, as for the bundled networks.

Imports: core (SB3 and torch beside it).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from rlsub.core.errors import RlsubError
from rlsub.core.registry import build_network

SB3_BUILT = ("mlp", "nature_cnn")  # built by SB3 itself; every other network is "own"
CRITIC_HIDDEN = [64, 64]  # SB3's default value network for an own actor


def is_own(network: str) -> bool:
    """Does the network go in as it is (not rebuilt by SB3 from net_arch / NatureCNN)?"""
    return network not in SB3_BUILT


class ObsExtractor(BaseFeaturesExtractor):
    """SB3 features extractor that hands on the preprocessed observation as it is,
    (B, *obs_shape), so the user's network sees the env's own shape."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__(observation_space, int(np.prod(observation_space.shape or (1,))))

    def forward(self, observations: Tensor) -> Tensor:
        return observations


def n_outputs(action_space: gym.Space[Any]) -> int:
    """One output per action (discrete) or per action dimension (continuous)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, gym.spaces.Box):
        return int(np.prod(action_space.shape))
    raise RlsubError(f"unsupported action space {action_space} for a subspace policy")


def build_own(
    cfg: dict[str, Any], observation_space: gym.Space[Any], n_out: int, role: str
) -> nn.Module:
    """The network of the subspace settings `cfg` (its init from theta0_seed), checked to
    take one observation and give `n_out` values (`role` says what they are)."""
    net = build_network(cfg["network"], cfg["network_kwargs"], seed=cfg["theta0_seed"])
    shape = tuple(observation_space.shape or ())
    what = f"network {cfg['network']!r}"
    was_training = net.training
    net.eval()  # no BatchNorm statistics from this probe
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, *shape))
    except (RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RlsubError(f"{what} does not take this env's observations {shape}: {first}") from None
    finally:
        net.train(was_training)
    if not isinstance(out, Tensor) or tuple(out.shape) != (1, n_out):
        got = tuple(out.shape[1:]) if isinstance(out, Tensor) else type(out).__name__
        raise RlsubError(f"{what} outputs {got} per observation; as {role} it must give ({n_out},)")
    return net


def own_actor_critic(policy: Any) -> None:
    """After SB3's `_build_mlp_extractor` (net_arch {"pi": [], "vf": critic}): the
    network becomes the actor, and the critic flattens what it is given."""
    ext = policy.mlp_extractor
    n_out = n_outputs(policy.action_space)
    ext.policy_net = build_own(
        policy.subspace_cfg, policy.observation_space, n_out, "the actor (logits or action mean)"
    )
    ext.latent_dim_pi = n_out
    ext.value_net = nn.Sequential(nn.Flatten(), *ext.value_net)


def own_q_net(q_network: Any) -> None:
    """The Q-network's `q_net` replaced by the network (obs -> one value per action)."""
    q_network.q_net = build_own(
        q_network.subspace_cfg,
        q_network.observation_space,
        n_outputs(q_network.action_space),
        "the Q-network (one value per action)",
    )


def own_policy_kwargs(algo: str, critic_hidden: list[int] | None) -> dict[str, Any]:
    """SB3 policy_kwargs for an own network: no net_arch of its own for the actor or
    Q-network, the observation unflattened, the critic an MLP (tanh)."""
    if algo == "dqn":
        return {"features_extractor_class": ObsExtractor, "net_arch": []}
    critic = CRITIC_HIDDEN if critic_hidden is None else list(critic_hidden)
    return {
        "features_extractor_class": ObsExtractor,
        "net_arch": {"pi": [], "vf": critic},
        "activation_fn": nn.Tanh,
    }
