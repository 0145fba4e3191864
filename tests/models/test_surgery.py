"""Physical head / channel removal must equal masking the same heads / channels."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pytest
import torch
from torch import Tensor, nn

from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import byte_tokenizer, tiny_model
from slimllm.models.surgery import LayerLayout

IDS = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))
WIDTH = 96  # intermediate size of both tiny models

# layer -> (query heads kept, channels kept); None leaves that part alone.
Plan = dict[int, tuple[Sequence[int] | None, Sequence[int] | None]]
PLANS: dict[str, tuple[str, Plan]] = {
    "mha-heads": ("tiny-llama", {0: ([0, 2], None), 2: ([1, 2, 3], None)}),
    "mha-channels": ("tiny-llama", {1: (None, range(0, WIDTH, 2))}),
    "mha-both": ("tiny-llama", {0: ([3], range(10, 50)), 1: ([0, 1, 2], [5, 7, 90])}),
    # 6 query heads in 2 KV groups of 3: case (a) keeps 2 heads of every group ...
    "gqa-a": ("tiny-gqa", {0: ([0, 2, 3, 5], None), 1: ([1, 4], None)}),
    # ... case (b) drops whole groups, the other keeping all of its heads or 2 of them.
    "gqa-b": ("tiny-gqa", {0: ([3, 4, 5], None), 2: ([0, 1], None)}),
    "gqa-both": ("tiny-gqa", {0: ([0, 2, 3, 5], range(0, WIDTH, 3)), 1: ([4], [0])}),
}


def _logits(model: nn.Module, ids: torch.Tensor = IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _apply(model: nn.Module, plan: Plan, prune: bool) -> None:
    adapter = get_adapter(model)
    for index, (heads, channels) in plan.items():
        layer = adapter.layers(model)[index]
        if heads is not None:
            if prune:
                surgery.prune_attention_heads(layer, adapter, list(heads))
            else:
                total = adapter.attention_shape(layer).num_heads
                drop = sorted(set(range(total)) - set(heads))
                surgery.mask_attention_heads(layer, adapter, drop)
        if channels is not None:
            if prune:
                surgery.prune_mlp_channels(layer, adapter, torch.tensor(list(channels)))
            else:
                surgery.mask_mlp_channels(layer, adapter, sorted(set(range(WIDTH)) - set(channels)))


def _pruned_and_masked(name: str) -> tuple[nn.Module, nn.Module]:
    family, plan = PLANS[name]
    pruned = tiny_model(family)
    masked = copy.deepcopy(pruned)
    _apply(pruned, plan, prune=True)
    _apply(masked, plan, prune=False)
    return pruned, masked


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("name", list(PLANS))
def test_pruned_equals_masked(name: str, attn: str) -> None:
    pruned, masked = _pruned_and_masked(name)
    # sdpa without a mask infers K/V sharing from the shapes; eager reads num_key_value_groups.
    pruned.set_attn_implementation(attn)
    masked.set_attn_implementation(attn)
    torch.testing.assert_close(_logits(pruned), _logits(masked), atol=1e-5, rtol=0)
    plan = PLANS[name][1]
    adapter = get_adapter(pruned)
    for index, (heads, channels) in plan.items():
        layout = adapter.layers(pruned)[index].slimllm_layout
        assert layout.kept_heads == sorted(heads if heads is not None else range(layout.num_heads))
        expected = list(channels) if channels is not None else list(range(WIDTH))
        assert layout.kept_channels == expected


@pytest.mark.parametrize("name", ["mha-both", "gqa-a", "gqa-b", "gqa-both"])
def test_kv_groups_match_shapes(name: str) -> None:
    pruned, _ = _pruned_and_masked(name)
    adapter = get_adapter(pruned)
    for layer in adapter.layers(pruned):
        proj, attn = adapter.attention_projections(layer), adapter.attention(layer)
        heads = proj.q.out_features // attn.head_dim
        kv_heads = proj.k.out_features // attn.head_dim
        assert proj.v.out_features == proj.k.out_features
        assert proj.o.in_features == proj.q.out_features
        assert attn.num_key_value_groups * kv_heads == heads
        layout = surgery.layer_layout(layer, adapter)
        assert (len(layout.kept_heads), len(layout.kept_kv_groups)) == (heads, kv_heads)
        assert all(p.is_contiguous() for p in layer.parameters())


def test_gqa_case_b_removes_kv_rows() -> None:
    pruned, _ = _pruned_and_masked("gqa-b")
    adapter = get_adapter(pruned)
    first, _, last = adapter.layers(pruned)
    assert adapter.attention_projections(first).k.out_features == 16
    assert first.slimllm_layout.kept_kv_groups == [1]
    assert first.self_attn.num_key_value_groups == 3
    assert last.slimllm_layout.kept_kv_groups == [0]
    assert last.self_attn.num_key_value_groups == 2


def test_keeping_everything_changes_nothing() -> None:
    for family in ("tiny-llama", "tiny-gqa"):
        model = tiny_model(family)
        before = _logits(model)
        adapter = get_adapter(model)
        for layer in adapter.layers(model):
            heads = adapter.attention_shape(layer).num_heads
            surgery.prune_attention_heads(layer, adapter, range(heads))
            surgery.prune_mlp_channels(layer, adapter, range(WIDTH))
        assert torch.equal(_logits(model), before)


def test_successive_calls_compose_in_original_indices() -> None:
    pruned, masked = tiny_model("tiny-gqa"), tiny_model("tiny-gqa")
    adapter = get_adapter(pruned)
    layer = adapter.layers(pruned)[0]
    surgery.prune_attention_heads(layer, adapter, [0, 1, 3, 4])  # case (a): 2 per group
    surgery.prune_attention_heads(layer, adapter, [2, 3])  # positions 2, 3 = heads 3, 4: case (b)
    surgery.prune_mlp_channels(layer, adapter, range(0, WIDTH, 2))
    surgery.prune_mlp_channels(layer, adapter, [1, 2])  # positions 1, 2 = channels 2, 4
    layout = layer.slimllm_layout
    assert (layout.kept_heads, layout.kept_kv_groups, layout.kept_channels) == ([3, 4], [1], [2, 4])
    assert (layout.num_heads, layout.num_kv_heads, layout.intermediate_size) == (6, 2, WIDTH)
    reference = adapter.layers(masked)[0]
    surgery.mask_attention_heads(reference, adapter, [0, 1, 2, 5])
    surgery.mask_mlp_channels(reference, adapter, [c for c in range(WIDTH) if c not in (2, 4)])
    torch.testing.assert_close(_logits(pruned), _logits(masked), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ([0, 1, 3], "same number of query heads"),
        ([], "empty"),
        ([0, 6], "outside"),
        ([1, 1, 4, 4], "repeats"),
        (torch.tensor([0.0, 3.0]), "integer"),
    ],
)
def test_bad_keep_heads_raise(keep: object, message: str) -> None:
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    layer = adapter.layers(model)[0]
    with pytest.raises(ValueError, match=f"keep_heads.*{message}"):
        surgery.prune_attention_heads(layer, adapter, keep)  # type: ignore[arg-type]
    assert adapter.attention_projections(layer).q.out_features == 96  # untouched


@pytest.mark.parametrize(("keep", "message"), [([], "empty"), ([3, WIDTH], "outside")])
def test_bad_keep_channels_raise(keep: list[int], message: str) -> None:
    model = tiny_model("tiny-llama")
    adapter = get_adapter(model)
    with pytest.raises(ValueError, match=f"keep.*{message}"):
        surgery.prune_mlp_channels(adapter.layers(model)[0], adapter, keep)


def test_layout_dict_round_trip() -> None:
    pruned, _ = _pruned_and_masked("gqa-both")
    layout = surgery.layer_layout(get_adapter(pruned).layers(pruned)[0], get_adapter(pruned))
    assert LayerLayout.from_dict(layout.to_dict()) == layout
    broken = layout.to_dict()
    del broken["kept_heads"]
    with pytest.raises(ValueError, match="kept_heads"):
        LayerLayout.from_dict(broken)


def test_set_output_bias_installs_bias() -> None:
    linear = nn.Linear(8, 4, bias=False).to(torch.bfloat16)
    weight = torch.randn(4, 8, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    surgery.set_output_bias(linear, weight, bias)
    assert linear.bias is not None
    assert linear.weight.dtype == linear.bias.dtype == torch.bfloat16
    torch.testing.assert_close(linear.bias, bias.to(torch.bfloat16))
    with pytest.raises(ValueError, match="weight must have"):
        surgery.set_output_bias(linear, weight.T, bias)


def test_layout_tracks_regression_bias() -> None:
    model = tiny_model("tiny-llama")
    adapter = get_adapter(model)
    layer = adapter.layers(model)[0]
    surgery.prune_attention_heads(layer, adapter, [1, 2])
    o_proj = adapter.attention_projections(layer).o
    surgery.set_output_bias(o_proj, o_proj.weight, torch.zeros(o_proj.out_features))
    layout = surgery.layer_layout(layer, adapter)
    assert layout.o_proj_bias and not layout.down_proj_bias
    assert layout.kept_heads == [1, 2]


@pytest.fixture(scope="module")
def padded_batch() -> dict[str, torch.Tensor]:
    tokenizer = byte_tokenizer()
    tokenizer.padding_side = "left"
    return dict(tokenizer(["Pruned models still talk.", "Hi"], padding=True, return_tensors="pt"))


def _generate(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model.generate(
        **batch, max_new_tokens=5, min_new_tokens=5, do_sample=False, pad_token_id=258
    )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("name", ["mha-both", "gqa-both"])
def test_generate_after_surgery(name: str, attn: str, padded_batch: dict[str, Tensor]) -> None:
    pruned, _ = _pruned_and_masked(name)
    pruned.set_attn_implementation(attn)
    out = _generate(pruned, padded_batch)
    assert out.shape == (2, padded_batch["input_ids"].shape[1] + 5)
    # Greedy decoding with the KV cache must pick what one full forward pass would pick.
    mask = torch.cat([padded_batch["attention_mask"], torch.ones(2, 5, dtype=torch.long)], 1)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        logits = pruned(out, attention_mask=mask, position_ids=positions).logits
    assert torch.equal(logits[:, -6:-1].argmax(-1), out[:, -5:])


def test_eager_and_sdpa_agree_on_padded_gqa(padded_batch: dict[str, torch.Tensor]) -> None:
    pruned, _ = _pruned_and_masked("gqa-both")
    results = {}
    for attn in ("eager", "sdpa"):
        pruned.set_attn_implementation(attn)
        with torch.no_grad():
            results[attn] = pruned(**padded_batch).logits
    real = padded_batch["attention_mask"].bool()  # padded positions attend to nothing
    torch.testing.assert_close(results["eager"][real], results["sdpa"][real], atol=1e-4, rtol=0)
