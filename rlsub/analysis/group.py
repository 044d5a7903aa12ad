"""The shape of an estimate group as data: what `analysis.estimate.estimate_group` hands
to the tables, figures and ratios, to `rlsub dint --json` and to `sweep_function`'s
caller. Plain dicts (JSON as they are), typed so that every key read is checked.

Imports: nothing of rlsub.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Kind = Literal["d_int90", "d_int100"]
KINDS: tuple[Kind, Kind] = ("d_int90", "d_int100")


class EstimateDict(TypedDict):
    """`analysis.estimate.Estimate` as data (dataclasses.asdict); see its fields."""

    kind: str
    rule: str
    target: float
    d_int: int | None
    note: str
    interpolated: float | None
    first_crossing: int | None
    monotone: bool
    interval: tuple[int | None, int | None] | None
    interpolated_interval: tuple[float | None, float | None] | None
    posterior_mean: float | None
    posterior_std: float | None
    reached_fraction: float | None
    level: float
    line: str
    headline: float | None
    headline_side: str
    dips: list[int]
    collapse: int | None
    line_floor: float
    score_floor: float
    threshold: float | None


class CurvePointDict(TypedDict):
    """`analysis.curve.CurvePoint` as data: the scores at one d."""

    d: int
    mean: float
    std: float
    n: int
    failed: int
    scores: list[float]


class Baseline(TypedDict):
    """The directly trained baseline's scores: mean, std (None below two), count, failed."""

    mean: float | None
    std: float | None
    n: int
    failed: int


class _Estimated(TypedDict):
    config_hash: str
    name: str
    task: str
    network: str
    algorithm: str
    projection: str
    D: int
    trained_directly: int
    threshold: float
    rule: str
    score: str
    floor: float
    floor_known: bool
    seeds: list[int]
    trials: int
    failed: int
    baseline: Baseline
    baseline_scores: list[float]
    solved_score: float | None
    curve: list[CurvePointDict]
    d_int90: EstimateDict | None
    d_int100: EstimateDict | None
    notes: list[str]


class Group(_Estimated, total=False):
    """One config hash's curve, baseline and estimates (`estimate_group`; every key above),
    and what `rlsub dint` adds from the store's claims."""

    running: int
    abandoned: int


def estimate_of(g: Group, kind: str) -> EstimateDict | None:
    """g's estimate `kind` ("d_int90" or "d_int100"); None where there is none (or no such
    kind)."""
    if kind == "d_int90":
        return g["d_int90"]
    if kind == "d_int100":
        return g["d_int100"]
    return None
