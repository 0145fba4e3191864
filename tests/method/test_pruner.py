"""SlimLLM end to end on the tiny random models (MHA and GQA)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from slimllm.data.calibration import calibration_samples
from slimllm.method import pruner
from slimllm.method.config import PruneConfig
from slimllm.method.harness import calibration_for
from slimllm.method.pruner import achieved_fraction, layer_similarities, prune
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import byte_tokenizer, tiny_model
from slimllm.models.surgery import layer_layout, mask_attention_heads, mask_mlp_channels
from tests.helpers import assert_report_matches_shapes, write_novels

IDS = torch.randint(0, 256, (3, 24), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    words = "the ship sailed into a grey morning while the captain counted his debts " * 80
    return str(write_novels(tmp_path_factory.mktemp("data"), words, words.upper()))


def small(**kw: object) -> PruneConfig:
    base = {
        "calib_samples": 8,
        "calib_seq_len": 32,
        "batch_size": 4,
        "ratio_of": "decoder",
        "num_pruned_layers": 3,
    }
    return PruneConfig(**{**base, **kw})


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_pruning_meets_the_target_and_shrinks_modules(name: str, data_dir: str) -> None:
    model, tok = tiny_model(name), byte_tokenizer()
    report = prune(model, tok, small(ratio=0.3), data_dir=data_dir, progress=False)
    assert abs(report.achieved - 0.3) <= 0.005 + 1e-9
    assert_report_matches_shapes(model, report)
    assert torch.isfinite(logits(model)).all()


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_without_regression_equals_the_masked_original(name: str, data_dir: str) -> None:
    original, tok = tiny_model(name), byte_tokenizer()
    pruned = copy.deepcopy(original)
    report = prune(
        pruned, tok, small(ratio=0.3, regression=False), data_dir=data_dir, progress=False
    )
    adapter = get_adapter(original)
    for layer, row in zip(adapter.layers(original), report.layers, strict=True):
        gone = sorted(set(range(row.heads_before)) - set(row.heads_kept))
        if gone:
            mask_attention_heads(layer, adapter, gone)
        kept = set(layer_layout(adapter.layers(pruned)[row.index], adapter).kept_channels)
        dropped = sorted(set(range(row.channels_before)) - kept)
        if dropped:
            mask_mlp_channels(layer, adapter, dropped)
    torch.testing.assert_close(logits(pruned), logits(original), rtol=0, atol=1e-5)


def test_zero_ratio_changes_nothing(data_dir: str) -> None:
    model, tok = tiny_model("tiny-gqa"), byte_tokenizer()
    before = logits(model)
    report = prune(model, tok, small(ratio=0.0), data_dir=data_dir, progress=False)
    assert report.achieved == 0
    assert torch.equal(logits(model), before)


def test_same_seed_same_weights(data_dir: str) -> None:
    a, b = tiny_model("tiny-gqa"), tiny_model("tiny-gqa")
    prune(a, byte_tokenizer(), small(ratio=0.3), data_dir=data_dir, progress=False)
    prune(b, byte_tokenizer(), small(ratio=0.3), data_dir=data_dir, progress=False)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


def test_bfloat16_forwards_keep_float32_weights(data_dir: str) -> None:
    """calib_dtype runs the calibration in bfloat16; the weights, regression folds included,
    stay float32, and the model's own dtype as calib_dtype changes nothing at all."""
    tok = byte_tokenizer()
    fast, same, plain = tiny_model("tiny-gqa"), tiny_model("tiny-gqa"), tiny_model("tiny-gqa")
    config = small(ratio=0.3, calib_dtype="bfloat16")
    report = prune(fast, tok, config, data_dir=data_dir, progress=False)
    assert abs(report.achieved - 0.3) <= 0.005 + 1e-9
    assert report.config["calib_dtype"] == "bfloat16"
    assert all(p.dtype == torch.float32 for p in fast.parameters())
    assert_report_matches_shapes(fast, report)
    prune(same, tok, small(ratio=0.3, calib_dtype="float32"), data_dir=data_dir, progress=False)
    prune(plain, tok, small(ratio=0.3), data_dir=data_dir, progress=False)
    for (name, a), (_, b) in zip(
        same.state_dict().items(), plain.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("probed", ["bfloat16", "float32"])
def test_auto_calib_dtype_runs_and_records_the_probes_choice(
    probed: str, data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """calib_dtype "auto" prunes exactly as the dtype the precision probe picks, and the report
    names that dtype (a record must say what ran, not what the machine was asked to choose)."""
    asked: list[tuple[str, str]] = []

    def probe(requested: str, device: str = "cpu") -> tuple[str, str]:
        asked.append((requested, device))
        return probed, "probe stub"

    monkeypatch.setattr(pruner, "resolve_dtype", probe)
    tok = byte_tokenizer()
    auto, explicit = tiny_model("tiny-gqa"), tiny_model("tiny-gqa")
    config = small(ratio=0.3, calib_dtype="auto")
    report = prune(auto, tok, config, data_dir=data_dir, progress=False)
    assert asked == [("auto", "cpu")]
    assert report.config["calib_dtype"] == probed and config.calib_dtype == "auto"
    prune(explicit, tok, small(ratio=0.3, calib_dtype=probed), data_dir=data_dir, progress=False)
    for (name, a), (_, b) in zip(
        auto.state_dict().items(), explicit.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_each_pruned_layer_hands_on_what_it_now_computes(
    name: str, data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk never reruns a pruned sub-layer: it replays outputs it derived (the folded
    projections' A * pruned + B). Those must be what the pruned layer gives when run."""
    handed: dict[int, torch.Tensor] = {}
    prune_layer = pruner._prune_layer

    def spy(step: pruner.LayerStep, *args: object) -> None:
        prune_layer(step, *args)  # type: ignore[arg-type]
        handed[step.index] = torch.cat(step.outputs or [])

    monkeypatch.setattr(pruner, "_prune_layer", spy)
    model, tok = tiny_model(name), byte_tokenizer()
    config = small(ratio=0.3)
    prune(model, tok, config, data_dir=data_dir, progress=False)
    ids, _ = calibration_for(tok, config, get_adapter(model), data_dir)
    with torch.no_grad():
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
    last = len(states) - 2  # the last entry is after the final norm
    checked = [i for i in handed if i < last]
    assert checked, "no pruned layer before the last"
    for i in checked:
        torch.testing.assert_close(handed[i], states[i + 1], rtol=1e-4, atol=1e-4)


def test_regression_fits_the_calibration_outputs_better(data_dir: str) -> None:
    """Least squares on the calibration set: the first pruned projection nears the dense."""
    tok = byte_tokenizer()
    ids, _ = calibration_samples(tok, 8, 32, 42, data_dir=data_dir)
    ref = tiny_model("tiny-llama")
    with_lr, without = copy.deepcopy(ref), copy.deepcopy(ref)
    report = prune(with_lr, tok, small(ratio=0.4), data_dir=data_dir, progress=False)
    prune(without, tok, small(ratio=0.4, regression=False), data_dir=data_dir, progress=False)
    # The first pruned sub-layer sees the same inputs in all three models.
    first = next(r for r in report.layers if r.ratio > 0)
    heads_pruned = len(first.heads_kept) < first.heads_before

    def o_proj_output(model: torch.nn.Module) -> torch.Tensor:
        seen = []
        layer = model.model.layers[first.index]
        module = layer.self_attn.o_proj if heads_pruned else layer.mlp.down_proj
        handle = module.register_forward_hook(lambda _m, _i, o: seen.append(o))
        with torch.no_grad():
            model(input_ids=ids)
        handle.remove()
        return seen[0]

    target = o_proj_output(ref)
    assert (o_proj_output(with_lr) - target).pow(2).mean() < (o_proj_output(without) - target).pow(
        2
    ).mean()


def test_similarities_and_achieved_fraction() -> None:
    model = tiny_model("tiny-llama")
    sims = layer_similarities(model, IDS, batch_size=2, device=torch.device("cpu"))
    assert sims.shape == (3,) and ((sims > -1) & (sims < 1)).all()
    total = sum(p.numel() for p in model.model.layers.parameters())
    # 50 % of every layer: 2 of 4 heads with their q, k, v rows and o columns (2 * 4096) and
    # 48 of 96 channels (48 * 192); regression then adds a 64-wide bias to o_proj and down_proj.
    half = torch.full((3,), 0.5)
    removed = 3 * (2 * 4096 + 48 * 192)
    assert achieved_fraction(model, half, "auto", total, regression=False) == removed / total
    assert achieved_fraction(model, half, "auto", total) == (removed - 3 * 2 * 64) / total


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.0}, "ratio must be in"),
        ({"ratio": -0.1}, "ratio must be in"),
        ({"ratio": 0.3, "alpha": 0.0}, "alpha must be in \\(0, 100\\]"),
        (
            {"ratio": 0.3, "calib_samples": 500, "calib_seq_len": 128},
            "calibration corpus holds only",
        ),
        ({"ratio": 0.8, "max_layer_ratio": 0.5}, "unreachable"),
        ({"ratio": 0.3, "gqa_mode": "rows"}, "gqa_mode must be one of"),
        ({"ratio": 0.3, "calib_dtype": "int8"}, "calib_dtype must be one of"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, object], message: str, data_dir: str) -> None:
    with pytest.raises(ValueError, match=message):
        prune(
            tiny_model("tiny-gqa"),
            byte_tokenizer(),
            small(**kwargs),
            data_dir=data_dir,
            progress=False,
        )


def test_unsupported_architecture(data_dir: str) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=259))
    with pytest.raises(ValueError, match="no adapter for model_type 'gpt2'"):
        prune(gpt2, byte_tokenizer(), small(ratio=0.3), data_dir=data_dir, progress=False)


def test_report_is_json_serialisable(data_dir: str) -> None:
    report = prune(
        tiny_model("tiny-gqa"),
        byte_tokenizer(),
        small(ratio=0.3),
        data_dir=data_dir,
        progress=False,
    )
    text = json.dumps(report.to_dict())
    assert '"method": "slimllm"' in text and '"calibration"' in text
