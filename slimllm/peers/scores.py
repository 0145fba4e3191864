"""Importance scores of the baseline pruners, one function per published criterion.

Every score is per input column of an output projection (o_proj or down_proj) or per unit
(a KV group with its query heads, or an MLP channel); higher means more important, and a
method removes the lowest. Columns become units with :func:`unit_sums`. All in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ColumnStats:
    """Streams the mean, variance and L2 norm over tokens of each input column [n, F].

    The per-layer statistic every activation-based peer needs (FLAP's fluctuation and bias,
    Wanda's ||X_j||), taken about the first chunk's mean to avoid cancellation.
    """

    def __init__(self) -> None:
        self._shift: Tensor | None = None
        self._sums: Tensor | None = None  # rows: sum of (x - shift), of (x - shift)^2, of x^2
        self.count = 0

    def update(self, x: Tensor) -> None:
        x64 = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        if self._shift is None or self._sums is None:
            self._shift = x64.mean(dim=0)
            self._sums = x64.new_zeros((3, x64.shape[1]))
        d = x64 - self._shift
        self._sums += torch.stack([d.sum(0), (d * d).sum(0), (x64 * x64).sum(0)])
        self.count += x64.shape[0]

    def _check(self) -> tuple[Tensor, Tensor]:
        if self._shift is None or self._sums is None:
            raise ValueError("no tokens accumulated: call update() first")
        return self._shift, self._sums

    def mean(self) -> Tensor:
        shift, sums = self._check()
        return shift + sums[0] / self.count

    def variance(self) -> Tensor:
        """Sample variance (N - 1 in the denominator, as FLAP's running estimate)."""
        _, sums = self._check()
        if self.count < 2:
            raise ValueError("the variance needs at least two tokens")
        return ((sums[1] - sums[0] ** 2 / self.count) / (self.count - 1)).clamp_min(0.0)

    def norm(self) -> Tensor:
        _, sums = self._check()
        return sums[2].sqrt()


def unit_sums(column_scores: Tensor, width: int) -> Tensor:
    """Sum consecutive blocks of `width` column scores: head_dim x group size columns per unit."""
    if column_scores.ndim != 1 or column_scores.numel() % width:
        raise ValueError(
            f"{column_scores.numel()} column scores do not split into {width}-wide units"
        )
    return column_scores.reshape(-1, width).sum(dim=1)


def magnitude_columns(weight: Tensor) -> Tensor:
    """Magnitude-sp: ||W[:, j]||_2 of each input column of an output projection [D, F]."""
    return torch.linalg.vector_norm(weight.to(torch.float64), dim=0)


def wanda_columns(weight: Tensor, x_norm: Tensor) -> Tensor:
    """Wanda-sp: mean over output rows of |W_ij| * ||X_j||_2, per input column j."""
    return weight.to(torch.float64).abs().mean(dim=0) * x_norm.to(torch.float64)


def flap_columns(weight: Tensor, fluctuation: Tensor) -> Tensor:
    """FLAP's WIFV: variance of input column j over tokens times ||W[:, j]||_2^2."""
    return fluctuation.to(torch.float64) * weight.to(torch.float64).pow(2).sum(dim=0)


def standardise(scores: Tensor) -> Tensor:
    """(s - mean) / std within one layer and structure kind, as FLAP does before ranking.

    A constant score vector (std 0) becomes all zeros.
    """
    s = scores.to(torch.float64)
    if s.numel() < 2:
        return torch.zeros_like(s)
    std = s.std()
    return (s - s.mean()) / std if std > 0 else torch.zeros_like(s)


def taylor(weight: Tensor, grad: Tensor) -> Tensor:
    """LLM-Pruner's first-order element salience |w * dL/dw| (its "param_first" default)."""
    return (weight.to(torch.float64) * grad.to(torch.float64)).abs()


def flap_bias(weight: Tensor, mean: Tensor, removed: Tensor) -> Tensor:
    """FLAP's compensation W[:, removed] @ E[x_removed]: the bias that keeps the output mean."""
    w = weight.to(torch.float64)[:, removed]
    return w @ mean.to(device=w.device, dtype=torch.float64)[removed]
