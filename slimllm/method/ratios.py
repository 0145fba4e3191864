"""Per-layer pruning ratios from input/output similarity (paper Section 4.4).

A layer that barely changes its hidden states (high cosine similarity between its input and
output) is pruned more. Ratios follow a softmax of the similarities over the chosen layers,
and a bisection on the base ratio meets a global target that the caller measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slimllm.method.streaming import TokenStream


@dataclass(frozen=True)
class RatioSolution:
    """Base ratio found by :func:`solve_base_ratio`, the layer ratios and the achieved fraction."""

    base: float
    ratios: Tensor
    target: float
    achieved: float


def _check_pair(x_in: Tensor, x_out: Tensor) -> None:
    for name, t in (("x_in", x_in), ("x_out", x_out)):
        if not isinstance(t, Tensor) or t.ndim != 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 2-D floating tensor [N, D]")
    if x_in.shape != x_out.shape:
        raise ValueError(
            f"x_out must have the shape of x_in {tuple(x_in.shape)}, got {tuple(x_out.shape)}"
        )


def _row_cosines(x_in: Tensor, x_out: Tensor) -> Tensor:
    """Cosine of each row pair in float64; a zero row has no direction and gives 0."""
    a = x_in.detach().to(torch.float64)
    b = x_out.detach().to(torch.float64)
    norms = torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1)
    dots = (a * b).sum(dim=1)
    return torch.where(norms > 0, dots / torch.where(norms > 0, norms, 1.0), 0.0)


def layer_cosine_similarity(x_in: Tensor, x_out: Tensor) -> float:
    """Layer score: mean over tokens of cos(input row, output row), for [N, D] hidden states."""
    _check_pair(x_in, x_out)
    if x_in.shape[0] < 1:
        raise ValueError("x_in must hold at least one token (row)")
    return float(_row_cosines(x_in, x_out).mean())


class CosineAccumulator(TokenStream):
    """Streams :func:`layer_cosine_similarity` over token chunks."""

    def __init__(self) -> None:
        super().__init__()
        self._sum = 0.0

    def update(self, x_in: Tensor, x_out: Tensor) -> None:
        """Add matching chunks [n, D] of a layer's input and output hidden states."""
        _check_pair(x_in, x_out)
        self._sum += float(_row_cosines(x_in, x_out).sum())
        self._count += x_in.shape[0]

    def finalize(self) -> float:
        """Return the mean cosine over all tokens seen."""
        if self._count == 0:
            raise ValueError("no tokens accumulated: call update() first")
        return self._sum / self._count


def _chosen_layers(
    similarity: Tensor, num_pruned_layers: int | None, skip: Sequence[int]
) -> Tensor:
    """Indices of the K most similar layers outside ``skip`` (ties to the lower index)."""
    if not isinstance(similarity, Tensor) or similarity.ndim != 1 or similarity.numel() == 0:
        raise ValueError("similarity must be a non-empty 1-D tensor [L]")
    if not torch.isfinite(similarity).all():
        raise ValueError("similarity must be finite")
    num_layers = similarity.shape[0]
    skipped = set(skip)
    if any(
        isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_layers for i in skipped
    ):
        raise ValueError(f"skip must hold layer indices in [0, {num_layers}), got {list(skip)}")
    eligible = torch.tensor([i for i in range(num_layers) if i not in skipped], dtype=torch.long)
    k = eligible.numel() if num_pruned_layers is None else num_pruned_layers
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= eligible.numel():
        raise ValueError(
            f"num_pruned_layers must be an int in [1, {eligible.numel()}] (layers not skipped), "
            f"got {num_pruned_layers!r}"
        )
    order = torch.argsort(-similarity.detach().cpu().to(torch.float64)[eligible], stable=True)
    return eligible[order[:k]]


def _check_alpha(alpha: float) -> None:
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be > 0 (and finite), got {alpha}")


def _check_max_ratio(max_ratio: float | None) -> None:
    if max_ratio is not None and not 0 < max_ratio <= 1:
        raise ValueError(f"max_ratio must be in (0, 1] or None, got {max_ratio}")


