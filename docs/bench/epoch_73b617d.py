"""The "before" row of issue 27's table in docs/BENCHMARKS.md: one MNIST FC epoch of the
trainer's step as it was at commit 73b617d (the inner loop of rlsub.algos.supervised.fit
there, copied: theta = split(theta()), autograd's split and concatenation, torch's CSR
product or Fastfood's Kronecker matmuls) against the plain torch loop of
`rlsub bench supervised`, at d = 1,000, one thread, CPU-seconds, 5 rounds, the median
ratio. Run it against that commit's package:

    git worktree add /tmp/rlsub_73b617d 73b617d
    PYTHONPATH=/tmp/rlsub_73b617d python docs/bench/epoch_73b617d.py [sparse fastfood]

MNIST's files are read from RLSUB_DATA_DIR (default /work/shared/data here).
"""

import functools
import os
import statistics
import sys
import time

import torch
from torch import nn

from rlsub.algos.supervised import _inputs, adam, setup
from rlsub.core.config import load_experiment, with_overrides
from rlsub.core.registry import build_network
from rlsub.data.datasets import load_dataset

torch.set_num_threads(1)
root = os.environ.get("RLSUB_DATA_DIR", "/work/shared/data")
data = load_dataset("mnist", data_dir=root, progress=False)
base = with_overrides(load_experiment("mnist_fc"), train={"epochs": 1, "device": "cpu"})
tc = base.train


def old_epoch(cfg, ts, opt, perm):
    sub = ts.sub
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = torch.zeros(())
    for i in range(0, len(perm), tc.batch_size):
        idx = perm[i : i + tc.batch_size]
        xb, yb = _inputs(cfg, ts.x_train[idx]), ts.y_train[idx]
        opt.zero_grad(set_to_none=True)
        params = sub.split(sub.theta())
        loss = loss_fn(sub.call(params, xb), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)


def plain_epoch(net, opt, perm):
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = torch.zeros(())
    for i in range(0, len(perm), 128):
        idx = perm[i : i + 128]
        xb, yb = data.x_train[idx], data.y_train[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)


net = build_network("fc_mnist", seed=0)
popt = adam(net.parameters(), tc)
runs = {"plain": lambda p: plain_epoch(net, popt, p)}
for kind in sys.argv[1:] or ["sparse", "fastfood"]:
    cfg = with_overrides(base, subspace={"projection": kind})
    ts = setup(cfg, tc, 1000, 0, data)
    opt = adam(ts.sub.parameters(), tc)
    runs[kind] = functools.partial(old_epoch, cfg, ts, opt)
perm = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(0))
for r in runs.values():
    r(perm[:1280])
times = {k: [] for k in runs}
for _ in range(5):
    for k, r in runs.items():
        t = time.process_time()
        r(perm)
        times[k].append(time.process_time() - t)
for k, ts_ in times.items():
    ratios = [a / b for a, b in zip(ts_, times["plain"], strict=True)]
    print(
        f"{k:9s} epoch {statistics.median(ts_):.2f} CPU-s  ratio {statistics.median(ratios):.2f}  rounds {[round(x, 2) for x in ratios]}"
    )
