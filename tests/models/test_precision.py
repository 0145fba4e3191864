"""The dtype rule: explicit choices pass through, `auto` on a CPU follows the measured speed-up."""

from __future__ import annotations

import pytest

from slimllm.models import precision


def test_explicit_dtype_is_kept() -> None:
    assert precision.resolve_dtype("float32") == ("float32", "asked for")


def test_unknown_dtype_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        precision.resolve_dtype("fp8")


@pytest.mark.parametrize(("speedup", "expected"), [(2.4, "bfloat16"), (1.1, "float32")])
def test_auto_on_cpu_follows_the_measured_speedup(
    monkeypatch: pytest.MonkeyPatch, speedup: float, expected: str
) -> None:
    monkeypatch.delenv(precision.SPEEDUP_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: speedup)
    dtype, reason = precision.resolve_dtype("auto", "cpu")
    assert dtype == expected
    assert f"{speedup:.2f}x" in reason


def test_probe_times_both_dtypes() -> None:
    small = (16, 8, 8)
    assert precision.matmul_seconds(precision.torch.float32, small) > 0
    assert precision.matmul_seconds(precision.torch.bfloat16, small) > 0


@pytest.mark.parametrize(("given", "expected"), [("4", "bfloat16"), ("0.25", "float32")])
def test_the_environment_can_pin_the_probe(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv(precision.SPEEDUP_ENV, given)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: pytest.fail("probe ran"))
    dtype, reason = precision.resolve_dtype("auto", "cpu")
    assert dtype == expected
    assert f"set by ${precision.SPEEDUP_ENV} to {float(given):.2f}x" in reason


@pytest.mark.parametrize("given", ["fast", "0", "-1", "nan", "inf"])
def test_a_bad_pinned_speedup_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv(precision.SPEEDUP_ENV, given)
    with pytest.raises(ValueError, match="SLIMLLM_CPU_BF16_SPEEDUP must be a positive number"):
        precision.resolve_dtype("auto", "cpu")
