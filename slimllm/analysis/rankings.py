"""How much two importance scores agree: rank correlation and overlap of the kept sets.

Used to compare SlimLLM's feature-space channel ranking (Eq. 8) with simpler criteria. Both
functions take two score vectors over the same units (channels, heads); higher means keep.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_scores(a: Tensor, b: Tensor) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or t.ndim != 1 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 1-D floating tensor of scores")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} must be finite")
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")


def average_ranks(x: Tensor) -> Tensor:
    """Ranks 1..n of ``x`` in ascending order, tied values sharing their mean rank, float64."""
    if not isinstance(x, Tensor) or x.ndim != 1:
        raise ValueError("x must be a 1-D tensor")
    _, inverse, counts = torch.unique(x.to(torch.float64), return_inverse=True, return_counts=True)
    # Unique values come sorted: a value's ranks run from (count before it) + 1 to + its count.
    before = torch.cumsum(counts, 0) - counts
    mean_rank = before.to(torch.float64) + (counts.to(torch.float64) + 1) / 2
    return mean_rank[inverse]


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation: Pearson correlation of the average ranks, in [-1, 1].

    A constant score has no ranking; the correlation is then NaN.
    """
    _check_scores(a, b)
    if a.numel() < 2:
        raise ValueError("spearman needs at least two scores")
    ra = average_ranks(a) - (a.numel() + 1) / 2
    rb = average_ranks(b) - (b.numel() + 1) / 2
    denom = torch.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def top_k(scores: Tensor, k: int) -> Tensor:
    """Indices (sorted) of the k highest scores; ties rank the lower index higher."""
    if not isinstance(scores, Tensor) or scores.ndim != 1:
        raise ValueError("scores must be a 1-D tensor")
    n = scores.numel()
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an int in [0, {n}], got {k!r}")
    order = torch.argsort(-scores.to(torch.float64), stable=True)
    return torch.sort(order[:k]).values


def top_k_overlap(a: Tensor, b: Tensor, k: int) -> float:
    """Share of the k units kept by ``a`` that ``b`` keeps too: |top_k(a) & top_k(b)| / k."""
    _check_scores(a, b)
    if k == 0:
        raise ValueError("k must be >= 1 to compare kept sets")
    kept_a = set(top_k(a, k).tolist())
    return len(kept_a.intersection(top_k(b, k).tolist())) / k
