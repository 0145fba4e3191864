"""The layer walker reproduces the model's own hidden states and feeds pruned layers forward."""

from __future__ import annotations

import pytest
import torch

from slimllm.method.calibration import (
    LayerHome,
    LayerWalker,
    capture_layer_inputs,
    layer_hidden_states,
    replayed,
    run_layer,
)
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import tiny_model


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gqa"])
def test_walking_reproduces_hidden_states(name: str) -> None:
    model = tiny_model(name)
    ids = torch.randint(0, 256, (5, 12), generator=torch.Generator().manual_seed(0))
    walked = layer_hidden_states(model, ids, batch_size=2)
    with torch.no_grad():
        ref = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert len(walked) == len(ref)
    for a, b in zip(walked[:-1], ref[:-1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.model.norm(walked[-1]), ref[-1], rtol=0, atol=1e-6)


def test_capture_restores_the_layers() -> None:
    model = tiny_model("tiny-llama")
    before = list(model.model.layers)
    captured = capture_layer_inputs(model, torch.zeros(3, 8, dtype=torch.long), batch_size=2)
    assert list(model.model.layers) == before
    assert [h.shape[0] for h in captured.hidden] == [2, 1]
    assert len(captured.kwargs) == 3 and "position_embeddings" in captured.kwargs[0][0]


def test_hooks_see_module_inputs_and_outputs() -> None:
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    captured = capture_layer_inputs(model, torch.ones(2, 6, dtype=torch.long))
    layer = adapter.layers(model)[0]
    seen: dict[str, list[tuple[torch.Size, torch.Size]]] = {}
    watch = {
        "o": adapter.attention_projections(layer).o,
        "down": adapter.mlp_projections(layer).down,
    }
    run_layer(
        layer,
        captured.hidden,
        captured.kwargs[0],
        watch=watch,
        on_output=lambda n, x, y: seen.setdefault(n, []).append((x.shape, y.shape)),
    )
    assert seen["o"] == [(torch.Size([2, 6, 96]), torch.Size([2, 6, 96]))]
    assert seen["down"] == [(torch.Size([2, 6, 96]), torch.Size([2, 6, 96]))]


def test_later_layers_see_the_modified_earlier_layers() -> None:
    model = tiny_model("tiny-llama")
    ids = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(1))
    inputs_of_layer1 = []
    for step in LayerWalker(model, ids, progress=False):
        if step.index == 0:
            with torch.no_grad():
                step.layer.mlp.down_proj.weight.zero_()
                step.layer.self_attn.o_proj.weight.zero_()
        if step.index == 1:
            inputs_of_layer1 = step.inputs
    # Layer 0 now adds nothing to the residual stream, so layer 1 sees the embeddings.
    torch.testing.assert_close(torch.cat(inputs_of_layer1), model.model.embed_tokens(ids))


def test_stop_after_skips_the_rest_of_the_layer() -> None:
    model = tiny_model("tiny-llama")
    adapter = get_adapter(model)
    captured = capture_layer_inputs(model, torch.ones(2, 6, dtype=torch.long))
    layer = adapter.layers(model)[0]
    seen: list[str] = []
    out = run_layer(
        layer,
        captured.hidden,
        captured.kwargs[0],
        watch={"o": layer.self_attn.o_proj, "down": layer.mlp.down_proj},
        on_output=lambda n, _x, _y: seen.append(n),
        stop_after=layer.self_attn.o_proj,
    )
    assert out == [] and seen == ["o"]
    assert not layer.self_attn.o_proj._forward_hooks


def test_replayed_attention_gives_the_layer_its_own_outputs() -> None:
    """A layer run around its attention's recorded output equals the layer run whole, and the
    replayed attention computes nothing."""
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    captured = capture_layer_inputs(model, torch.randint(0, 256, (3, 10)), batch_size=2)
    layer = adapter.layers(model)[1]
    attention_out: list[torch.Tensor] = []
    whole = run_layer(
        layer,
        captured.hidden,
        captured.kwargs[1],
        watch={"o": layer.self_attn.o_proj},
        on_output=lambda _n, _x, y: attention_out.append(y),
    )
    calls: list[int] = []
    layer.self_attn.q_proj.register_forward_hook(lambda *_: calls.append(1))
    with replayed(layer.self_attn, [adapter.attention_result(t) for t in attention_out]):
        again = run_layer(layer, captured.hidden, captured.kwargs[1])
    assert calls == [] and "forward" not in vars(layer.self_attn)
    for a, b in zip(again, whole, strict=True):
        assert torch.equal(a, b)


def test_walk_in_another_dtype_keeps_the_weights() -> None:
    model = tiny_model("tiny-gqa")
    ids = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(2))
    reference = layer_hidden_states(model, ids)
    walker = LayerWalker(model, ids, progress=False, dtype=torch.bfloat16)
    for step in walker:
        assert step.inputs[0].dtype == torch.bfloat16
        assert step.work is not step.layer and step.work.mlp.up_proj.weight.dtype == torch.bfloat16
        assert step.layer.mlp.up_proj.weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(
        torch.cat(walker.outputs).float(), reference[-1], rtol=0.05, atol=0.05
    )


def test_outputs_set_by_the_step_feed_the_next_layer_and_the_home_sees_every_visit() -> None:
    class Counting(LayerHome):
        def __init__(self) -> None:
            super().__init__()
            self.visits: list[tuple[str, int, bool]] = []

        def fetch(self, index: int, layer: torch.nn.Module, device: torch.device) -> None:
            self.visits.append(("fetch", index, False))
            super().fetch(index, layer, device)

        def release(self, index: int, layer: torch.nn.Module, final: bool) -> None:
            self.visits.append(("release", index, final))
            super().release(index, layer, final)

    model = tiny_model("tiny-llama")
    home = Counting()
    ids = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(3))
    for step in LayerWalker(model, ids, progress=False, home=home, final=True):
        if step.index == 1:
            assert all(torch.equal(h, torch.zeros_like(h)) for h in step.inputs)
        step.outputs = [torch.zeros_like(h) for h in step.inputs]
    assert home.visits == [
        (kind, i, kind == "release") for i in range(3) for kind in ("fetch", "release")
    ]


def test_a_walk_reuses_another_walks_captured_inputs() -> None:
    """Given the first walk's `captured`, a second walk does not run the embeddings again and
    sees the same inputs; the dtype copies carry the layers' values."""
    model = tiny_model("tiny-gqa")
    ids = torch.randint(0, 256, (3, 8), generator=torch.Generator().manual_seed(4))
    first = LayerWalker(model, ids, batch_size=2, progress=False, dtype=torch.bfloat16)
    for step in first:
        for (name, p), (_, q) in zip(
            step.work.named_parameters(), step.layer.named_parameters(), strict=True
        ):
            assert torch.equal(p, q.to(torch.bfloat16)) and p.data_ptr() != q.data_ptr(), name
    calls = []
    handle = model.model.embed_tokens.register_forward_hook(lambda *_: calls.append(1))
    second = LayerWalker(
        model, ids, batch_size=2, progress=False, dtype=torch.bfloat16, captured=first.captured
    )
    handle.remove()
    assert calls == [] and second.captured is first.captured
    for a, b in zip(second, first, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a.inputs, b.inputs, strict=True))
