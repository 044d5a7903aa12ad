"""Frame stacks into the first convolution of a ConvNet population, space-to-depth (numba).

A population forward (rlsub.nets.convnet.ConvNet) lays the feature maps of N
members out as one image of N*C channels in channels-last memory, so that
member i's convolution is group i of a grouped convolution. Its first
convolution (kernel k = m * s, stride s: es_pong's and nature_cnn's 8x8/4) is
computed as an m x m convolution of stride 1 over the space-to-depth input,
each s x s block of a channel turned into s*s channels (the same products,
summed in another order): 0.68 ms against 0.85 ms for es_pong at N = 16 here.

`space_to_depth` writes that input in one pass from the observations as the
env returns them (uint8, scaled by 1/255 on the way; or float): zero padding,
member-major channel order and the block split included, as one gather
through a map of source indices. It replaces a float conversion, a scaling, a
permuted copy and a padded copy: 0.28 ms for 16 Pong frames of 4 x 84 x 84
against 0.64 ms for those four (a loop over the output in numba: 0.65 ms). Channel order: member i, input channel c, block
row dy, block column dx -> i*C*s*s + c*s*s + dy*s + dx.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

_compiled: dict[str, Any] = {}
_SOURCES: dict[tuple[int, ...], np.ndarray] = {}  # gather maps by input shape, padding, s
_TABLE = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)  # uint8 -> [0, 1]


def _gather_u8_py(x, src, table, out):  # type: ignore[no-untyped-def]
    """out[k] = table[x[src[k]]], or 0 where src[k] < 0 (padding)."""
    for k in range(src.shape[0]):
        j = src[k]
        out[k] = table[x[j]] if j >= 0 else 0.0
    return out


def _gather_f_py(x, src, out):  # type: ignore[no-untyped-def]
    """out[k] = x[src[k]], or 0 where src[k] < 0 (padding)."""
    for k in range(src.shape[0]):
        j = src[k]
        out[k] = x[j] if j >= 0 else 0.0
    return out


def _kernel(name: str) -> Any:
    if name not in _compiled:
        from numba import njit

        fn = _gather_u8_py if name == "u8" else _gather_f_py
        _compiled[name] = njit(cache=True)(fn)
    return _compiled[name]


def _source(shape: tuple[int, ...], pads: list[int], s: int) -> np.ndarray:
    """For every output entry (b, Y, X, i, c, dy, dx), in memory order, the flat index of
    its input x[i, b, c, Y*s + dy - top, X*s + dx - left], or -1 in the padding."""
    key = (*shape, *pads, s)
    src = _SOURCES.get(key)
    if src is None:
        N, B, C, H, W = shape
        left, right, top, bottom = pads
        Hs, Ws = (H + top + bottom) // s, (W + left + right) // s
        b, Y, X, i, c, dy, dx = np.meshgrid(
            *(np.arange(n) for n in (B, Hs, Ws, N, C, s, s)), indexing="ij", sparse=True
        )
        y, xx = Y * s + dy - top, X * s + dx - left
        flat = (((i * B + b) * C + c) * H + y) * W + xx
        inside = (y >= 0) & (y < H) & (xx >= 0) & (xx < W)
        src = np.where(inside, flat, -1).astype(np.int32).ravel()
        if len(_SOURCES) >= 8:  # a few shapes per run: the population and its subsets
            _SOURCES.pop(next(iter(_SOURCES)))
        _SOURCES[key] = src
    return src


def space_to_depth(x: Tensor, pads: list[int], s: int) -> Tensor:
    """x: (N, B, C, H, W) uint8 or float -> (B, N*C*s*s, Hp/s, Wp/s) in channels-last memory.

    pads: [left, right, top, bottom] zero padding (Hp = H + top + bottom must be a
    multiple of s, likewise Wp). uint8 input is scaled by 1/255 (pixels). On the CPU
    one gather through a map of source indices built once per shape (int32, 2 MiB for
    es_pong at N = 8): 0.28 ms for 16 Pong frames of 4 x 84 x 84.
    """
    N, B, C, H, W = x.shape
    left, right, top, bottom = pads
    Hp, Wp = H + top + bottom, W + left + right
    if Hp % s or Wp % s:
        raise ValueError(f"space_to_depth: padded {Hp}x{Wp} is not a multiple of {s}")
    out = torch.empty(B, Hp // s, Wp // s, N * C * s * s)
    if x.device.type == "cpu" and x.dtype in (torch.uint8, torch.float32):
        src = _source(tuple(x.shape), list(pads), s)
        flat = np.ascontiguousarray(x.numpy()).reshape(-1)
        if x.dtype == torch.uint8:
            _kernel("u8")(flat, src, _TABLE, out.numpy().reshape(-1))
        else:
            _kernel("f")(flat, src, out.numpy().reshape(-1))
    else:  # torch: pad, split the blocks, permute into place
        scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
        xf = torch.nn.functional.pad(x.float() * scale, (left, right, top, bottom))
        xf = xf.reshape(N, B, C, Hp // s, s, Wp // s, s).permute(1, 3, 5, 0, 2, 4, 6)
        out = xf.reshape(B, Hp // s, Wp // s, -1).to(out)
    return out.permute(0, 3, 1, 2)


def depth_weights(w: Tensor, s: int) -> Tensor:
    """Conv weights (out, C, k, k), k = m*s -> (out, C*s*s, m, m) for the space-to-depth input."""
    n_out, C, k, _ = w.shape
    m = k // s
    w = w.reshape(n_out, C, m, s, m, s).permute(0, 1, 3, 5, 2, 4)  # out, C, dy, dx, KY, KX
    return w.reshape(n_out, C * s * s, m, m)
