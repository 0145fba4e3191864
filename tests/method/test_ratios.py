"""Layer ratios (slimllm.method.ratios) against slow, direct formulas."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from slimllm.method.ratios import (
    CosineAccumulator,
    layer_cosine_similarity,
    layer_ratios,
    solve_base_ratio,
)
from tests.helpers import randn


def test_layer_cosine_similarity_matches_loop() -> None:
    x_in = randn(0, 9, 4)
    x_out = x_in + 0.5 * randn(1, 9, 4)
    cosines = []
    for t in range(9):
        a, b = x_in[t].tolist(), x_out[t].tolist()
        dot = sum(p * q for p, q in zip(a, b, strict=True))
        cosines.append(dot / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b)))
    assert layer_cosine_similarity(x_in.float(), x_out.float()) == pytest.approx(
        sum(cosines) / 9, abs=1e-6
    )
    assert layer_cosine_similarity(x_in, x_out) == pytest.approx(sum(cosines) / 9, abs=1e-12)


def test_zero_rows_count_as_zero_cosine() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert layer_cosine_similarity(x, x) == pytest.approx(0.5)


def test_cosine_accumulator_equals_one_shot() -> None:
    x_in, x_out = randn(2, 30, 5), randn(3, 30, 5)
    acc = CosineAccumulator()
    for a, b in zip(torch.split(x_in, [4, 26]), torch.split(x_out, [4, 26]), strict=True):
        acc.update(a, b)
    assert acc.count == 30
    assert acc.finalize() == pytest.approx(layer_cosine_similarity(x_in, x_out), abs=1e-14)


def direct_ratios(scores: list[float], base: float, alpha: float, chosen: list[int]) -> list[float]:
    denom = sum(math.exp(alpha * scores[i]) for i in chosen)
    out = [0.0] * len(scores)
    for i in chosen:
        out[i] = base * len(chosen) * math.exp(alpha * scores[i]) / denom
    return out


def test_layer_ratios_match_direct_softmax() -> None:
    sims = torch.tensor([0.70, 0.90, 0.93, 0.95, 0.97, 0.80], dtype=torch.float64)
    got = layer_ratios(sims, base=0.25, alpha=10.0)
    expected = direct_ratios(sims.tolist(), 0.25, 10.0, list(range(6)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert float(got.sum()) == pytest.approx(0.25 * 6)


def test_layer_ratios_top_k_and_skip() -> None:
    sims = torch.tensor([0.99, 0.90, 0.93, 0.95, 0.97, 0.80])
    got = layer_ratios(sims, base=0.4, alpha=7.0, num_pruned_layers=3, skip=(0,))
    chosen = [4, 3, 2]
    expected = direct_ratios(sims.double().tolist(), 0.4, 7.0, chosen)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert [i for i, r in enumerate(got.tolist()) if r > 0] == sorted(chosen)
    assert float(got.sum()) == pytest.approx(0.4 * 3)


def test_layer_ratios_ties_choose_lower_index() -> None:
    got = layer_ratios(torch.tensor([0.5, 0.9, 0.5, 0.5]), 0.2, 5.0, num_pruned_layers=2)
    assert got[3].item() == 0.0 and got[2].item() == 0.0 and got[0].item() > 0


def test_unclamped_ratio_can_exceed_one_and_clamp_caps_it() -> None:
    sims = torch.linspace(0.5, 0.99, 32, dtype=torch.float64)
    free = layer_ratios(sims, base=0.55, alpha=7.0, num_pruned_layers=30, skip=(0, 31))
    assert float(free.max()) > 1.0
    capped = layer_ratios(sims, 0.55, 7.0, num_pruned_layers=30, skip=(0, 31), max_ratio=0.9)
    assert float(capped.max()) == 0.9
    np.testing.assert_allclose(capped.numpy(), free.clamp(max=0.9).numpy())


def make_achieved_fn(units: list[int], sizes: list[float]) -> Callable[[torch.Tensor], float]:
    """Fraction of parameters removed when layer i drops round(r_i * units_i) of its units."""
    total = sum(u * s for u, s in zip(units, sizes, strict=True))

    def achieved(ratios: torch.Tensor) -> float:
        removed = 0.0
        for r, u, s in zip(ratios.tolist(), units, sizes, strict=True):
            removed += min(round(r * u), u) * s
        return removed / total

    return achieved


SIMS = torch.tensor([0.6, 0.85, 0.88, 0.9, 0.91, 0.93, 0.95, 0.97, 0.98, 0.7], dtype=torch.float64)
ACHIEVED = make_achieved_fn([64 + 8 * i for i in range(10)], [1.0 + 0.1 * i for i in range(10)])


@pytest.mark.parametrize(("target", "max_ratio"), [(0.2, None), (0.5, None), (0.5, 0.8)])
def test_solver_hits_target(target: float, max_ratio: float | None) -> None:
    sol = solve_base_ratio(
        SIMS, target, 8.0, ACHIEVED, num_pruned_layers=8, skip=(0, 9), max_ratio=max_ratio
    )
    assert abs(sol.achieved - target) <= 0.005
    assert sol.achieved == ACHIEVED(sol.ratios)
    np.testing.assert_allclose(
        sol.ratios.numpy(),
        layer_ratios(SIMS, sol.base, 8.0, 8, (0, 9), max_ratio).numpy(),
    )
    assert sol.target == target


def test_solver_target_zero_gives_zero_ratios() -> None:
    sol = solve_base_ratio(SIMS, 0.0, 8.0, ACHIEVED)
    assert sol.base == 0.0 and sol.achieved == 0.0 and not bool(sol.ratios.any())


def test_solver_unreachable_target_raises() -> None:
    with pytest.raises(ValueError, match=r"unreachable: the maximum achievable ratio is 0\.3"):
        solve_base_ratio(SIMS, 0.5, 8.0, ACHIEVED, max_ratio=0.3)


def test_solver_reports_rounding_gap() -> None:
    coarse = make_achieved_fn([1, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"jumps from 0\.0000 to 0\.5000"):
        solve_base_ratio(torch.tensor([0.9, 0.8]), 0.25, 5.0, coarse)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: layer_ratios(SIMS, 0.2, 0.0), "alpha must be > 0"),
        (lambda: layer_ratios(SIMS, 0.2, -1.0), "alpha must be > 0"),
        (lambda: solve_base_ratio(SIMS, 0.2, -3.0, ACHIEVED), "alpha must be > 0"),
        (lambda: layer_ratios(SIMS, 0.2, 5.0, num_pruned_layers=0), "num_pruned_layers"),
        (lambda: layer_ratios(SIMS, 0.2, 5.0, num_pruned_layers=9, skip=(0, 1)), "num_pruned"),
        (lambda: layer_ratios(SIMS, 0.2, 5.0, skip=(10,)), "skip"),
        (lambda: layer_ratios(torch.tensor([0.5, float("nan")]), 0.2, 5.0), "similarity"),
        (lambda: layer_ratios(SIMS, -0.1, 5.0), "base"),
        (lambda: layer_ratios(SIMS, 0.2, 5.0, max_ratio=1.5), "max_ratio"),
        (lambda: solve_base_ratio(SIMS, 1.0, 5.0, ACHIEVED), "target"),
        (lambda: solve_base_ratio(SIMS, -0.1, 5.0, ACHIEVED), "target"),
        (lambda: solve_base_ratio(SIMS, 0.2, 5.0, ACHIEVED, tol=0.0), "tol"),
        (lambda: layer_cosine_similarity(torch.ones(3, 2), torch.ones(3, 4)), "x_out must"),
        (lambda: CosineAccumulator().finalize(), "no tokens"),
    ],
)
def test_bad_inputs_raise(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
