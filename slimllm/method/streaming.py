"""The base of the streaming statistics: each equation's accumulator sees tokens in chunks.

Calibration activations are never held whole (the SparseGPT/Wanda pattern: a few kB per
module); every accumulator of the method (head moments, MLP output covariance, layer cosine
similarity, regression moments) adds a chunk with `update` and counts the tokens it has seen.
The input check they share is here too.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_float(name: str, t: Tensor, ndim: int, finite: bool = True) -> None:
    """Type, rank and dtype of `t`; with `finite`, also a full scan for NaN and inf (the
    accumulators skip it and check their chunk sums instead)."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {t.dtype}")
    if finite and not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")


class TokenStream:
    """Counts the tokens an accumulator has seen; subclasses add their own sums."""

    def __init__(self) -> None:
        self._count = 0

    @property
    def count(self) -> int:
        """Number of tokens accumulated so far."""
        return self._count


def gram_dtype(x: Tensor) -> torch.dtype:
    """The dtype a chunk's Gram matrix is multiplied in: float32 for float32 and narrower
    activations, float64 for float64 ones.

    Each chunk's products are then summed into float64 across chunks, about the first chunk's
    mean, so the float32 rounding stays that of one chunk's sums (relative 1e-6 for 1024
    tokens); the float64 product took twice as long and was a fifth of the pruning time once
    the forwards ran in bfloat16.
    """
    return torch.promote_types(x.dtype, torch.float32)


class ShiftedGram(TokenStream):
    """Row sum and Gram matrix of token chunks [n, W], about the first chunk's mean (moments
    about a shift avoid cancellation on large offsets); each chunk's products in `gram_dtype`,
    their sum in float64. The head moments (Eq. 4) and the MLP output covariance (Eq. 2) are
    this stream with their own `finalize`."""

    #: The chunk's name in error messages.
    name = "x"

    def __init__(self) -> None:
        super().__init__()
        # (shift [W], sum of shifted rows [W], sum of shifted outer products [W, W])
        self._moments: tuple[Tensor, Tensor, Tensor] | None = None

    def update(self, x: Tensor) -> None:
        """Add a chunk [n, W]."""
        check_float(self.name, x, 2, finite=False)
        if x.shape[0] == 0:
            raise ValueError(f"{self.name} must hold at least one token, got an empty chunk")
        if self._moments is None:
            shift = x.detach().to(torch.float64).mean(dim=0)
            self._moments = (shift, torch.zeros_like(shift), shift.new_zeros((x.shape[1],) * 2))
        shift, total, cross = self._moments
        if x.shape[1] != shift.shape[0]:
            raise ValueError(f"{self.name} must have {shift.shape[0]} columns like earlier chunks")
        dtype = gram_dtype(x)
        shifted = x.detach().to(dtype) - shift.to(dtype)
        chunk_sum = shifted.sum(dim=0, dtype=torch.float64)
        if not torch.isfinite(chunk_sum).all():
            raise ValueError(f"{self.name} must be finite (check for fp16 overflow)")
        total += chunk_sum
        cross += (shifted.T @ shifted).to(torch.float64)
        self._count += x.shape[0]
