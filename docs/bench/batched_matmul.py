"""MNIST FC forward and backward of 3 networks on one minibatch: 3 separate matmul chains
against one batched (bmm) chain, at 1 and 2 torch threads (no projection). Prints the
median of 7 alternating rounds of 20 steps each.

    python docs/bench/batched_matmul.py
"""

import time

import torch

torch.manual_seed(0)
B, SIZES, T = 128, [784, 200, 200, 10], 3
X = torch.randn(B, 784)
Y = torch.randint(0, 10, (B,))
PAIRS = list(zip(SIZES[:-1], SIZES[1:], strict=True))
SEPARATE = [[torch.randn(a, b, requires_grad=True) for a, b in PAIRS] for _ in range(T)]
BATCHED = [torch.randn(T, a, b, requires_grad=True) for a, b in PAIRS]


def separate() -> None:
    for weights in SEPARATE:
        h = X
        for i, w in enumerate(weights):
            h = h @ w
            if i < len(weights) - 1:
                h = h.relu()
        torch.nn.functional.cross_entropy(h, Y).backward()


def batched() -> None:
    h = X.expand(T, B, 784)
    for i, w in enumerate(BATCHED):
        h = torch.bmm(h, w)
        if i < len(BATCHED) - 1:
            h = h.relu()
    torch.nn.functional.cross_entropy(h.reshape(T * B, 10), Y.repeat(T)).backward()


def seconds(fn, steps: int = 20) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - t


for threads in (1, 2):
    torch.set_num_threads(threads)
    seconds(separate, 5), seconds(batched, 5)  # warm-up
    ratios, sep = [], 0.0
    for _ in range(7):
        sep = seconds(separate)
        ratios.append(seconds(batched) / sep)
    ratios.sort()
    print(
        f"threads {threads}: batched / separate (3 nets, forward and backward, no projection) "
        f"median {ratios[3]:.2f}, separate {sep / 20 * 1e3:.2f} ms a step"
    )
