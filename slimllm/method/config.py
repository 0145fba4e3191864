"""PruneConfig: every option of a pruning run, with its default in view and its checks."""

from __future__ import annotations

import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields

from slimllm.data.sources import CALIBRATION_SETS
from slimllm.method import heads
from slimllm.method.plan import (
    GQA_MODES,
)

#: Largest Eq. 11 temperature. The softmax is over alpha times cosine similarities in [-1, 1],
#: so alpha beyond a few hundred gives the least similar layer a float64 share of 0; the paper
#: uses 7 and 10.
MAX_ALPHA = 100.0


#: What a field of each annotated type accepts (bool is no integer here, nor NaN a number), and
#: how an error names it.
_KINDS: dict[type, tuple[Callable[[object], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "True or False"),
    int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    float: (
        lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v),
        "a finite number",
    ),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _check_type(name: str, value: object, hint: object) -> None:
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return
    kind = next(t for t in allowed if t is not type(None))
    accepts, expected = _KINDS[kind]
    if not accepts(value):
        alternative = " or None" if type(None) in allowed else ""
        raise ValueError(f"{name} must be {expected}{alternative}, got {value!r}")


CALIB_DTYPES = (None, "auto", "float32", "bfloat16", "float16")


@dataclass
class PruneConfig:
    """Every knob of the method, with the paper's defaults where it has them."""

    ratio: float = 0.2
    #: "model": fraction of all parameters (the paper's 6.7B -> 5.4B); "decoder": of the layers'.
    ratio_of: str = "model"
    #: Eq. 11 temperature; None: 10 below a 35 % target, else 7 (the paper's 20 % / 50 % values).
    alpha: float | None = None
    #: Layers pruned (the most similar K); None: 26/32 of the layers below 35 %, else 30/32.
    num_pruned_layers: int | None = None
    #: Upper bound on any one layer's ratio (the authors' code has none; > 1 is then possible).
    max_layer_ratio: float = 0.9
    calib_samples: int = 32
    calib_seq_len: int = 128
    #: A name of data.CALIBRATION_SETS; "bookcorpus" is the paper's (and every method's default).
    calib_dataset: str = "bookcorpus"
    seed: int = 42
    head_reduction: str = "per_dim"
    #: GQA: per layer, query heads from every group or whole KV groups. "score" keeps the option
    #: with the better Eq. 4 similarity; on SmolLM2 (benchmarks/gqa_modes.py, 512 WikiText-2
    #: windows) it beat "heads", "groups" and the parameter-count rule "auto" at 20 % and 50 %.
    gqa_mode: str = "score"
    greedy_search: bool = True
    feature_space: bool = True
    regression: bool = True
    uniform: bool = False
    keep_lowest_fraction: float = 0.0
    batch_size: int = 8
    #: Kept MLP channels of a pruned layer rounded to a multiple of this (1: no rounding).
    round_channels_to: int = 1
    #: dtype of the calibration forwards ("float32", "bfloat16", "float16"); None: the model's;
    #: "auto": the faster on the device by models.precision's probe (bfloat16 where it is at
    #: least 1.2x float32's speed), and the report's config names the dtype it chose.
    #: Statistics are accumulated in float32/float64 and the weights keep their dtype either way.
    calib_dtype: str | None = None

    def validate(self) -> None:
        hints = typing.get_type_hints(PruneConfig)
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        if not 0 <= self.ratio < 1:
            raise ValueError(f"ratio must be in [0, 1), got {self.ratio}")
        if self.ratio_of not in ("model", "decoder"):
            raise ValueError(f"ratio_of must be 'model' or 'decoder', got {self.ratio_of!r}")
        if self.alpha is not None and not 0 < self.alpha <= MAX_ALPHA:
            raise ValueError(f"alpha must be in (0, {MAX_ALPHA:g}], got {self.alpha}")
        if self.num_pruned_layers is not None and self.num_pruned_layers < 1:
            raise ValueError(f"num_pruned_layers must be >= 1, got {self.num_pruned_layers}")
        if not 0 < self.max_layer_ratio <= 1:
            raise ValueError(f"max_layer_ratio must be in (0, 1], got {self.max_layer_ratio}")
        if self.gqa_mode not in GQA_MODES:
            raise ValueError(f"gqa_mode must be one of {GQA_MODES}, got {self.gqa_mode!r}")
        if self.calib_dataset not in CALIBRATION_SETS:
            raise ValueError(
                f"calib_dataset must be one of {', '.join(CALIBRATION_SETS)}, "
                f"got {self.calib_dataset!r}"
            )
        if self.head_reduction not in heads.REDUCTIONS:
            raise ValueError(
                f"head_reduction must be one of {heads.REDUCTIONS}, got {self.head_reduction!r}"
            )
        if self.calib_dtype not in CALIB_DTYPES:
            raise ValueError(f"calib_dtype must be one of {CALIB_DTYPES}, got {self.calib_dtype!r}")
        for name in ("calib_samples", "calib_seq_len", "batch_size", "round_channels_to"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.keep_lowest_fraction < 1:
            raise ValueError(
                f"keep_lowest_fraction must be in [0, 1), got {self.keep_lowest_fraction}"
            )

    def resolved_alpha(self) -> float:
        return self.alpha if self.alpha is not None else (10.0 if self.ratio < 0.35 else 7.0)

    def resolved_layers(self, num_layers: int) -> int:
        if self.num_pruned_layers is not None:
            if not 1 <= self.num_pruned_layers <= num_layers:
                raise ValueError(
                    f"num_pruned_layers must be in [1, {num_layers}], got {self.num_pruned_layers}"
                )
            return self.num_pruned_layers
        share = 26 / 32 if self.ratio < 0.35 else 30 / 32
        return max(1, round(share * num_layers))
