"""FFN channel importance (slimllm.method.channels) against slow, direct formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slimllm.method.channels import (
    CovarianceAccumulator,
    FeatureNormAccumulator,
    channel_group_importance,
    down_proj_column_norms,
    eigen_weights,
    feature_space_basis,
    feature_space_importance,
    output_covariance,
    project_down_proj,
    select_channels,
)
from tests.helpers import randn


def test_output_covariance_matches_loop() -> None:
    y = randn(0, 12, 4) + 5.0
    got = output_covariance(y.float())
    yn = y.float().double().numpy()
    mu = yn.mean(axis=0)
    for i in range(4):
        for j in range(4):
            expected = sum((yn[n, i] - mu[i]) * (yn[n, j] - mu[j]) for n in range(12))
            assert float(got[i, j]) == pytest.approx(expected, abs=1e-9)
    assert got.dtype == torch.float64


def test_covariance_accumulator_equals_one_shot() -> None:
    y = randn(1, 50, 6) * 3.0 + 1e4
    acc = CovarianceAccumulator()
    for chunk in torch.split(y, [7, 1, 30, 12]):
        acc.update(chunk)
    assert acc.count == 50
    np.testing.assert_allclose(acc.finalize().numpy(), output_covariance(y).numpy(), atol=1e-8)


def test_covariance_accumulator_of_float32_chunks_has_float32_accuracy() -> None:
    """float32 and bfloat16 outputs are multiplied in float32 chunk by chunk (the speed of the
    bfloat16 calibration), summed in float64: float32 rounding, not more, despite an offset."""
    y = (randn(2, 3000, 24) @ randn(3, 24, 24) + 300.0).float()
    exact = output_covariance(y.double())
    for chunks in ([1024, 1024, 952], [3000]):
        acc = CovarianceAccumulator()
        for chunk in torch.split(y, chunks):
            acc.update(chunk)
        got = acc.finalize()
        assert got.dtype == torch.float64
        scale = exact.diagonal().max()
        assert float((got - exact).abs().max() / scale) < 1e-5
        assert float((got - exact).abs().max() / scale) > 0  # the products were not float64


def test_feature_space_basis_reconstructs_covariance() -> None:
    cov = output_covariance(randn(2, 40, 5) @ randn(3, 5, 5))
    m, q = feature_space_basis(cov)
    assert m.shape == (5,) and q.shape == (5, 5)
    assert bool((m[:-1] >= m[1:]).all()) and bool((m >= 0).all())
    np.testing.assert_allclose((q @ torch.diag(m) @ q.T).numpy(), cov.numpy(), atol=1e-9)
    np.testing.assert_allclose((q.T @ q).numpy(), np.eye(5), atol=1e-12)
    np.testing.assert_allclose(m.numpy(), np.sort(np.linalg.eigvalsh(cov.numpy()))[::-1])


def test_feature_space_basis_clips_rank_deficient_noise() -> None:
    direction = randn(4, 1, 3)
    m, _ = feature_space_basis(direction.T @ direction)
    assert float(m[0]) > 0 and float(m[1:].abs().max()) < 1e-12 and bool((m >= 0).all())


def test_eigen_weights_match_formula() -> None:
    m = torch.tensor([4.0, 1.0, 0.5, 0.0])
    mean = sum(m.tolist()) / 4
    expected = [1.0 / (1.0 + math.exp(-v / mean)) for v in m.tolist()]
    np.testing.assert_allclose(eigen_weights(m).numpy(), expected, rtol=1e-12)
    assert eigen_weights(torch.zeros(3)).tolist() == [0.5, 0.5, 0.5]


def test_projection_and_feature_importance_match_loops() -> None:
    d, f = 4, 6
    w_down = randn(5, d, f)
    q = randn(6, d, d)
    c = torch.rand(d, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    projected = project_down_proj(w_down.float(), q)
    importance = feature_space_importance(projected, c)
    wn, qn, cn = w_down.float().double().numpy(), q.numpy(), c.numpy()
    for j in range(f):
        row = [sum(wn[k, j] * qn[k, i] for k in range(d)) for i in range(d)]
        np.testing.assert_allclose(projected[j].numpy(), row, atol=1e-12)
        expected = math.sqrt(sum((row[i] * cn[i]) ** 2 for i in range(d)))
        assert float(importance[j]) == pytest.approx(expected, rel=1e-12)


def test_column_norms_equal_unweighted_feature_importance() -> None:
    w_down = randn(8, 5, 7)
    _, q = feature_space_basis(output_covariance(randn(9, 30, 5)))
    unweighted = feature_space_importance(project_down_proj(w_down, q), torch.ones(5))
    np.testing.assert_allclose(down_proj_column_norms(w_down).numpy(), unweighted.numpy())
    expected = [math.sqrt(sum(float(w_down[i, j]) ** 2 for i in range(5))) for j in range(7)]
    np.testing.assert_allclose(down_proj_column_norms(w_down).numpy(), expected, rtol=1e-12)


def test_channel_group_importance_matches_loop() -> None:
    f, d = 5, 3
    feat = randn(10, f).abs()
    xd = randn(11, f).abs()
    wg = randn(12, f, d)
    wu = randn(13, f, d)
    xi = randn(14, d).abs()
    got = channel_group_importance(feat, xd, wg.float(), wu, xi)
    wgn = wg.float().double()
    for j in range(f):
        gate = math.sqrt(sum((float(xi[k]) * float(wgn[j, k])) ** 2 for k in range(d)))
        up = math.sqrt(sum((float(xi[k]) * float(wu[j, k])) ** 2 for k in range(d)))
        expected = float(xd[j]) * float(feat[j]) + gate + up
        assert float(got[j]) == pytest.approx(expected, rel=1e-12)


def test_feature_norm_accumulator() -> None:
    x = randn(15, 20, 4)
    acc = FeatureNormAccumulator()
    for chunk in torch.split(x, [3, 17]):
        acc.update(chunk.float())
    expected = [math.sqrt(sum(float(v) ** 2 for v in x.float()[:, j])) for j in range(4)]
    np.testing.assert_allclose(acc.finalize().numpy(), expected, rtol=1e-12)


def naive_select(scores: list[float], num_keep: int, fraction: float) -> list[int]:
    ranked = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    protected = min(round(fraction * len(scores)), num_keep)
    kept = ranked[: num_keep - protected] + ranked[len(scores) - protected :]
    return sorted(kept)


def test_select_channels_keeps_the_highest() -> None:
    scores = randn(16, 50)
    kept = select_channels(scores, 20)
    assert kept.dtype == torch.long and kept.tolist() == sorted(kept.tolist())
    assert kept.tolist() == sorted(torch.topk(scores, 20).indices.tolist())
    assert kept.tolist() == naive_select(scores.tolist(), 20, 0.0)
    assert select_channels(scores, 50).tolist() == list(range(50))
    assert select_channels(scores, 0).tolist() == []


def test_select_channels_ties_keep_lower_index() -> None:
    scores = torch.tensor([1.0, 2.0, 1.0, 1.0, 0.5])
    assert select_channels(scores, 3).tolist() == [0, 1, 2]


def test_select_channels_protects_lowest_fraction() -> None:
    scores = randn(17, 200)
    kept = select_channels(scores, 120, keep_lowest_fraction=0.01)
    assert len(kept) == 120
    lowest_two = torch.argsort(scores)[:2].tolist()
    assert set(lowest_two) <= set(kept.tolist())
    assert kept.tolist() == naive_select(scores.tolist(), 120, 0.01)
    assert select_channels(scores, 1, keep_lowest_fraction=0.01).tolist() == lowest_two[:1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: output_covariance(torch.ones(3)), "y must be 2-D"),
        (lambda: output_covariance(torch.ones(0, 3)), "at least one token"),
        (lambda: CovarianceAccumulator().finalize(), "no tokens"),
        (lambda: feature_space_basis(torch.ones(2, 3)), "cov must be square"),
        (lambda: feature_space_basis(torch.full((2, 2), float("inf"))), "cov must be finite"),
        (lambda: eigen_weights(torch.ones(0)), "eigenvalues must not be empty"),
        (lambda: project_down_proj(torch.ones(3, 5), torch.eye(4)), "q must be"),
        (lambda: feature_space_importance(torch.ones(5, 3), torch.ones(4)), "weights must"),
        (
            lambda: channel_group_importance(
                torch.ones(4), torch.ones(4), torch.ones(4, 3), torch.ones(4, 2), torch.ones(3)
            ),
            "w_up must be",
        ),
        (
            lambda: channel_group_importance(
                torch.ones(4), torch.ones(4), torch.ones(4, 3), torch.ones(4, 3), torch.ones(3, 1)
            ),
            "x_in_norm must be 1-D",
        ),
        (lambda: select_channels(torch.ones(4), 5), "num_keep"),
        (lambda: select_channels(torch.ones(4), 2, keep_lowest_fraction=1.0), "keep_lowest"),
        (lambda: select_channels(torch.tensor([1.0, float("nan")]), 1), "importance"),
        (lambda: select_channels(torch.ones(4, dtype=torch.long), 1), "importance"),
    ],
)
def test_bad_inputs_raise(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_weight_magnitude_importance_matches_loop() -> None:
    from slimllm.method.channels import weight_magnitude_importance

    gate, up, down = randn(40, 6, 4), randn(41, 6, 4), randn(42, 4, 6)
    got = weight_magnitude_importance(gate.float(), up, down)
    for j in range(6):
        expected = (
            math.sqrt(sum(float(gate.float()[j, i]) ** 2 for i in range(4)))
            + math.sqrt(sum(float(up[j, i]) ** 2 for i in range(4)))
            + math.sqrt(sum(float(down[i, j]) ** 2 for i in range(4)))
        )
        assert float(got[j]) == pytest.approx(expected, rel=1e-12)
    assert got.shape == (6,) and got.dtype == torch.float64
    with pytest.raises(ValueError, match="to match w_gate"):
        weight_magnitude_importance(gate, up, down.T)