def layer_ratios(
    similarity: Tensor,
    base: float,
    alpha: float,
    num_pruned_layers: int | None = None,
    skip: Sequence[int] = (),
    max_ratio: float | None = None,
) -> Tensor:
    """Eq. 11: r_i = base * K * softmax(alpha * s)_i over the K most similar layers, else 0.

    ``similarity`` [L] holds the layer scores (:func:`layer_cosine_similarity`); the K layers
    (``num_pruned_layers``, default every layer not in ``skip``) are taken by descending score,
    ties to the lower index. The ratios of the chosen layers sum to base * K, so their mean is
    ``base``. Like the authors' code nothing bounds a ratio, which can exceed 1 at high targets;
    ``max_ratio`` clamps each ratio and does not hand the excess to other layers
    (:func:`solve_base_ratio` raises the base instead). Returns float64 [L].
    """
    _check_alpha(alpha)
    _check_max_ratio(max_ratio)
    if not math.isfinite(base) or base < 0:
        raise ValueError(f"base must be a finite number >= 0, got {base}")
    chosen = _chosen_layers(similarity, num_pruned_layers, skip)
    scores = similarity.detach().cpu().to(torch.float64)[chosen]
    ratios = torch.zeros(similarity.shape[0], dtype=torch.float64)
    ratios[chosen] = base * chosen.numel() * torch.softmax(alpha * scores, dim=0)
    if max_ratio is not None:
        ratios = ratios.clamp(max=max_ratio)
    return ratios


def solve_base_ratio(
    similarity: Tensor,
    target: float,
    alpha: float,
    achieved_fn: Callable[[Tensor], float],
    num_pruned_layers: int | None = None,
    skip: Sequence[int] = (),
    max_ratio: float | None = None,
    tol: float = 0.005,
) -> RatioSolution:
    """Bisect the base of :func:`layer_ratios` until ``achieved_fn`` meets ``target`` +- ``tol``.

    ``achieved_fn`` maps layer ratios to the fraction actually removed (e.g. parameters after
    rounding to whole heads and channels) and must not decrease as the ratios grow. The search
    runs up to the base at which every chosen layer reaches ``max_ratio`` (1 without a clamp,
    where a layer is gone entirely); a target above what that base achieves, or one that
    rounding steps over, raises ValueError. ``target`` 0 gives all-zero ratios.
    """
    if not 0 <= target < 1:
        raise ValueError(f"target must be in [0, 1), got {target}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    _check_alpha(alpha)
    _check_max_ratio(max_ratio)
    chosen = _chosen_layers(similarity, num_pruned_layers, skip)

    def at(base: float) -> tuple[Tensor, float]:
        ratios = layer_ratios(similarity, base, alpha, num_pruned_layers, skip, max_ratio)
        return ratios, float(achieved_fn(ratios))

    if target == 0:
        ratios, achieved = at(0.0)
        return RatioSolution(0.0, ratios, target, achieved)
    scores = similarity.detach().cpu().to(torch.float64)[chosen]
    # The base at which the least similar chosen layer reaches the cap, so every layer does.
    log_share = float(alpha * scores.min() - torch.logsumexp(alpha * scores, dim=0))
    ceiling = (1.0 if max_ratio is None else max_ratio) / chosen.numel() * math.exp(-log_share)
    if not math.isfinite(ceiling):
        raise ValueError(f"alpha must be smaller: alpha={alpha} gives a layer a zero softmax share")
    _, above = at(ceiling)
    if above < target - tol:
        raise ValueError(
            f"target {target:.4f} is unreachable: the maximum achievable ratio is {above:.4f}"
        )
    lo, hi = 0.0, ceiling
    base = 0.0
    ratios, achieved = at(base)
    below = achieved
    while abs(achieved - target) > tol:
        if achieved < target:
            lo, below = base, achieved
        else:
            hi, above = base, achieved
        if hi - lo <= 1e-12 * ceiling:
            raise ValueError(
                f"target {target:.4f} cannot be met within tol={tol}: the achieved ratio jumps "
                f"from {below:.4f} to {above:.4f}; widen tol or use finer pruning units"
            )
        base = (lo + hi) / 2
        ratios, achieved = at(base)
    return RatioSolution(base, ratios, target, achieved)
