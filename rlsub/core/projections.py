"""Random projections P: R^d -> R^D with unit-norm columns.

Every projection is built from (seed, D, d, kind) with its own
`torch.Generator`, never the global RNG, so any process rebuilds the same P
from integers. All map z: (d,) -> (D,) and Z: (N, d) -> (N, D), and are
differentiable in z.

Kinds (Li et al. 2018, section 2 and appendix):

- ``dense``: Gaussian entries, each column scaled to unit norm. Memory D*d
  floats; refused above a configurable limit.
- ``sparse``: very sparse random projection (Li, Hastie, Church 2006): each
  parameter tensor (layer) of size n gets density 1/sqrt(n), entries +-1,
  every column normalised over all D rows. Stored as two CSR matrices
  (P for the forward, P^T for the backward); on the CPU also as SciPy CSC row
  blocks (populations, Z: (N, d)) and in ELLPACK form (one z, with theta0
  added in the same pass: rlsub.core.sparse_ell).
- ``fastfood``: y = H G Pi H B pad(z) (Le, Sarlos, Smola 2013) with H the
  unnormalised Walsh-Hadamard transform of length L = 2^ceil(log2 D), first D
  entries kept, divided by sqrt(D) * ||G|| so columns have norm about 1.
  Memory O(L), time O(L log L) per product. When d > L one block cannot hold
  z, so ceil(d / L) independent blocks are used, each taking a slice of z,
  and their outputs are summed (each column still belongs to one block, so
  its norm stays about 1).
- ``identity``: P = I (d = D). Used for the direct-training baseline so that
  every trainer handles both cases with one code path.

One module per kind (core.dense, core.sparse, core.fastfood; identity with the
interface they share, core.projection_base); `make_projection` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rlsub.core.dense import DenseProjection
from rlsub.core.fastfood import FastfoodProjection
from rlsub.core.projection_base import (
    DEFAULT_DENSE_LIMIT_GIB,
    IdentityProjection,
    Projection,
    check_dims,
)
from rlsub.core.sparse import SparseProjection


def make_projection(
    kind: str,
    D: int,
    d: int,
    seed: int,
    layer_sizes: Sequence[int] | None = None,
    dense_limit_gib: float = DEFAULT_DENSE_LIMIT_GIB,
) -> Projection:
    """Build projection `kind` from (seed, D, d). Raises RlsubError on bad input."""
    check_dims(kind, D, d)
    if kind == "dense":
        return DenseProjection(D, d, seed, max_gib=dense_limit_gib)
    if kind == "sparse":
        return SparseProjection(D, d, seed, layer_sizes=layer_sizes)
    if kind == "fastfood":
        return FastfoodProjection(D, d, seed)
    return IdentityProjection(D, d, seed)


def materialize(P: Projection) -> Tensor:
    """The explicit D x d matrix (push the d unit vectors through P). Small D only."""
    with torch.no_grad():
        return P(torch.eye(P.d)).t().contiguous()
