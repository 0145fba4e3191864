"""Head scoring and search (slimllm.method.heads) against slow, direct formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from slimllm.method.heads import (
    REDUCTIONS,
    HeadStatsAccumulator,
    InputMomentsAccumulator,
    greedy_head_search,
    group_contributions,
    group_statistics,
    head_contributions,
    head_statistics,
    initial_head_selection,
    kv_group_index,
    pearson_similarity,
    removal_similarity,
    single_head_similarity,
)


def random_contrib(seed: int, heads: int = 6, tokens: int = 40, dims: int = 5) -> torch.Tensor:
    """Correlated per-head outputs with per-dimension offsets, float64 [H, N, D]."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(heads, heads, generator=g, dtype=torch.float64)
    base = torch.randn(heads, tokens, dims, generator=g, dtype=torch.float64)
    offset = 3.0 * torch.randn(heads, 1, dims, generator=g, dtype=torch.float64)
    return torch.einsum("hg,gnd->hnd", mix, base) + offset


def naive_pearson(y: np.ndarray, z: np.ndarray, reduction: str) -> float:
    """Textbook Pearson r, one column at a time (data here has no constant column)."""
    if reduction == "whole":
        y, z = y.reshape(-1, 1), z.reshape(-1, 1)
    total = 0.0
    for d in range(y.shape[1]):
        a = y[:, d] - y[:, d].mean()
        b = z[:, d] - z[:, d].mean()
        r = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
        total += abs(r) if reduction == "per_dim" else r
    return total


def naive_removal(contrib: torch.Tensor, removed: list[int] | set[int], reduction: str) -> float:
    c = contrib.numpy()
    y = c.sum(axis=0)
    z = y - sum((c[h] for h in removed), np.zeros_like(y))
    return naive_pearson(y, z, reduction)


def naive_algorithm1(
    contrib: torch.Tensor, num_prune: int, reduction: str, groups: list[int] | None = None
) -> tuple[list[int], int]:
    """Algorithm 1 evaluated by brute force over tokens for every trial."""
    heads = contrib.shape[0]
    labels = groups if groups is not None else [0] * heads
    singles = [naive_removal(contrib, [h], reduction) for h in range(heads)]
    order = sorted(range(heads), key=lambda h: (-singles[h], h))
    per_group = num_prune // (max(labels) + 1)
    initial: list[int] = []
    for h in order:
        if sum(labels[i] == labels[h] for i in initial) < per_group:
            initial.append(h)
    pruned = set(initial)
    best = naive_removal(contrib, pruned, reduction)
    swaps = 0
    for p in initial:
        choice = None
        for k in range(heads):
            if k in pruned or labels[k] != labels[p]:
                continue
            s = naive_removal(contrib, (pruned - {p}) | {k}, reduction)
            if s > best:
                best, choice = s, k
        if choice is not None:
            pruned = (pruned - {p}) | {choice}
            swaps += 1
    return sorted(pruned), swaps


def exhaustive_best(contrib: torch.Tensor, num_prune: int, reduction: str) -> list[int]:
    sets = itertools.combinations(range(contrib.shape[0]), num_prune)
    return list(max(sets, key=lambda s: naive_removal(contrib, list(s), reduction)))


def test_head_contributions_match_loop() -> None:
    g = torch.Generator().manual_seed(0)
    n, h, d, out = 5, 3, 2, 4
    x = torch.randn(n, h * d, generator=g, dtype=torch.float64)
    w = torch.randn(out, h * d, generator=g, dtype=torch.float64)
    got = head_contributions(x, w, h)
    assert got.shape == (h, n, out)
    xn, wn = x.numpy(), w.numpy()
    expected = np.zeros((h, n, out))
    for head in range(h):
        for t in range(n):
            for o in range(out):
                expected[head, t, o] = sum(
                    xn[t, head * d + k] * wn[o, head * d + k] for k in range(d)
                )
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(got.sum(0).numpy(), (x @ w.T).numpy(), atol=1e-12)


def test_head_contributions_upcast_half_precision() -> None:
    x = torch.randn(4, 8).to(torch.bfloat16)
    w = torch.randn(3, 8).to(torch.bfloat16)
    assert head_contributions(x, w, 2).dtype == torch.float32


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pearson_similarity_matches_naive(reduction: str) -> None:
    c = random_contrib(1)
    y = c.sum(0)
    z = y - c[2] - c[4]
    got = pearson_similarity(y.float(), z.float(), reduction)
    assert got == pytest.approx(naive_pearson(y.numpy(), z.numpy(), reduction), abs=1e-5)
    got64 = pearson_similarity(y, z, reduction)
    assert got64 == pytest.approx(naive_pearson(y.numpy(), z.numpy(), reduction), abs=1e-12)


