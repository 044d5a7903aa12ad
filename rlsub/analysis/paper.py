"""The original paper's intrinsic dimensions, and which of our rows each belongs to.

Li, Farkhoor, Liu, Yosinski, "Measuring the Intrinsic Dimension of Objective
Landscapes", ICLR 2018 (arXiv:1804.08838), Table 1 and section 3, with the
bootstrap figures of the authors' public result notebook. A paper value is set
beside a row only when the row is the same task version, the same network and
the same algorithm; it is then compared with our estimate *under the paper's own
line* (computed here from the row's curve), never with an estimate under another
rule. Rows of the paper with no such row in rlsub are listed in `UNMATCHED`, with
the reason, for the report's footnote.

Imports: analysis.estimate, core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PaperValue:
    task: str  # rlsub task name, variant included ("cartpole-v0", "mnist")
    network: str  # rlsub network name
    algorithm: str  # rlsub algorithm name
    value: float
    line: str  # "fixed" (an absolute target) or "baseline" (a fraction of the baseline)
    level: float  # the absolute target, or the fraction of the baseline mean
    text: str  # the paper's rule in words, with its uncertainty where published
    net_kwargs: dict[str, Any] = field(default_factory=dict)  # must match these kwargs


PAPER: tuple[PaperValue, ...] = (
    PaperValue(
        "mnist",
        "fc_mnist",
        "adam",
        750,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy; bootstrap 786 +- 66, 3 runs per d",
    ),
    PaperValue("mnist", "lenet_mnist", "adam", 290, "fixed", 0.9, "90 % of 100 % test accuracy"),
    PaperValue(
        "mnist-shuffled_pixels",
        "fc_mnist",
        "adam",
        750,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy",
    ),
    PaperValue(
        "mnist-shuffled_pixels",
        "lenet_mnist",
        "adam",
        1400,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy",
    ),
    PaperValue(
        "cifar10",
        "fc_cifar",
        "adam",
        9000,
        "baseline",
        0.9,
        "90 % of the directly trained accuracy; bootstrap 8,285 +- 1,373",
    ),
    PaperValue(
        "cifar10",
        "lenet_cifar",
        "adam",
        2900,
        "baseline",
        0.9,
        "90 % of the directly trained accuracy; bootstrap 2,860 +- 120",
    ),
    PaperValue(
        "cartpole-v0",
        "mlp",
        "dqn",
        25,
        "fixed",
        0.9 * 195,
        "mean of 5 runs > 0.9 x 195 (CartPole-v0's solved score)",
        {"hidden": [20, 20], "activation": "relu"},
    ),
)

UNMATCHED: tuple[str, ...] = (
    "InvertedPendulum (paper: 4, d_int100, ES, InvertedPendulum-v1 on mujoco-py; here v5 on "
    "mujoco: another task version, so the paper's value is not set beside our rows)",
    "Pong (paper: 6,000, d_int100, ES on the 4x84x84 Atari frames; here ALE/Pong-v5 with "
    "sticky actions: another task version)",
    "Humanoid (paper: 700; not a task of rlsub)",
    "MNIST with shuffled labels (paper: 190,000 on training accuracy; not measured here)",
)


def match(row: dict[str, Any], net_kwargs: dict[str, Any] | None) -> PaperValue | None:
    """The paper's value that belongs to this row (same task version, network and
    algorithm, network kwargs included where the paper fixes them), or None."""
    for pv in PAPER:
        if (row["task"], row["network"], row["algorithm"]) != (pv.task, pv.network, pv.algorithm):
            continue
        kw = net_kwargs or {}
        if all(kw.get(k) == v for k, v in pv.net_kwargs.items()):
            return pv
    return None


def paper_target(pv: PaperValue, baseline_mean: float | None) -> float | None:
    """The paper's line for a row: its absolute target, or its fraction of our baseline."""
    if pv.line == "fixed":
        return pv.level
    return None if baseline_mean is None else pv.level * baseline_mean
