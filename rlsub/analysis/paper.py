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

import math
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
    # training settings the paper fixed (the budget aside: a row says its own): a row
    # trained otherwise is another protocol and gets no paper value beside it
    train: dict[str, Any] = field(default_factory=dict)
    # network settings the paper fixed, likewise (a row's kwargs without one have
    # NET_DEFAULTS' value): the init its Keras layers drew theta0 from
    net: dict[str, Any] = field(default_factory=dict)


NET_DEFAULTS: dict[str, Any] = {"init": "torch"}  # the networks' own defaults (nets.catalog)
_KERAS = {"init": "he_normal"}  # the paper's image networks: he_normal kernels, zero biases


# The paper's Adam for MNIST (its scripts: lr 1e-3, beta2 0.99, batch 128) and the DQN its
# code ran (rlsub.algos.dqn_paper's defaults, each one read from that code). MNIST FC keeps
# _ADAM alone: its plain script gives no L2, its width/depth script --l2 0.0001, so rows
# with and without L2 both sit beside its 750 (each config says which it is)
_ADAM = {"lr": 1e-3, "beta2": 0.99, "batch_size": 128}
_DQN = {
    "lr": 1e-4,
    "gamma": 0.95,
    "batch_size": 32,
    "buffer_size": 10_000,
    "store_every": 5,
    "eps_start": 0.5,
    "eps_end": 0.1,
    "eps_anneal_updates": 10_000,
    "momentum": 0.9,
    "target_update_rate": 1.0,
    "l2": 0.0,
    "max_grad_norm": 5.0,
}


PAPER: tuple[PaperValue, ...] = (
    PaperValue(
        "mnist",
        "fc_mnist",
        "adam",
        750,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy; bootstrap 786 +- 66, 3 runs per d",
        train=_ADAM,
        net=_KERAS,
    ),
    PaperValue(
        "mnist",
        "lenet_mnist",
        "adam",
        290,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy",
        # its LeNet script (scripts/more/loop_d_mnist_lenet.sh) adds --l2 0.0001: a Keras
        # kernel regulariser on theta0 + P z, train.l2 here
        train={**_ADAM, "l2": 1e-4},
        net=_KERAS,
    ),
    PaperValue(
        "mnist-shuffled_pixels",
        "fc_mnist",
        "adam",
        750,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy",
        train=_ADAM,
        net=_KERAS,
    ),
    PaperValue(
        "mnist-shuffled_pixels",
        "lenet_mnist",
        "adam",
        1400,
        "fixed",
        0.9,
        "90 % of 100 % test accuracy",
        train=_ADAM,
        net=_KERAS,
    ),
    PaperValue(
        "cifar10",
        "fc_cifar",
        "adam",
        9000,
        "baseline",
        0.9,
        "90 % of the directly trained accuracy; bootstrap 8,285 +- 1,373",
        net=_KERAS,
    ),
    PaperValue(
        "cifar10",
        "lenet_cifar",
        "adam",
        2900,
        "baseline",
        0.9,
        "90 % of the directly trained accuracy; bootstrap 2,860 +- 120",
        net=_KERAS,
    ),
    PaperValue(
        "cartpole-v0",
        "mlp",
        "dqn_paper",
        25,
        "fixed",
        0.9 * 195,
        "mean of 5 runs > 0.9 x 195 (CartPole-v0's solved score); a run's score: the mean "
        "of its last 100 training episodes",
        {"hidden": [20, 20], "activation": "relu", "init": "he_normal"},
        _DQN,
    ),
    PaperValue(
        "cartpole-v0",
        "mlp",
        "dqn_paper",
        40,
        "fixed",
        0.9 * 195,
        "width 400; mean of 5 runs > 0.9 x 195; a run's score: the mean of its last 100 "
        "training episodes",
        {"hidden": [400, 400], "activation": "relu", "init": "he_normal"},
        _DQN,
    ),
    PaperValue(
        "inverted_pendulum",
        "mlp",
        "es",
        4,
        "fixed",
        950.0,
        "solved (950), d_int100, ES; the paper ran InvertedPendulum-v1 on mujoco-py, "
        "this row v5 on mujoco (same dynamics and solved score, another engine version)",
    ),
)

UNMATCHED: tuple[str, ...] = (
    "Pong (paper: 6,000, d_int100, ES on the 4x84x84 Atari frames; here ALE/Pong-v5 with "
    "sticky actions: another task version)",
    "Humanoid (paper: 700; not a task of rlsub)",
    "MNIST with shuffled labels (paper: 190,000 on training accuracy; not measured here)",
)


