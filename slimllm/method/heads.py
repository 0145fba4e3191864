"""Attention-head importance and selection (paper Section 4.1, Algorithm 1).

Removing head h from a layer removes its additive term o_h = X_h W_O[:, h]^T from the o_proj
output Y = sum_h o_h. A set P of heads is judged by how well the remaining output
Z = Y - sum_{h in P} o_h stays linearly correlated with Y. Heads whose removal keeps that
similarity highest are pruned first, so a head's importance is minus its single-removal similarity.

All statistics are kept in float64 (the o_proj input Gram matrix of float32 or narrower inputs
is summed in float64 over chunks of float32 products, see `streaming.gram_dtype`). After one
pass over the calibration tokens, every candidate set is scored from per-head
cross-covariances without touching the token dimension again.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from slimllm.method.streaming import ShiftedGram, TokenStream, check_float

Reduction = Literal["per_dim", "whole"]


REDUCTIONS: tuple[str, ...] = ("per_dim", "whole")


# A variance at or below this fraction of its reference second moment is rounding noise: the
# signal is constant there and its correlation is taken to be 0.
_CONSTANT_RTOL = 1e-12


@dataclass(frozen=True)
class HeadStats:
    """Sufficient statistics of per-head contributions, for one reduction.

    ``cov[h, g, k]`` is the population covariance of heads h and g over tokens in output
    dimension k ("per_dim", K = D) or over all N*D entries pooled ("whole", K = 1);
    ``mean[h, k]`` is the matching mean and ``count`` the number of tokens seen.
    """

    reduction: str
    cov: Tensor
    mean: Tensor
    count: int

    @property
    def num_heads(self) -> int:
        """Number of heads (or head groups) described."""
        return int(self.cov.shape[0])


@dataclass(frozen=True)
class HeadSearchResult:
    """Outcome of the head search: sorted pruned and kept heads and the similarity before/after."""

    pruned: list[int]
    kept: list[int]
    score_initial: float
    score_final: float
    swaps: int


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def head_contributions(x: Tensor, w_o: Tensor, num_heads: int) -> Tensor:
    """Split the o_proj output into per-head terms o_h = X_h W_O[:, h-slice]^T.

    ``x`` is the o_proj input [N, H*d] and ``w_o`` the o_proj weight [D, H*d] (nn.Linear
    layout). Returns [H, N, D] in at least float32, since half-precision products are too coarse
    for the statistics; the sum over heads is the bias-free o_proj output.
    """
    check_float("x", x, 2, finite=False)
    check_float("w_o", w_o, 2, finite=False)
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
    n_tokens, width = x.shape
    if w_o.shape[1] != width:
        raise ValueError(
            f"w_o must have {width} input columns to match x, got shape {tuple(w_o.shape)}"
        )
    if width % num_heads:
        raise ValueError(f"num_heads={num_heads} must divide the o_proj input width {width}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, w_o.dtype), torch.float32)
    head_dim = width // num_heads
    xh = x.to(dtype).reshape(n_tokens, num_heads, head_dim)
    wh = w_o.to(dtype).reshape(w_o.shape[0], num_heads, head_dim)
    return torch.einsum("nhk,dhk->hnd", xh, wh)


def _correlation(
    cov_yz: Tensor, var_y: Tensor, var_z: Tensor, ref_y: Tensor, ref_z: Tensor
) -> Tensor:
    """Pearson r from moments; where Y or Z is constant (see ``_CONSTANT_RTOL``) r is 0."""
    var_y = var_y.clamp_min(0.0)
    var_z = var_z.clamp_min(0.0)
    varying = (var_y > _CONSTANT_RTOL * ref_y) & (var_z > _CONSTANT_RTOL * ref_z)
    denom = torch.where(varying, torch.sqrt(var_y * var_z), torch.ones_like(var_y))
    r = torch.where(varying, cov_yz / denom, torch.zeros_like(cov_yz))
    return r.clamp(-1.0, 1.0)


def _reduce(r: Tensor, reduction: str) -> Tensor:
    # The authors sum |r| over dimensions; the pooled variant keeps the sign so that an
    # anti-correlated output is never mistaken for a faithful one.
    return r.abs().sum(-1) if reduction == "per_dim" else r.sum(-1)


def pearson_similarity(y: Tensor, z: Tensor, reduction: Reduction = "per_dim") -> float:
    """Eq. 4: Pearson similarity between the full output ``y`` and a pruned output ``z``.

    Both are [N, D] over calibration tokens. "per_dim" (the authors' choice) takes r per output
    dimension across tokens and sums |r| over dimensions (range [0, D]); "whole" is one signed r
    over all N*D entries. The paper's head score is Score_i = -pearson_similarity(Y, Y - o_i):
    the heads whose removal leaves the similarity highest are the least important. A dimension
    where Y or Z is constant (variance <= 1e-12 of its mean square) contributes 0.
    """
    _check_reduction(reduction)
    check_float("y", y, 2, finite=False)
    check_float("z", z, 2, finite=False)
    if y.shape != z.shape:
        raise ValueError(f"z must have the shape of y {tuple(y.shape)}, got {tuple(z.shape)}")
    if y.shape[0] < 1:
        raise ValueError("y must hold at least one token (row)")
    y64 = y.to(torch.float64)
    z64 = z.to(torch.float64)
    if reduction == "whole":
        y64 = y64.reshape(-1, 1)
        z64 = z64.reshape(-1, 1)
    yc = y64 - y64.mean(0)
    zc = z64 - z64.mean(0)
    r = _correlation(
        (yc * zc).mean(0),
        (yc * yc).mean(0),
        (zc * zc).mean(0),
        (y64 * y64).mean(0),
        (z64 * z64).mean(0),
    )
    return float(_reduce(r, reduction))


class HeadStatsAccumulator(TokenStream):
    """Builds :class:`HeadStats` from per-head contributions streamed in token chunks.

    Memory is H*H*D float64 values regardless of the number of tokens.
    """

    def __init__(self) -> None:
        super().__init__()
        # (shift [H, D], sum of shifted values [H, D], sum of shifted cross products [D, H, H])
        self._moments: tuple[Tensor, Tensor, Tensor] | None = None

    def update(self, contrib: Tensor) -> None:
        """Add a chunk of contributions [H, n, D] (n tokens of the same heads and width)."""
        check_float("contrib", contrib, 3, finite=False)
        if contrib.shape[1] == 0:
            raise ValueError("contrib must hold at least one token, got an empty chunk")
        c = contrib.detach().to(torch.float64)
        if self._moments is None:
            # Raw moments about the first chunk's mean avoid cancellation when the
            # contributions carry a large constant offset.
            shift = c.mean(dim=1)
            cross = c.new_zeros((c.shape[2], c.shape[0], c.shape[0]))
            self._moments = (shift, torch.zeros_like(shift), cross)
        shift, total, cross = self._moments
        if (c.shape[0], c.shape[2]) != tuple(shift.shape):
            raise ValueError(
                f"contrib must be [H={shift.shape[0]}, n, D={shift.shape[1]}] "
                f"like earlier chunks, got {tuple(c.shape)}"
            )
        c = c - shift[:, None, :]
        chunk_sum = c.sum(dim=1)
        # A NaN or inf anywhere in the chunk reaches its column sum: checking the [H, D] sums
        # costs nothing next to a full pass over the [H, n, D] chunk.
        if not torch.isfinite(chunk_sum).all():
            raise ValueError("contrib must be finite (check for fp16 overflow)")
        total += chunk_sum
        per_dim = c.permute(2, 0, 1).contiguous()
        cross += per_dim @ per_dim.transpose(1, 2)
        self._count += c.shape[1]

    def finalize(self, reduction: Reduction = "per_dim") -> HeadStats:
        """Return the statistics for ``reduction`` ("per_dim" or "whole")."""
        _check_reduction(reduction)
        if self._moments is None or self._count == 0:
            raise ValueError("no tokens accumulated: call update() with a non-empty chunk first")
        shift, total, cross = self._moments
        n = self._count
        offset = total / n
        comoment = cross.permute(1, 2, 0) - n * offset[:, None, :] * offset[None, :, :]
        return _reduced(comoment / n, shift + offset, n, reduction)


def _reduced(cov: Tensor, mean: Tensor, count: int, reduction: str) -> HeadStats:
    """:class:`HeadStats` for `reduction` from per-dimension covariances [H, H, D] and means."""
    if reduction == "per_dim":
        return HeadStats(reduction, cov, mean, count)
    # Pooling over dimensions adds the spread of each head's per-dimension means.
    dev = mean - mean.mean(dim=1, keepdim=True)
    pooled = (cov.sum(dim=-1) + dev @ dev.T) / mean.shape[1]
    return HeadStats(reduction, pooled[:, :, None], mean.mean(dim=1, keepdim=True), count)


class InputMomentsAccumulator(ShiftedGram):
    """Streams the moments of o_proj's inputs [n, H*d], from which :meth:`finalize` gives the
    :class:`HeadStats` of the heads' contributions without ever forming them.

    A contribution o_h = X_h W_O[:, h]^T is linear in the input, so per output dimension k
    cov(o_h[k], o_g[k]) = W_O[k, h] Cov(X_h, X_g) W_O[k, g]^T and mean(o_h[k]) = W_O[k, h] E[X_h].
    One float64 [H*d, H*d] matrix (summed from float32 chunk products for float32 inputs, see
    `streaming.gram_dtype`) replaces the [H, N, D] contributions: for SmolLM2 that is
    2.7 GFLOP of Gram matrix per layer instead of 2.7 GFLOP of contributions plus their float64
    copies, transposes and per-dimension products.
    """

    name = "x"

    def finalize(self, w_o: Tensor, num_heads: int, reduction: Reduction = "per_dim") -> HeadStats:
        """The :class:`HeadStats` of :func:`head_contributions` (x, `w_o`, `num_heads`) over
        every token seen, for ``reduction``; `w_o` is the o_proj weight [D, H*d]."""
        _check_reduction(reduction)
        if self._moments is None:
            raise ValueError("no tokens accumulated: call update() with a non-empty chunk first")
        check_float("w_o", w_o, 2, finite=False)
        shift, total, cross = self._moments
        width = shift.shape[0]
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        if w_o.shape[1] != width or width % num_heads:
            raise ValueError(
                f"w_o must be [D, {width}] with num_heads={num_heads} dividing {width}, "
                f"got {tuple(w_o.shape)}"
            )
        n = self._count
        offset = total / n
        cov_x = cross / n - torch.outer(offset, offset)
        w = w_o.detach().to(device=cross.device, dtype=torch.float64)
        head_dim = width // num_heads
        per_head = w.reshape(w.shape[0], num_heads, head_dim)
        rows = []
        for h in range(num_heads):
            cols = slice(h * head_dim, (h + 1) * head_dim)
            # [D, W]: W_O[k, h] Cov(X_h, X), then paired with every head's W_O[k, g].
            through = w[:, cols] @ cov_x[cols]
            rows.append((through.reshape(per_head.shape) * per_head).sum(dim=-1).T)
        cov = torch.stack(rows)
        cov = (cov + cov.transpose(0, 1)) / 2
        mean = (per_head * (shift + offset).reshape(num_heads, head_dim)).sum(dim=-1).T
        return _reduced(cov, mean, n, reduction)


def head_statistics(contrib: Tensor, reduction: Reduction = "per_dim") -> HeadStats:
    """One-shot :class:`HeadStats` from contributions [H, N, D]."""
    acc = HeadStatsAccumulator()
    acc.update(contrib)
    return acc.finalize(reduction)


class _Moments:
    """Quantities of a :class:`HeadStats` shared by every candidate removal set."""

    def __init__(self, stats: HeadStats) -> None:
        if not isinstance(stats, HeadStats):
            raise ValueError(f"stats must be a HeadStats, got {type(stats).__name__}")
        _check_reduction(stats.reduction)
        self.cov = stats.cov
        self.reduction = stats.reduction
        self.cov_head_y = stats.cov.sum(dim=1)
        self.var_y = self.cov_head_y.sum(dim=0)
        # Incremental variances cancel at the scale of the heads' total energy, so that is
        # the reference for calling Y or Z constant.
        self.energy = (torch.diagonal(stats.cov).T + stats.mean**2).sum(dim=0)

    def similarity(self, cov_y_r: Tensor, var_r: Tensor) -> Tensor:
        """Similarity of Y and Z = Y - R from cov(Y, R) and var(R) (any leading batch dims)."""
        cov_y_z = self.var_y - cov_y_r
        var_z = self.var_y - 2.0 * cov_y_r + var_r
        r = _correlation(cov_y_z, self.var_y, var_z, self.energy, self.energy)
        return _reduce(r, self.reduction)


def _check_head_set(removed: Sequence[int] | Tensor, num_heads: int) -> list[int]:
    if isinstance(removed, Tensor):
        if removed.ndim != 1 or removed.is_floating_point() or removed.is_complex():
            raise ValueError(f"removed must be a 1-D integer tensor, got {removed.dtype}")
        heads = [int(h) for h in removed.tolist()]
    else:
        try:
            heads = [operator.index(h) for h in removed if not isinstance(h, bool)]
        except TypeError as err:
            raise ValueError(f"removed must hold integer head indices, got {removed!r}") from err
        if len(heads) != len(removed):
            raise ValueError(f"removed must hold integer head indices, got {removed!r}")
    if any(h < 0 or h >= num_heads for h in heads):
        raise ValueError(f"removed must hold head indices in [0, {num_heads}), got {heads}")
    if len(set(heads)) != len(heads):
        raise ValueError(f"removed must not repeat a head, got {heads}")
    return heads


def removal_similarity(stats: HeadStats, removed: Sequence[int] | Tensor) -> float:
    """Similarity of :func:`pearson_similarity` for removing the heads ``removed``, from ``stats``.

    Cost is O(|P|^2 K) for K = D ("per_dim") or 1 ("whole"), independent of the token count.
    The constant-dimension rule refers to the heads' summed mean squares, the scale at which
    these variances lose precision, instead of the mean square of Y or Z.
    """
    mom = _Moments(stats)
    heads = _check_head_set(removed, stats.num_heads)
    idx = torch.tensor(heads, dtype=torch.long, device=stats.cov.device)
    cov_y_r = mom.cov_head_y[idx].sum(dim=0)
    var_r = mom.cov[idx][:, idx].sum(dim=(0, 1))
    return float(mom.similarity(cov_y_r, var_r))


def single_head_similarity(stats: HeadStats) -> Tensor:
    """Similarity after removing each head alone, [H] (float64); importance is its negative."""
    mom = _Moments(stats)
    var_r = torch.diagonal(mom.cov).T
    return mom.similarity(mom.cov_head_y, var_r)


def _check_groups(groups: Tensor, num_heads: int) -> Tensor:
    if not isinstance(groups, Tensor) or groups.dtype not in (torch.int32, torch.int64):
        raise ValueError("groups must be an integer (long) tensor giving each head's group")
    if groups.shape != (num_heads,):
        raise ValueError(f"groups must have shape ({num_heads},), got {tuple(groups.shape)}")
    num_groups = int(groups.max()) + 1
    if int(groups.min()) < 0 or torch.unique(groups).numel() != num_groups:
        raise ValueError(f"groups must use every label 0..G-1 at least once, got {groups.tolist()}")
    return groups.to(torch.long)


def kv_group_index(num_heads: int, num_kv_heads: int) -> Tensor:
    """KV group of each query head under grouped-query attention (consecutive heads share one)."""
    if num_heads < 1 or num_kv_heads < 1 or num_heads % num_kv_heads:
        raise ValueError(
            f"num_kv_heads must be a positive divisor of num_heads={num_heads}, got {num_kv_heads}"
        )
    return torch.arange(num_heads) // (num_heads // num_kv_heads)


def group_contributions(contrib: Tensor, groups: Tensor) -> Tensor:
    """Sum per-head contributions [H, N, D] into per-group units [G, N, D].

    Running the head search on these units prunes whole KV groups.
    """
    check_float("contrib", contrib, 3, finite=False)
    g = _check_groups(groups, contrib.shape[0]).to(contrib.device)
    num_groups = int(g.max()) + 1
    out = contrib.new_zeros((num_groups, *contrib.shape[1:]))
    return out.index_add_(0, g, contrib)


def group_statistics(stats: HeadStats, groups: Tensor) -> HeadStats:
    """The :class:`HeadStats` of :func:`group_contributions` derived from the heads' own.

    A group's contribution is the sum of its heads', so its covariances are sums of the heads'
    covariances (cov_G = S cov S^T with S the [G, H] membership matrix, per output dimension, or
    pooled) and its means are sums of their means. Saves a second pass over the tokens.
    """
    if not isinstance(stats, HeadStats):
        raise ValueError(f"stats must be a HeadStats, got {type(stats).__name__}")
    g = _check_groups(groups, stats.num_heads).to(stats.cov.device)
    member = torch.zeros(
        (int(g.max()) + 1, stats.num_heads), dtype=stats.cov.dtype, device=stats.cov.device
    )
    member[g, torch.arange(stats.num_heads, device=g.device)] = 1.0
    cov = torch.einsum("ah,hgk,bg->abk", member, stats.cov, member)
    return HeadStats(stats.reduction, cov, member @ stats.mean, stats.count)


def _check_num_prune(num_prune: int, num_heads: int) -> None:
    if isinstance(num_prune, bool) or not isinstance(num_prune, int):
        raise ValueError(f"num_prune must be an int, got {num_prune!r}")
    if not 0 <= num_prune < num_heads:
        raise ValueError(f"num_prune must be in [0, {num_heads}), got {num_prune}")


def initial_head_selection(
    stats: HeadStats, num_prune: int, groups: Tensor | None = None
) -> list[int]:
    """The ``num_prune`` least important heads, most prunable first (no search).

    Heads are ranked by single-removal similarity, highest first, ties to the lower index. With
    ``groups``, each of the G groups contributes num_prune / G heads (num_prune must divide).
    """
    num_heads = stats.num_heads
    _check_num_prune(num_prune, num_heads)
    sims = single_head_similarity(stats).cpu()
    order = torch.argsort(-sims, stable=True).tolist()
    if groups is None:
        return order[:num_prune]
    g = _check_groups(groups, num_heads).cpu()
    num_groups = int(g.max()) + 1
    if num_prune % num_groups:
        raise ValueError(
            f"num_prune={num_prune} must be divisible by the number of groups {num_groups}"
        )
    per_group = num_prune // num_groups
    smallest = int(torch.bincount(g).min())
    if per_group > smallest:
        raise ValueError(
            f"num_prune={num_prune} asks {per_group} heads per group but a group has {smallest}"
        )
    taken = dict.fromkeys(range(num_groups), 0)
    chosen = []
    for h in order:
        if taken[int(g[h])] < per_group:
            taken[int(g[h])] += 1
            chosen.append(h)
    return chosen


def greedy_head_search(
    stats: HeadStats, num_prune: int, groups: Tensor | None = None, search: bool = True
) -> HeadSearchResult:
    """Algorithm 1: swap search starting from :func:`initial_head_selection`.

    For each initially pruned head p, in that order, every currently kept head k (of p's group
    when ``groups`` is given) is tried in p's place; the best trial is adopted if it raises the
    similarity strictly (ties go to the lower k). The list of p is not refreshed. Each trial costs
    O(K) from running sums. ``search=False`` returns the initial set (the "no search" ablation).
    """
    initial = initial_head_selection(stats, num_prune, groups)
    mom = _Moments(stats)
    num_heads = stats.num_heads
    device = stats.cov.device
    g = (
        torch.zeros(num_heads, dtype=torch.long)
        if groups is None
        else _check_groups(groups, num_heads).cpu()
    )
    pruned = torch.zeros(num_heads, dtype=torch.bool)
    pruned[initial] = True

    idx = torch.tensor(initial, dtype=torch.long, device=device)
    # Running sums for the removed part R: cov(R, o_h) for every head h, cov(Y, R) and var(R).
    cov_r_head = mom.cov[idx].sum(dim=0)
    cov_y_r = mom.cov_head_y[idx].sum(dim=0)
    var_r = cov_r_head[idx].sum(dim=0)
    current = float(mom.similarity(cov_y_r, var_r))
    score_initial = current
    swaps = 0
    for p in initial if search else []:
        candidates = ((~pruned) & (g == g[p])).nonzero().squeeze(1)
        if candidates.numel() == 0:
            continue
        k = candidates.to(device)
        # R' = R - o_p + o_k, expanded with cov(R, o_h) kept for every head h.
        trial_cov_y_r = cov_y_r - mom.cov_head_y[p] + mom.cov_head_y[k]
        trial_var_r = (
            var_r
            - 2.0 * cov_r_head[p]
            + mom.cov[p, p]
            + 2.0 * cov_r_head[k]
            + mom.cov[k, k]
            - 2.0 * mom.cov[p, k]
        )
        trial = mom.similarity(trial_cov_y_r, trial_var_r)
        best = int(torch.argmax(trial))
        if float(trial[best]) > current:
            chosen = int(candidates[best])
            pruned[p] = False
            pruned[chosen] = True
            cov_r_head = cov_r_head - mom.cov[p] + mom.cov[chosen]
            cov_y_r = trial_cov_y_r[best]
            var_r = trial_var_r[best]
            current = float(trial[best])
            swaps += 1
    return HeadSearchResult(
        pruned=pruned.nonzero().squeeze(1).tolist(),
        kept=(~pruned).nonzero().squeeze(1).tolist(),
        score_initial=score_initial,
        score_final=current,
        swaps=swaps,
    )
