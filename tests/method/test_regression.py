"""Linear output recovery (slimllm.method.regression) against slow, direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimllm.method.regression import (
    RegressionAccumulator,
    fit_output_regression,
    fold_regression,
    relative_output_error,
)
from tests.helpers import randn


def streamed(x: torch.Tensor, y: torch.Tensor, chunks: list[int]) -> RegressionAccumulator:
    """An accumulator fed (x, y) in chunks of the given numbers of tokens."""
    acc = RegressionAccumulator()
    for xc, yc in zip(torch.split(x, chunks), torch.split(y, chunks), strict=True):
        acc.update(xc, yc)
    return acc


def test_exact_recovery_of_a_line() -> None:
    x = randn(0, 64, 5) * 2.0 + 3.0
    a_true = randn(1, 5)
    b_true = randn(2, 5)
    a, b = fit_output_regression(x, a_true * x + b_true)
    np.testing.assert_allclose(a.numpy(), a_true.numpy(), atol=1e-10)
    np.testing.assert_allclose(b.numpy(), b_true.numpy(), atol=1e-10)
    assert a.dtype == b.dtype == torch.float64


def test_noisy_fit_matches_polyfit() -> None:
    x = randn(3, 2000, 4)
    y = 1.1 * x - 0.2 + 0.01 * randn(4, 2000, 4)
    a, b = fit_output_regression(x.float(), y.float())
    np.testing.assert_allclose(a.numpy(), 1.1, atol=0.01)
    np.testing.assert_allclose(b.numpy(), -0.2, atol=0.01)
    xn, yn = x.float().double().numpy(), y.float().double().numpy()
    for d in range(4):
        slope, intercept = np.polyfit(xn[:, d], yn[:, d], 1)
        assert float(a[d]) == pytest.approx(slope, abs=1e-9)
        assert float(b[d]) == pytest.approx(intercept, abs=1e-9)


def test_streaming_equals_one_shot() -> None:
    x = randn(5, 90, 6) + 1e4
    y = 0.9 * x + randn(6, 90, 6) + 5.0
    acc = streamed(x, y, [1, 40, 49])
    assert acc.count == 90
    a_stream, b_stream = acc.solve()
    a_full, b_full = fit_output_regression(x, y)
    np.testing.assert_allclose(a_stream.numpy(), a_full.numpy(), rtol=1e-8)
    np.testing.assert_allclose(b_stream.numpy(), b_full.numpy(), rtol=1e-8)


def test_streaming_float32_chunks_match_the_float64_fit() -> None:
    """Chunks below float64 take their products in float32 and sum them in float64: the fit
    stays that of the float64 formula on the same values, offsets included."""
    x = (randn(11, 3000, 6) * 0.5 + 40.0).float()
    y = (1.3 * x.double() - 2.0 + 0.1 * randn(12, 3000, 6)).float()
    acc = streamed(x, y, [1024, 1024, 952])
    a, b = acc.solve()
    a_ref, b_ref = fit_output_regression(x.double(), y.double())
    np.testing.assert_allclose(a.numpy(), a_ref.numpy(), rtol=1e-5)
    np.testing.assert_allclose(b.numpy(), b_ref.numpy(), rtol=1e-5)
    assert acc.relative_error(a, b) == pytest.approx(
        float(((a_ref * x.double() + b_ref - y.double()) ** 2).sum() / (y.double() ** 2).sum()),
        rel=1e-4,
    )


def test_constant_pruned_dimension_is_left_unscaled() -> None:
    x = randn(7, 30, 3)
    y = randn(8, 30, 3)
    x[:, 0] = 0.0
    x[:, 1] = 4.0
    a, b = fit_output_regression(x, y)
    assert a[:2].tolist() == [1.0, 1.0]
    assert float(b[0]) == pytest.approx(float(y[:, 0].mean()), abs=1e-12)
    assert float(b[1]) == pytest.approx(float(y[:, 1].mean()) - 4.0, abs=1e-12)
    acc = RegressionAccumulator()
    acc.update(x[:10], y[:10])
    acc.update(x[10:], y[10:])
    a_stream, b_stream = acc.solve()
    assert a_stream[:2].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(b_stream.numpy(), b.numpy(), atol=1e-12)


@pytest.mark.parametrize("with_bias", [False, True])
def test_fold_equals_applying_the_fit(with_bias: bool) -> None:
    weight = randn(9, 4, 6)
    bias = randn(10, 4) if with_bias else None
    a = randn(11, 4)
    b = randn(12, 4)
    x = randn(13, 7, 6)
    new_w, new_b = fold_regression(weight, bias, a, b)
    folded = torch.nn.functional.linear(x, new_w, new_b)
    original = torch.nn.functional.linear(x, weight, bias)
    np.testing.assert_allclose(folded.numpy(), (a * original + b).numpy(), atol=1e-12)


def test_fold_keeps_weight_dtype() -> None:
    weight = randn(14, 3, 2).to(torch.bfloat16)
    new_w, new_b = fold_regression(weight, None, torch.ones(3), torch.zeros(3, dtype=torch.float64))
    assert new_w.dtype == new_b.dtype == torch.bfloat16
    assert torch.equal(new_w, weight)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_output_regression(torch.ones(3, 2), torch.ones(3, 3)), "full must have"),
        (lambda: fit_output_regression(torch.ones(3), torch.ones(3)), "pruned must be"),
        (lambda: fit_output_regression(torch.ones(0, 2), torch.ones(0, 2)), "at least one"),
        (lambda: fit_output_regression(torch.ones(2, 2), torch.full((2, 2), np.nan)), "full"),
        (lambda: RegressionAccumulator().solve(), "no tokens"),
        (lambda: fold_regression(torch.ones(3), None, torch.ones(3), torch.ones(3)), "weight"),
        (lambda: fold_regression(torch.ones(3, 2), None, torch.ones(2), torch.ones(3)), "a must"),
        (
            lambda: fold_regression(torch.ones(3, 2), torch.ones(2), torch.ones(3), torch.ones(3)),
            "bias must",
        ),
    ],
)
def test_bad_inputs_raise(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_accumulator_rejects_changed_width() -> None:
    acc = RegressionAccumulator()
    acc.update(torch.ones(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="pruned_chunk must have 3 columns"):
        acc.update(torch.ones(2, 4), torch.ones(2, 4))


def test_relative_error_before_and_after_the_fit() -> None:
    x = randn(20, 200, 5) + 2.0
    y = 1.3 * x - 0.4 + 0.1 * randn(21, 200, 5)
    a, b = fit_output_regression(x, y)
    before = relative_output_error(x, y)
    after = relative_output_error(x, y, a, b)
    slow_before = sum(float((y[i] - x[i]).pow(2).sum()) for i in range(200)) / float(y.pow(2).sum())
    assert before == pytest.approx(slow_before, rel=1e-12)
    assert after < before
    # Least squares per dimension: no other line does better on these tokens.
    assert after <= relative_output_error(x, y, a * 1.01, b) + 1e-15
    assert after <= relative_output_error(x, y, a, b + 0.01) + 1e-15
    assert relative_output_error(y, y) == 0.0


def test_streamed_relative_error_equals_one_shot() -> None:
    x = randn(22, 90, 6) + 1e3
    y = 0.9 * x + randn(23, 90, 6) + 5.0
    acc = streamed(x, y, [7, 40, 43])
    a, b = acc.solve()
    assert acc.relative_error() == pytest.approx(relative_output_error(x, y), rel=1e-8)
    assert acc.relative_error(a, b) == pytest.approx(relative_output_error(x, y, a, b), rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        acc.relative_error(a[:3], b)
    with pytest.raises(ValueError, match="call update"):
        RegressionAccumulator().relative_error()
