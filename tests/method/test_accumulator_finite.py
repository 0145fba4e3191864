"""The streaming accumulators reject a NaN or inf anywhere in a chunk, first or later.

They check each chunk's column sums instead of scanning the chunk, so these tests pin down
that the cheaper check still catches a single bad value.
"""

from collections.abc import Callable

import pytest
import torch

from slimllm.method.channels import CovarianceAccumulator, FeatureNormAccumulator
from slimllm.method.heads import HeadStatsAccumulator
from slimllm.method.regression import RegressionAccumulator


def _feed_cov(chunks: list[torch.Tensor]) -> None:
    acc = CovarianceAccumulator()
    for c in chunks:
        acc.update(c)


def _feed_norm(chunks: list[torch.Tensor]) -> None:
    acc = FeatureNormAccumulator()
    for c in chunks:
        acc.update(c)


def _feed_heads(chunks: list[torch.Tensor]) -> None:
    acc = HeadStatsAccumulator()
    for c in chunks:
        acc.update(c.reshape(2, c.shape[0], 3))


def _feed_regression_pruned(chunks: list[torch.Tensor]) -> None:
    acc = RegressionAccumulator()
    for c in chunks:
        acc.update(c, torch.ones_like(c))


def _feed_regression_full(chunks: list[torch.Tensor]) -> None:
    acc = RegressionAccumulator()
    for c in chunks:
        acc.update(torch.ones_like(c), c)


FEEDERS: dict[str, tuple[Callable[[list[torch.Tensor]], None], str]] = {
    "covariance": (_feed_cov, "y must be finite"),
    "feature norm": (_feed_norm, "x must be finite"),
    "head stats": (_feed_heads, "contrib must be finite"),
    "regression pruned": (_feed_regression_pruned, "pruned_chunk must be finite"),
    "regression full": (_feed_regression_full, "full_chunk must be finite"),
}


@pytest.mark.parametrize("name", sorted(FEEDERS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", [0, 1])
def test_one_bad_value_in_any_chunk_raises(name: str, bad: float, where: int) -> None:
    feed, message = FEEDERS[name]
    gen = torch.Generator().manual_seed(0)
    chunks = [torch.randn(5, 6, generator=gen, dtype=torch.float64) for _ in range(2)]
    chunks[where][3, 4] = bad
    with pytest.raises(ValueError, match=message):
        feed(chunks)


@pytest.mark.parametrize("name", sorted(FEEDERS))
def test_finite_chunks_pass(name: str) -> None:
    feed, _ = FEEDERS[name]
    gen = torch.Generator().manual_seed(0)
    feed([torch.randn(5, 6, generator=gen, dtype=torch.float64) for _ in range(2)])
