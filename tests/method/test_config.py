"""PruneConfig.validate: every field's type and finiteness, and the ranges, in one line each."""

from __future__ import annotations

import pytest

from slimllm.method.config import MAX_ALPHA, PruneConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ratio", "0.2", "ratio must be a finite number, got '0.2'"),
        ("ratio", float("nan"), "ratio must be a finite number, got nan"),
        ("ratio", True, "ratio must be a finite number, got True"),
        ("alpha", float("inf"), "alpha must be a finite number or None, got inf"),
        ("alpha", 1e308, f"alpha must be in (0, {MAX_ALPHA:g}], got 1e+308"),
        ("alpha", 0.0, "alpha must be in (0,"),
        ("max_layer_ratio", float("-inf"), "max_layer_ratio must be a finite number"),
        ("keep_lowest_fraction", float("nan"), "keep_lowest_fraction must be a finite number"),
        ("calib_samples", 2.5, "calib_samples must be an integer, got 2.5"),
        ("calib_seq_len", "128", "calib_seq_len must be an integer, got '128'"),
        ("batch_size", True, "batch_size must be an integer, got True"),
        ("seed", None, "seed must be an integer, got None"),
        ("num_pruned_layers", 0, "num_pruned_layers must be >= 1, got 0"),
        ("num_pruned_layers", 2.0, "num_pruned_layers must be an integer or None, got 2.0"),
        ("greedy_search", "yes", "greedy_search must be True or False, got 'yes'"),
        ("uniform", 1, "uniform must be True or False, got 1"),
        ("head_reduction", 3, "head_reduction must be a string, got 3"),
        ("gqa_mode", "both", "gqa_mode must be one of"),
        ("round_channels_to", 0, "round_channels_to must be >= 1, got 0"),
    ],
)
def test_a_bad_field_is_one_line_naming_it(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        PruneConfig(**{field: value}).validate()  # type: ignore[arg-type]
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_good_values_pass() -> None:
    PruneConfig().validate()
    PruneConfig(ratio=0, alpha=MAX_ALPHA, num_pruned_layers=3, keep_lowest_fraction=0.5).validate()
