"""Rank agreement (slimllm.analysis.rankings) against slow, direct formulas."""

from __future__ import annotations

import math

import pytest
import torch

from slimllm.analysis.rankings import average_ranks, spearman, top_k, top_k_overlap


def slow_average_ranks(values: list[float]) -> list[float]:
    """Rank by counting: 1 + (number smaller) + (number of ties - 1) / 2."""
    return [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def slow_pearson(a: list[float], b: list[float]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5


def test_average_ranks_with_ties() -> None:
    x = torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0, -1.0], dtype=torch.float64)
    assert average_ranks(x).tolist() == slow_average_ranks(x.tolist())
    assert average_ranks(x).tolist() == [5.0, 2.0, 5.0, 3.0, 5.0, 1.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_pearson_of_ranks(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 6, (40,), generator=gen).double()  # many ties
    b = a + torch.randn(40, generator=gen, dtype=torch.float64)
    expected = slow_pearson(slow_average_ranks(a.tolist()), slow_average_ranks(b.tolist()))
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_of_a_constant_is_nan_and_bad_input_fails() -> None:
    assert math.isnan(spearman(torch.ones(5), torch.arange(5.0)))
    with pytest.raises(ValueError, match="shape of a"):
        spearman(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="at least two"):
        spearman(torch.ones(1), torch.ones(1))
    with pytest.raises(ValueError, match="1-D floating"):
        spearman(torch.arange(3), torch.arange(3))


def test_top_k_and_overlap_against_brute_force() -> None:
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(12, generator=gen)
    b = torch.randn(12, generator=gen)
    for k in range(1, 13):
        best_a = sorted(sorted(range(12), key=lambda i: -float(a[i]))[:k])
        best_b = sorted(sorted(range(12), key=lambda i: -float(b[i]))[:k])
        assert top_k(a, k).tolist() == best_a
        assert top_k_overlap(a, b, k) == len(set(best_a) & set(best_b)) / k
    assert top_k_overlap(a, b, 12) == 1.0


def test_top_k_ties_keep_the_lower_index() -> None:
    scores = torch.tensor([1.0, 2.0, 2.0, 2.0, 0.0])
    assert top_k(scores, 2).tolist() == [1, 2]
    for k in (-1, 6, 1.5):
        with pytest.raises(ValueError, match="k must be an int"):
            top_k(scores, k)  # type: ignore[arg-type]