# Paper rows with no measured row: why, the paper's D, and the command that would run it
# (`rlsub report --paper` lists them as "not measured here", so nothing is dropped).
NOT_HERE: tuple[tuple[str, str, str, int, float, str, str], ...] = (
    # (task, network, algorithm, D, paper d_int, reason, command)
    (
        "mnist",
        "fc_mnist",
        "adam",
        199_210,
        750,
        "not yet swept at its protocol (he_normal init, L2 1e-4, 100 epochs)",
        "RLSUB_DATA_DIR=DIR rlsub sweep mnist_fc_paper_he",
    ),
    (
        "mnist",
        "lenet_mnist",
        "adam",
        44_426,
        290,
        "not yet swept at its protocol (he_normal init, L2 1e-4, 100 epochs)",
        "RLSUB_DATA_DIR=DIR rlsub sweep mnist_lenet_paper_he",
    ),
    (
        "mnist-shuffled_pixels",
        "fc_mnist",
        "adam",
        199_210,
        750,
        "not yet swept at its protocol (he_normal init; a PyTorch-init row is above)",
        "RLSUB_DATA_DIR=DIR rlsub sweep mnist_fc_shuffled_paper_he",
    ),
    (
        "mnist-shuffled_pixels",
        "lenet_mnist",
        "adam",
        44_426,
        1400,
        "not yet swept at its protocol (he_normal init; a PyTorch-init row is above)",
        "RLSUB_DATA_DIR=DIR rlsub sweep mnist_lenet_shuffled_paper_he",
    ),
    (
        "inverted_pendulum",
        "mlp",
        "es",
        541,
        4,
        "not yet swept with OpenAI-ES",
        "rlsub sweep inverted_pendulum_openai_es",
    ),
    (
        "cifar10",
        "fc_cifar",
        "adam",
        656_810,
        9000,
        "CIFAR-10 cannot be brought onto these machines",
        "rlsub sweep cifar10_fc",
    ),
    (
        "cifar10",
        "lenet_cifar",
        "adam",
        62_006,
        2900,
        "CIFAR-10 cannot be brought onto these machines",
        "rlsub sweep cifar10_lenet",
    ),
    (
        "cartpole-v0",
        "mlp",
        "dqn_paper",
        562,
        25,
        "not yet swept (the paper's DQN protocol: rlsub.algos.dqn_paper)",
        "rlsub sweep cartpole_v0_dqn_paper",
    ),
    (
        "cartpole-v0",
        "mlp",
        "dqn_paper",
        163_202,
        40,
        "not yet swept (width 400: a run that does not solve plays 10,000 episodes, over an "
        "hour on one core)",
        "rlsub sweep cartpole_v0_dqn_paper_w400",
    ),
    (
        "pong",
        "es_pong",
        "es",
        1_005_974,
        6000,
        "hours a trial on 2 cores (rlsub suite full_benchmark --plan prices it)",
        "rlsub sweep pong_es",
    ),
    ("humanoid", "mlp", "es", 166_673, 700, "Humanoid is not a task of rlsub", "-"),
    (
        "mnist-shuffled_labels",
        "fc_mnist_400x5",
        "adam",
        959_610,
        190_000,
        "memorisation needs d near 190,000 with a 959,610-parameter net: days on 2 cores",
        "-",
    ),
)


def not_measured_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per paper row that no measured row matches (same task, network, algorithm),
    saying why it is not measured here and the command that would measure it."""
    have = {(r["task"], r["network"], r["algorithm"], r.get("paper_d_int")) for r in rows}
    out = []
    for task, net, algo, D, value, reason, command in NOT_HERE:
        if (task, net, algo, value) in have:
            continue
        out.append(
            {
                "label": f"{task} / {algo} / {net} (the paper's row, D = {D:,})",
                "task": task,
                "network": net,
                "algorithm": algo,
                "D": D,
                "paper_d_int": value,
                "not_measured": reason,
                "command": command,
            }
        )
    return out


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


def protocol_differences(
    pv: PaperValue, train: dict[str, Any] | None, net_kwargs: dict[str, Any] | None = None
) -> list[str]:
    """The training and network settings of a row that differ from the paper's ('lr
    0.001 (the paper: 0.0001)', 'init torch (the paper: he_normal)'); a training setting
    the record does not carry is not counted against it, a network one has its default."""
    out = []
    net = {**NET_DEFAULTS, **(net_kwargs or {})}
    wanted = [(k, v, (train or {}).get(k)) for k, v in pv.train.items()]
    wanted += [(k, v, net.get(k)) for k, v in pv.net.items()]
    for key, want, got in wanted:
        if got is None:
            continue
        same = math.isclose(float(got), float(want), rel_tol=1e-9) if _num(got) else got == want
        if not same:
            out.append(
                f"{key} {got:g} (the paper: {want:g})"
                if _num(got)
                else f"{key} {got} (the paper: {want})"
            )
    return out


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def paper_target(pv: PaperValue, baseline_mean: float | None) -> float | None:
    """The paper's line for a row: its absolute target, or its fraction of our baseline."""
    if pv.line == "fixed":
        return pv.level
    return None if baseline_mean is None else pv.level * baseline_mean