def test_pearson_constant_dimension_contributes_zero() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.randn(30, 3, generator=g, dtype=torch.float64)
    z = y + 0.1 * torch.randn(30, 3, generator=g, dtype=torch.float64)
    y[:, 0] = 2.5
    z[:, 1] = 0.0
    expected = naive_pearson(y[:, 2:].numpy(), z[:, 2:].numpy(), "per_dim")
    assert pearson_similarity(y, z) == pytest.approx(expected, abs=1e-12)
    assert pearson_similarity(torch.ones(5, 2), torch.ones(5, 2), "whole") == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_removal_similarity_matches_direct_pearson(reduction: str) -> None:
    rng = np.random.default_rng(3)
    for seed in range(5):
        c = random_contrib(seed, heads=7)
        stats = head_statistics(c, reduction)
        for size in range(7):
            removed = sorted(rng.choice(7, size=size, replace=False).tolist())
            direct = pearson_similarity(c.sum(0), c.sum(0) - c[removed].sum(0), reduction)
            assert removal_similarity(stats, removed) == pytest.approx(direct, abs=1e-9)
            assert direct == pytest.approx(naive_removal(c, removed, reduction), abs=1e-9)


def test_removal_similarity_accepts_tensor_and_all_heads() -> None:
    c = random_contrib(4, heads=4)
    stats = head_statistics(c)
    assert removal_similarity(stats, torch.tensor([1, 3])) == removal_similarity(stats, [1, 3])
    assert removal_similarity(stats, [0, 1, 2, 3]) == 0.0
    assert removal_similarity(stats, []) == pytest.approx(c.shape[2])
    assert removal_similarity(stats, [np.int64(1), 3]) == removal_similarity(stats, [1, 3])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_constant_dimension_agrees_between_direct_and_incremental(reduction: str) -> None:
    c = random_contrib(11, heads=4)
    c[:, :, 0] = torch.tensor([1.5, -2.0, 0.25, 3.0], dtype=torch.float64)[:, None]
    y = c.sum(0)
    for removed in ([0], [1, 2], [0, 1, 2, 3]):
        direct = pearson_similarity(y, y - c[removed].sum(0), reduction)
        incremental = removal_similarity(head_statistics(c, reduction), removed)
        assert incremental == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_streaming_statistics_equal_one_shot(reduction: str) -> None:
    c = random_contrib(5, tokens=57) + 1e3
    acc = HeadStatsAccumulator()
    for chunk in torch.split(c, [1, 20, 30, 6], dim=1):
        acc.update(chunk)
    streamed = acc.finalize(reduction)
    assert acc.count == 57
    one_shot = head_statistics(c, reduction)
    assert streamed.count == one_shot.count == 57
    np.testing.assert_allclose(streamed.cov.numpy(), one_shot.cov.numpy(), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(streamed.mean.numpy(), one_shot.mean.numpy(), rtol=1e-12)


def test_whole_statistics_are_pooled_covariances() -> None:
    c = random_contrib(6, heads=3)
    stats = head_statistics(c, "whole")
    flat = c.reshape(3, -1).numpy()
    np.testing.assert_allclose(stats.cov[:, :, 0].numpy(), np.cov(flat, bias=True), atol=1e-12)
    np.testing.assert_allclose(stats.mean[:, 0].numpy(), flat.mean(axis=1), atol=1e-12)


def test_single_head_similarity_matches_removal() -> None:
    c = random_contrib(7)
    stats = head_statistics(c)
    sims = single_head_similarity(stats)
    for h in range(c.shape[0]):
        assert float(sims[h]) == pytest.approx(removal_similarity(stats, [h]), abs=1e-12)
    order = initial_head_selection(stats, 3)
    assert order == torch.argsort(sims, descending=True)[:3].tolist()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_greedy_matches_bruteforce_algorithm1(reduction: str) -> None:
    swapped = 0
    for seed in range(12):
        c = random_contrib(seed + 100, heads=6, tokens=30, dims=4)
        result = greedy_head_search(head_statistics(c, reduction), 3)
        pruned, swaps = naive_algorithm1(c, 3, reduction)
        assert result.pruned == pruned
        assert result.swaps == swaps
        swapped += swaps > 0
    assert swapped > 0, "the cases must exercise at least one swap"


def test_greedy_never_lowers_score_and_reports_consistently() -> None:
    for seed in range(30):
        c = random_contrib(seed + 200, heads=6, tokens=30, dims=4)
        stats = head_statistics(c)
        result = greedy_head_search(stats, 2 + seed % 3)
        assert result.score_final >= result.score_initial
        assert result.score_final == pytest.approx(
            removal_similarity(stats, result.pruned), abs=1e-9
        )
        assert sorted(result.pruned + result.kept) == list(range(6))
        initial = sorted(initial_head_selection(stats, len(result.pruned)))
        assert result.score_initial == pytest.approx(removal_similarity(stats, initial), abs=1e-9)


def test_search_false_is_the_initial_selection() -> None:
    stats = head_statistics(random_contrib(8))
    result = greedy_head_search(stats, 3, search=False)
    assert result.pruned == sorted(initial_head_selection(stats, 3))
    assert result.swaps == 0
    assert result.score_final == result.score_initial


def test_greedy_reaches_exhaustive_optimum_after_a_swap() -> None:
    # Found by enumeration: here the initial pair is not optimal and two swaps reach the optimum.
    c = random_contrib(10, heads=4, tokens=40, dims=5)
    stats = head_statistics(c)
    result = greedy_head_search(stats, 2)
    assert result.swaps == 2
    assert result.score_final > result.score_initial
    assert sorted(initial_head_selection(stats, 2)) != result.pruned
    assert result.pruned == sorted(exhaustive_best(c, 2, "per_dim"))


def test_greedy_equals_exhaustive_when_optimum_is_in_first_sweep() -> None:
    """With 4 heads and 2 pruned, the first sweep (for the first initial head a) evaluates every
    pair containing the second initial head b, so whenever the optimum contains b the search
    must return it. Pairs without b are reached only if the path leads there; such misses
    occur (about 1 case in 8 on this family) and are counted, not asserted away."""
    covered = equal = 0
    for seed in range(60):
        c = random_contrib(seed, heads=4, tokens=40, dims=5)
        stats = head_statistics(c)
        best = sorted(exhaustive_best(c, 2, "per_dim"))
        result = greedy_head_search(stats, 2)
        equal += result.pruned == best
        if initial_head_selection(stats, 2)[1] in best:
            covered += 1
            assert result.pruned == best, f"seed {seed}"
    assert covered >= 20
    assert equal >= covered


def test_single_prune_equals_exhaustive() -> None:
    for seed in range(10):
        c = random_contrib(seed + 300, heads=5)
        result = greedy_head_search(head_statistics(c), 1)
        assert result.pruned == exhaustive_best(c, 1, "per_dim")
        assert result.swaps == 0


def test_group_constrained_search() -> None:
    groups = kv_group_index(8, 2)
    assert groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    for seed in range(8):
        c = random_contrib(seed + 400, heads=8, tokens=30, dims=4)
        result = greedy_head_search(head_statistics(c), 4, groups=groups)
        assert [sum(int(groups[h]) == k for h in result.pruned) for k in (0, 1)] == [2, 2]
        pruned, swaps = naive_algorithm1(c, 4, "per_dim", groups.tolist())
        assert (result.pruned, result.swaps) == (pruned, swaps)


def test_group_contributions_sum_heads() -> None:
    c = random_contrib(9, heads=6)
    groups = torch.tensor([0, 2, 1, 0, 2, 1])
    summed = group_contributions(c, groups)
    assert summed.shape == (3, *c.shape[1:])
    for k in range(3):
        expected = sum(c[h] for h in range(6) if int(groups[h]) == k)
        np.testing.assert_allclose(summed[k].numpy(), expected.numpy(), atol=1e-12)
    unit = greedy_head_search(head_statistics(summed), 1)
    assert len(unit.pruned) == 1 and len(unit.kept) == 2


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_input_moments_give_the_contributions_statistics(reduction: str) -> None:
    """Statistics from o_proj's input moments equal those of the contributions themselves,
    streamed in uneven chunks and with a large offset on the inputs."""
    g = torch.Generator().manual_seed(11)
    heads, head_dim, dims, tokens = 3, 4, 5, 50
    mix = torch.randn(heads * head_dim, heads * head_dim, generator=g, dtype=torch.float64)
    x = torch.randn(tokens, heads * head_dim, generator=g, dtype=torch.float64) @ mix + 40.0
    w_o = torch.randn(dims, heads * head_dim, generator=g, dtype=torch.float64)
    direct = head_statistics(head_contributions(x, w_o, heads), reduction)
    acc = InputMomentsAccumulator()
    for chunk in x.split(17):
        acc.update(chunk)
    assert acc.count == tokens
    derived = acc.finalize(w_o, heads, reduction)
    assert (derived.reduction, derived.count) == (direct.reduction, direct.count)
    torch.testing.assert_close(derived.cov, direct.cov, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(derived.mean, direct.mean, rtol=1e-9, atol=1e-9)


def test_input_moments_of_float32_inputs_have_float32_accuracy() -> None:
    """float32 inputs are multiplied in float32 chunk by chunk and summed in float64: the head
    statistics keep float32's accuracy, and the head ranking of the float64 ones."""
    g = torch.Generator().manual_seed(12)
    heads, head_dim, dims, tokens = 6, 8, 16, 3000
    mix = torch.randn(heads * head_dim, heads * head_dim, generator=g, dtype=torch.float64)
    x = torch.randn(tokens, heads * head_dim, generator=g, dtype=torch.float64) @ mix + 40.0
    w_o = torch.randn(dims, heads * head_dim, generator=g, dtype=torch.float64)
    exact, fast = InputMomentsAccumulator(), InputMomentsAccumulator()
    for chunk in x.split(1024):
        exact.update(chunk)
        fast.update(chunk.float())
    want, got = exact.finalize(w_o, heads), fast.finalize(w_o, heads)
    scale = want.cov.abs().max()
    assert 0 < float((got.cov - want.cov).abs().max() / scale) < 1e-5
    sims = single_head_similarity(want)
    torch.testing.assert_close(single_head_similarity(got), sims, rtol=1e-5, atol=1e-5)
    assert torch.argsort(single_head_similarity(got)).tolist() == torch.argsort(sims).tolist()


def test_input_moments_reject_a_mismatched_projection() -> None:
    acc = InputMomentsAccumulator()
    with pytest.raises(ValueError, match="no tokens"):
        acc.finalize(torch.ones(2, 6), 3)
    acc.update(torch.randn(4, 6))
    with pytest.raises(ValueError, match="6 columns"):
        acc.update(torch.randn(4, 5))
    with pytest.raises(ValueError, match="w_o must be"):
        acc.finalize(torch.ones(2, 5), 3)
    with pytest.raises(ValueError, match="w_o must be"):
        acc.finalize(torch.ones(2, 6), 4)
    with pytest.raises(ValueError, match="finite"):
        acc.update(torch.full((2, 6), float("nan")))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_group_statistics_equal_those_of_summed_contributions(reduction: str) -> None:
    """Derived from the heads' statistics, a group's are those of its summed contributions."""
    c = random_contrib(10, heads=6)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    derived = group_statistics(head_statistics(c, reduction), groups)
    direct = head_statistics(group_contributions(c, groups), reduction)
    assert (derived.reduction, derived.count) == (direct.reduction, direct.count)
    torch.testing.assert_close(derived.cov, direct.cov, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(derived.mean, direct.mean, rtol=1e-10, atol=1e-10)
    a, b = greedy_head_search(derived, 1), greedy_head_search(direct, 1)
    assert (a.pruned, a.score_final) == (b.pruned, pytest.approx(b.score_final, abs=1e-10))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: head_contributions(torch.ones(4, 6), torch.ones(3, 6), 4), "num_heads=4"),
        (lambda: head_contributions(torch.ones(4, 6), torch.ones(3, 5), 2), "w_o must"),
        (lambda: head_contributions(torch.ones(2, 4, 6), torch.ones(3, 6), 2), "x must be 2-D"),
        (lambda: pearson_similarity(torch.ones(3, 2), torch.ones(3, 2), "mean"), "reduction"),
        (lambda: pearson_similarity(torch.ones(3, 2), torch.ones(3, 3)), "z must"),
        (lambda: HeadStatsAccumulator().finalize(), "no tokens"),
        (lambda: head_statistics(torch.ones(2, 0, 3)), "contrib must hold"),
        (lambda: head_statistics(torch.full((2, 3, 3), float("nan"))), "contrib must be finite"),
        (lambda: removal_similarity(head_statistics(random_contrib(0)), [6]), "removed"),
        (lambda: removal_similarity(head_statistics(random_contrib(0)), [1, 1]), "removed"),
        (lambda: removal_similarity(head_statistics(random_contrib(0)), [1.0]), "removed"),
        (lambda: removal_similarity(head_statistics(random_contrib(0)), [True]), "removed"),
        (lambda: greedy_head_search(head_statistics(random_contrib(0)), 6), "num_prune"),
        (
            lambda: greedy_head_search(head_statistics(random_contrib(0)), 3, kv_group_index(6, 2)),
            "num_prune=3 must be divisible",
        ),
        (
            lambda: greedy_head_search(
                head_statistics(random_contrib(0)), 2, torch.zeros(5).long()
            ),
            "groups must have shape",
        ),
        (
            lambda: group_contributions(random_contrib(0), torch.tensor([0, 0, 2, 2, 2, 2])),
            "groups",
        ),
        (lambda: kv_group_index(6, 4), "num_kv_heads"),
    ],
)
def test_bad_inputs_raise(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_accumulator_rejects_changed_shape() -> None:
    acc = HeadStatsAccumulator()
    acc.update(random_contrib(0, heads=3))
    with pytest.raises(ValueError, match="contrib must be"):
        acc.update(random_contrib(0, heads=4))
