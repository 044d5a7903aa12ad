"""Convolutional networks (es_pong, nature_cnn, lenet) with a batched population forward
(grouped convolutions, space-to-depth first layer, antithetic-pair Linear).

Imports: nets.frames, core.errors. Knows nothing of subspaces.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlsub.core.errors import RlsubError


class SamePad2d(nn.Module):
    """TensorFlow 'SAME' padding for a given kernel and stride (extra pad goes right/bottom)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def pads(self, h: int, w: int) -> list[int]:
        """[left, right, top, bottom] for an h x w input."""
        pads = []
        for n in (w, h):
            out = -(-n // self.stride)
            total = max((out - 1) * self.stride + self.kernel - n, 0)
            pads += [total // 2, total - total // 2]
        return pads

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.pad(x, self.pads(*x.shape[-2:]))


class ConvNet(nn.Sequential):
    """A Sequential CNN with a population forward: grouped convolutions and batched matmuls.

    Layers: SamePad2d, Conv2d (groups 1), BatchNorm1d/2d (eval mode: running
    statistics frozen, each member's scale and shift applied per channel),
    ReLU, Tanh, MaxPool2d, Flatten, Linear. `rlsub.core.subspace.Subspace` uses

    - `batched_prepare(params)` + `batched_apply(prepared, x)`: params name ->
      (N, *shape); x: (N, B, C, H, W) -> (N, B, out). Feature maps of the whole
      population are laid out as (B, N*C, H, W), so member i's convolution is
      group i of one grouped convolution (channels-last memory: about twice
      as fast on a CPU); after Flatten, (N, B, F) goes through
      `baddbmm` with each member's weight in its (out, in) layout.
    - the first convolution, when its kernel is a multiple m*s of its stride s,
      runs as an m x m convolution of stride 1 over a space-to-depth input that
      rlsub.nets.frames writes in one pass from the frames; uint8 frames are scaled
      by 1/255 there (`uint8_input`), so rollouts hand them over as they come;
    - `pairs` (rlsub.rollout.pairs): large Linear weights of an antithetic
      population given as centre and delta (op "linear_pm").
    """

    pair_forward = True  # batched_prepare takes antithetic pairs (rlsub.rollout.pairs)
    uint8_input = True  # batched_apply scales uint8 pixels by 1/255 itself

    def _layers(self) -> list[tuple[str, nn.Module]]:
        for _, m in self.named_children():
            if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1)):
                raise RlsubError("ConvNet population forward: grouped/dilated conv unsupported")
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and (
                self.training or m.running_mean is None
            ):
                raise RlsubError(
                    "ConvNet population forward needs eval mode with BatchNorm running "
                    "statistics (call .eval())"
                )
        return list(self.named_children())

    def batched_prepare(
        self, params: dict[str, Tensor], pairs: dict[str, tuple[Tensor, Tensor]] | None = None
    ) -> list[tuple[Any, ...]]:
        """params: name -> (N, *shape) for every parameter -> the ops of batched_apply.

        `pairs` holds Linear weights given as antithetic pairs instead: name -> (centre
        (out, in), delta (H, out, in), float32 or bfloat16), for the population
        [centre + delta_i (i < H); centre - delta_i] (N = 2H). Such a layer is computed as centre x + sign * (delta x),
        so a step reads the centre once and each delta once for the two members of its
        pair, instead of N full weights (es_pong's FC256 is 99 % of D). bfloat16 deltas
        halve what a step reads; their product accumulates in float32 and is added to the
        float32 centre's.
        """
        N = next(iter(params.values())).shape[0]
        pairs = pairs or {}
        ops: list[tuple[Any, ...]] = []
        maps = True  # feature maps until Flatten, then vectors
        for name, m in self._layers():
            if isinstance(m, nn.Conv2d):
                w = params[f"{name}.weight"].reshape(N * m.out_channels, *m.weight.shape[1:])
                w = w.contiguous(memory_format=torch.channels_last)
                b = None if m.bias is None else params[f"{name}.bias"].reshape(-1)
                ops.append(("conv", w, b, m.stride, m.padding, N))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                mean, var = m.running_mean, m.running_var
                assert mean is not None and var is not None  # checked by _layers
                ones = torch.ones(N, m.num_features)
                g = params[f"{name}.weight"] if m.affine else ones
                beta = params[f"{name}.bias"] if m.affine else ones * 0
                scale = g / torch.sqrt(var + m.eps)
                ops.append(("affine", scale, beta - mean * scale))  # (N, C) each
            elif isinstance(m, nn.Linear):
                if maps:
                    raise RlsubError("ConvNet population forward: Linear before Flatten")
                b = (
                    torch.zeros(N, 1, m.out_features)
                    if m.bias is None
                    else params[f"{name}.bias"].unsqueeze(1).contiguous()
                )
                if f"{name}.weight" in pairs:
                    centre, delta = pairs[f"{name}.weight"]
                    H = delta.shape[0]
                    if N != 2 * H:
                        raise ValueError(f"pairs: {N} members need {N // 2} deltas, got {H}")
                    pair = torch.arange(N) % H
                    slot = (torch.arange(N) >= H).long()  # row in its pair: 0 for +, 1 for -
                    sign = (1 - 2 * slot).to(centre.dtype).reshape(N, 1, 1)
                    # the centre as (in, out), contiguous: MKL's product of 8 rows with it
                    # took 0.23 ms against 0.50 ms through the transposed (out, in) view
                    centre_t = centre.t().contiguous()
                    if delta.dtype == torch.bfloat16:  # kept (H, out, in): bf16 bmm's fast layout
                        delta_k = delta.contiguous()
                    else:  # (H, in, out): with 2 episodes a member (4 rows a pair) MKL's
                        # bmm took 0.32 ms for 2 pairs against 0.60 through the (H, out, in)
                        # view, and the same with 2 rows
                        delta_k = delta.transpose(1, 2).contiguous()
                    ops.append(("linear_pm", centre_t, delta_k, b, pair, slot, sign))
                else:
                    ops.append(("linear", params[f"{name}.weight"].contiguous(), b))
            elif isinstance(m, nn.Flatten):
                ops.append(("flatten",))
                maps = False
            elif isinstance(m, SamePad2d):
                ops.append(("pad", m))
            elif isinstance(m, (nn.ReLU, nn.Tanh, nn.MaxPool2d)):
                ops.append(("module", m))
            else:
                raise RlsubError(
                    f"ConvNet population forward: unsupported layer {type(m).__name__}"
                )
        return self._first_conv_s2d(ops)

    @staticmethod
    def _first_conv_s2d(ops: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """A first convolution of kernel m*s, stride s > 1 (after an optional SamePad2d)
        becomes an "input" op: rlsub.nets.frames' space-to-depth input, then an m x m
        convolution of stride 1 (the plain pad + conv is kept for inputs whose padded
        size is not a multiple of s)."""
        from rlsub.nets.frames import depth_weights

        pad = ops[0][1] if ops and ops[0][0] == "pad" else None
        rest = ops[1:] if pad is not None else ops
        if not rest or rest[0][0] != "conv":
            return ops
        _, w, b, stride, padding, N = rest[0]
        k, s = w.shape[-1], stride[0]
        if stride[0] != stride[1] or w.shape[-2] != k or s < 2 or k % s or tuple(padding) != (0, 0):
            return ops
        ws = depth_weights(w, s).contiguous(memory_format=torch.channels_last)
        return [("input", pad, s, ws, b, w, N), *rest[1:]]

    @staticmethod
    def batched_subset(prepared: list[tuple[Any, ...]], idx: Tensor) -> list[tuple[Any, ...]]:
        """The ops of batched_prepare for members `idx` (a 1-D index tensor) only."""
        out: list[tuple[Any, ...]] = []
        for op in prepared:
            if op[0] == "input":
                _, pad, s, ws, b, w, N = op
                ws = ws.reshape(N, -1, *ws.shape[1:])[idx].flatten(0, 1)
                w = w.reshape(N, -1, *w.shape[1:])[idx].flatten(0, 1)
                b = None if b is None else b.reshape(N, -1)[idx].flatten()
                ws = ws.contiguous(memory_format=torch.channels_last)
                w = w.contiguous(memory_format=torch.channels_last)
                out.append(("input", pad, s, ws, b, w, len(idx)))
            elif op[0] == "conv":
                _, w, b, stride, padding, N = op
                w = w.reshape(N, -1, *w.shape[1:])[idx].flatten(0, 1)
                b = None if b is None else b.reshape(N, -1)[idx].flatten()
                w = w.contiguous(memory_format=torch.channels_last)
                out.append(("conv", w, b, stride, padding, len(idx)))
            elif op[0] in ("affine", "linear"):
                out.append((op[0], op[1][idx], op[2][idx]))
            elif op[0] == "linear_pm":  # keep only the deltas of pairs still represented
                _, centre, delta, b, pair, slot, sign = op
                used, pair_idx = torch.unique(pair[idx], return_inverse=True)
                out.append(
                    ("linear_pm", centre, delta[used], b[idx], pair_idx, slot[idx], sign[idx])
                )
            else:
                out.append(op)
        return out

    @staticmethod
    def batched_apply(prepared: list[tuple[Any, ...]], x: Tensor) -> Tensor:
        """x: (N, B, C, H, W) -> (N, B, out) with the population's ops from batched_prepare."""
        N, B = x.shape[:2]
        ops = list(prepared)
        h: Tensor | None = None
        if ops and ops[0][0] == "input":  # space-to-depth first convolution (rlsub.nets.frames)
            from rlsub.nets.frames import space_to_depth

            _, pad, s, ws, b, w, groups = ops.pop(0)
            H, W = x.shape[-2:]
            pads = pad.pads(H, W) if pad is not None else [0, 0, 0, 0]
            if (H + pads[2] + pads[3]) % s == 0 and (W + pads[0] + pads[1]) % s == 0:
                h = F.conv2d(space_to_depth(x, pads, s), ws, b, groups=groups)
            else:  # the plain pad + conv
                plain = [("conv", w, b, (s, s), (0, 0), groups)]
                ops = ([("pad", pad)] if pad is not None else []) + plain + ops
        if h is None:
            if x.dtype == torch.uint8:  # pixels
                x = x.float().mul_(1.0 / 255.0)
            if x.dim() == 5:  # (B, N*C, H, W) in channels-last memory: grouped convs run fastest
                h = x.permute(1, 3, 4, 0, 2).reshape(B, *x.shape[3:], -1).permute(0, 3, 1, 2)
            else:
                h = x.transpose(0, 1).reshape(B, -1)
        for op in ops:
            kind = op[0]
            if kind == "conv":
                _, w, b, stride, padding, groups = op
                h = F.conv2d(h, w, b, stride=stride, padding=padding, groups=groups)
            elif kind == "affine":
                shape = (1, -1, 1, 1) if h.dim() == 4 else (N, 1, -1)
                h = torch.addcmul(op[2].reshape(shape), h, op[1].reshape(shape))
            elif kind == "pad":  # into a channels-last buffer (F.pad may drop the layout)
                H, W = h.shape[-2:]
                left, right, top, bottom = op[1].pads(H, W)
                size = (h.shape[0], h.shape[1], H + top + bottom, W + left + right)
                out = torch.empty(size, memory_format=torch.channels_last).zero_()
                out[:, :, top : top + H, left : left + W] = h
                h = out
            elif kind == "module":
                h = op[1](h)
            elif kind == "flatten":
                h = h.reshape(B, N, -1).transpose(0, 1)
            elif kind == "linear":
                h = torch.baddbmm(op[2], h, op[1].transpose(1, 2))
            elif kind == "linear_pm":
                h = ConvNet._linear_pairs(h, *op[1:])
        return h

    @staticmethod
    def _linear_pairs(
        h: Tensor,
        centre_t: Tensor,
        delta_k: Tensor,
        b: Tensor,
        pair: Tensor,
        slot: Tensor,
        sign: Tensor,
    ) -> Tensor:
        """h: (M, B, F) -> (M, B, out) = b + centre h + sign * delta[pair] h (see batched_prepare);
        centre_t: the centre weight transposed, (F, out); delta_k: the deltas, float32
        (pairs, F, out) or bfloat16 (pairs, out, F) as batched_prepare lays them out;
        slot: each member's row in its pair (0 for +, 1 for -); sign: (M, 1, 1), +1 or -1."""
        M, B, F_in = h.shape
        n_pairs = delta_k.shape[0]
        hc = torch.addmm(b.reshape(M, -1).repeat_interleave(B, 0), h.reshape(M * B, F_in), centre_t)
        x = h.new_zeros(n_pairs, 2, B, F_in)
        x[pair, slot] = h
        x = x.reshape(n_pairs, 2 * B, F_in)
        if delta_k.dtype == torch.bfloat16:  # (pairs, out, F) bf16, float32 accumulation
            hd = torch.bmm(delta_k, x.to(delta_k.dtype).transpose(1, 2)).transpose(1, 2).float()
        else:  # (pairs, F, out)
            hd = torch.bmm(x, delta_k)
        hd = hd.reshape(n_pairs, 2, B, -1)[pair, slot]  # (M, B, out)
        return torch.addcmul(hc.reshape(M, B, -1), hd, sign)


def es_pong(in_channels: int = 4, n_actions: int = 6, size: int = 84) -> nn.Module:
    """The original ES Pong policy (D = 1,005,974 at 4x84x84, 6 actions)."""
    s1 = -(-size // 4)
    s2 = -(-s1 // 2)
    return ConvNet(
        SamePad2d(8, 4),
        nn.Conv2d(in_channels, 16, 8, stride=4),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        SamePad2d(4, 2),
        nn.Conv2d(16, 32, 4, stride=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * s2 * s2, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, n_actions),
    )


def nature_cnn(in_channels: int = 4, n_actions: int = 6) -> nn.Module:
    """Mnih et al. 2015 DQN network on 4x84x84 (D = 1,687,206 with 6 actions)."""
    return ConvNet(
        nn.Conv2d(in_channels, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512),
        nn.ReLU(),
        nn.Linear(512, n_actions),
    )


def lenet(in_channels: int = 1, size: int = 28, n_classes: int = 10) -> nn.Module:
    """LeNet-5 as in the original: 6c5-pool-16c5-pool-120-84-10 (ReLU, max-pool)."""
    s = ((size - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * s * s, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, n_classes),
    )
