"""Rounding kept MLP channels to a multiple: the plan, the solver's target, recipes, the CLI."""

from __future__ import annotations

import pytest

from slimllm.cli import build_parser
from slimllm.experiments import recipes
from slimllm.method.config import PruneConfig
from slimllm.method.plan import plan_channels
from slimllm.method.pruner import prune
from slimllm.models.loaders import byte_tokenizer, tiny_model
from tests.helpers import write_novels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    text = "a lighthouse keeper wrote letters to nobody at all " * 80
    return str(write_novels(tmp_path_factory.mktemp("data"), text))


@pytest.mark.parametrize("multiple", [8, 64])
def test_kept_width_is_the_nearest_multiple(multiple: int) -> None:
    for ratio in (0.05, 0.2, 0.5, 0.71, 0.9):
        kept = 1536 - plan_channels(1536, ratio, multiple)
        assert kept % multiple == 0 and kept >= multiple
        # Never further from the unrounded plan than half a multiple.
        assert abs(kept - (1536 - plan_channels(1536, ratio))) <= multiple / 2


def test_rounding_edge_cases() -> None:
    assert plan_channels(1536, 0.0, 64) == 0
    assert plan_channels(1536, 0.999, 64) == 1536 - 64  # at least one multiple stays
    assert plan_channels(1536, 0.01, 64) == 0  # 15 channels round to none
    assert plan_channels(40, 0.5, 64) == 0  # narrower than the multiple: left whole
    assert plan_channels(1536, 0.2, 1) == plan_channels(1536, 0.2) == 307
    with pytest.raises(ValueError, match="multiple must be >= 1"):
        plan_channels(1536, 0.2, 0)


def small(multiple: int, ratio: float = 0.3) -> PruneConfig:
    return PruneConfig(
        ratio=ratio,
        ratio_of="decoder",
        num_pruned_layers=3,
        calib_samples=8,
        calib_seq_len=32,
        batch_size=4,
        round_channels_to=multiple,
    )


@pytest.mark.parametrize(
    ("name", "multiple", "ratio"), [("tiny-llama", 8, 0.3), ("tiny-gqa", 8, 0.5)]
)
def test_rounded_pruning_meets_the_target(
    name: str, multiple: int, ratio: float, data_dir: str
) -> None:
    # The solver plans the rounded widths, so the model it cuts lands within 0.5 points.
    model = tiny_model(name)
    report = prune(
        model, byte_tokenizer(), small(multiple, ratio), data_dir=data_dir, progress=False
    )
    assert abs(report.achieved - ratio) <= 0.005 + 1e-9
    widths = [layer.mlp.gate_proj.out_features for layer in model.model.layers]
    assert all(w % multiple == 0 for w in widths) and min(widths) < 96
    assert [r.channels_kept for r in report.layers] == widths


def test_too_coarse_rounding_says_so(data_dir: str) -> None:
    # 96 channels in steps of 16 (and whole heads) cannot land within 0.5 points of 30 %.
    with pytest.raises(ValueError, match="cannot be met within tol"):
        prune(
            tiny_model("tiny-gqa"), byte_tokenizer(), small(16), data_dir=data_dir, progress=False
        )


def test_recipes_stay_the_same_without_rounding() -> None:
    plain = recipes.pruned(PruneConfig(ratio=0.2))
    assert "round_channels_to" not in plain["prune"]
    assert recipes.prune_config(plain).round_channels_to == 1
    rounded = recipes.pruned(PruneConfig(ratio=0.2, round_channels_to=64))
    assert rounded["prune"]["round_channels_to"] == 64
    assert recipes.prune_config(rounded) == PruneConfig(ratio=0.2, round_channels_to=64)
    assert recipes.label(rounded) == "smollm2-135m slimllm 20% round 64"


def test_bad_rounding_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="round_channels_to must be >= 1"):
        PruneConfig(round_channels_to=0).validate()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--ratio", "0.2", "--out", "x", "--round-to", "0"])
    assert "--round-to: must be an integer >= 1" in capsys.readouterr().err
    args = build_parser().parse_args(["prune", "--ratio", "0.2", "--out", "x", "--round-to", "8"])
    assert args.round_to == 8
