"""Every pruning method on the tiny MHA and GQA models: shapes, target, determinism, selection,
FLAP's bias, saving, the command line and clear errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from slimllm.cli import main
from slimllm.data.calibration import calibration_samples
from slimllm.experiments import recipes
from slimllm.method.calibration import LayerWalker, run_layer
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned, save_pruned
from slimllm.models.loaders import byte_tokenizer, tiny_model
from slimllm.models.surgery import layer_layout
from slimllm.peers.baselines import PEERS, pruned_layers, uniform_counts
from slimllm.peers.registry import METHODS, method_config, prune_with
from slimllm.peers.scores import standardise
from tests.helpers import assert_report_matches_shapes, flap_prune_argv, write_novels

MODELS = ["tiny-llama", "tiny-gqa"]
IDS = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    text = "a lantern swung over the quay while gulls argued about the nets " * 90
    return str(write_novels(tmp_path_factory.mktemp("data"), text))


def small(method: str, **kw: object) -> object:
    base = {"calib_samples": 8, "calib_seq_len": 32, "batch_size": 4, "ratio_of": "decoder"}
    if method == "llm-pruner":
        base.update(calib_samples=4, calib_seq_len=16)
    if method in ("slimllm", "lorap-ffn"):
        base["num_pruned_layers"] = 3
    return method_config(method, **{**base, "ratio": 0.3, **kw})


def run(method: str, name: str, data_dir: str, **kw: object):  # type: ignore[no-untyped-def]
    model, tok = tiny_model(name), byte_tokenizer()
    report = prune_with(method, model, tok, small(method, **kw), data_dir=data_dir, progress=False)
    return model, report


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def scores_of(
    method: str, name: str, data_dir: str
) -> tuple[torch.nn.Module, dict[tuple[int, str], torch.Tensor], torch.Tensor]:
    """A dense copy of the tiny model, the scores `method` gives it by (layer, kind) while it
    prunes the original, and the calibration windows it scored on."""
    model, tok = tiny_model(name), byte_tokenizer()
    dense = copy.deepcopy(model)
    config = small(method)
    seen: dict[tuple[int, str], torch.Tensor] = {}
    prune_with(
        method,
        model,
        tok,
        config,
        data_dir=data_dir,
        progress=False,
        on_scores=lambda i, kind, s, _r: seen.__setitem__((i, kind), s),
    )
    ids, _ = calibration_samples(
        tok, config.calib_samples, config.calib_seq_len, config.seed, data_dir=data_dir
    )
    return dense, seen, ids


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_meets_the_target_with_consistent_shapes(
    method: str, name: str, data_dir: str
) -> None:
    model, report = run(method, name, data_dir)
    assert report.method == method
    assert abs(report.achieved - 0.3) <= 0.005 + 1e-9
    assert_report_matches_shapes(model, report)
    assert torch.isfinite(logits(model)).all()


@pytest.mark.parametrize("method", METHODS)
def test_methods_are_deterministic_for_a_seed(method: str, data_dir: str) -> None:
    a, _ = run(method, "tiny-gqa", data_dir, seed=3)
    b, _ = run(method, "tiny-gqa", data_dir, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_random_depends_on_the_seed(data_dir: str) -> None:
    kept = [
        [row.channels_kept for row in run("random", "tiny-llama", data_dir, seed=s)[1].layers]
        for s in (1, 2)
    ]
    layouts = []
    for s in (1, 2):
        model, _ = run("random", "tiny-llama", data_dir, seed=s)
        adapter = get_adapter(model)
        layouts.append([layer_layout(x, adapter).kept_channels for x in adapter.layers(model)])
    assert kept[0] == kept[1] and layouts[0] != layouts[1]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", sorted(PEERS))
def test_removed_units_are_the_lowest_by_the_methods_score(
    method: str, name: str, data_dir: str
) -> None:
    seen: list[tuple[int, str, torch.Tensor, list[int]]] = []
    model, tok = tiny_model(name), byte_tokenizer()
    prune_with(
        method,
        model,
        tok,
        small(method),
        data_dir=data_dir,
        progress=False,
        on_scores=lambda *a: seen.append(a),
    )
    assert seen
    if method == "flap":
        # One ranking across layers: per kind, every removed unit ranks below every kept one
        # (a layer's last unit of a kind always stays).
        for kind in ("attention", "mlp"):
            rows = [(s, rem) for _, k, s, rem in seen if k == kind]
            removed = [float(s[r]) for s, rem in rows for r in rem]
            kept = [
                float(s[k])
                for s, rem in rows
                if len(s) - len(rem) > 1
                for k in range(len(s))
                if k not in rem
            ]
            assert not removed or not kept or max(removed) <= min(kept)
        return
    for _, _, s, rem in seen:
        kept = [k for k in range(len(s)) if k not in rem]
        if rem:
            assert s[rem].max() <= s[kept].min()


def test_magnitude_scores_match_a_direct_formula(data_dir: str) -> None:
    model = tiny_model("tiny-gqa")
    dense = copy.deepcopy(model)
    seen: dict[tuple[int, str], torch.Tensor] = {}
    prune_with(
        "magnitude-sp",
        model,
        byte_tokenizer(),
        small("magnitude-sp"),
        progress=False,
        on_scores=lambda i, kind, s, _r: seen.__setitem__((i, kind), s),
    )
    for i, layer in enumerate(dense.model.layers):
        w_o = layer.self_attn.o_proj.weight.double()
        width = 3 * layer.self_attn.head_dim  # three query heads per KV group
        direct = [
            sum(w_o[:, c].norm() for c in range(g * width, (g + 1) * width)) for g in range(2)
        ]
        torch.testing.assert_close(seen[(i, "attention")], torch.stack(direct))
        w_down = layer.mlp.down_proj.weight.double()
        direct_mlp = torch.stack([w_down[:, j].norm() for j in range(w_down.shape[1])])
        torch.testing.assert_close(seen[(i, "mlp")], direct_mlp)


def test_wanda_scores_of_the_first_layer_match_a_direct_formula(data_dir: str) -> None:
    dense, seen, ids = scores_of("wanda-sp", "tiny-llama", data_dir)
    step = next(iter(LayerWalker(dense, ids, small("wanda-sp").batch_size, progress=False)))
    got: dict[str, list[torch.Tensor]] = {"o": [], "down": []}
    layer = step.layer
    run_layer(
        layer,
        step.inputs,
        step.kwargs,
        watch={"o": layer.self_attn.o_proj, "down": layer.mlp.down_proj},
        on_output=lambda n, x, _y: got[n].append(x.reshape(-1, x.shape[-1])),
    )
    x_down = torch.cat(got["down"]).double()
    w_down = layer.mlp.down_proj.weight.double()
    direct = torch.stack(
        [
            sum(w_down[i, j].abs() * x_down[:, j].norm() for i in range(w_down.shape[0]))
            / w_down.shape[0]
            for j in range(w_down.shape[1])
        ]
    )
    torch.testing.assert_close(seen[(0, "mlp")], direct)


@pytest.mark.parametrize("method", ["flap", "flap-uniform"])
@pytest.mark.parametrize("name", MODELS)
def test_flap_bias_keeps_each_projections_output_mean(
    name: str, method: str, data_dir: str
) -> None:
    model, tok = tiny_model(name), byte_tokenizer()
    dense = copy.deepcopy(model)
    config = small(method)
    prune_with(method, model, tok, config, data_dir=data_dir, progress=False)
    ids, _ = calibration_samples(
        tok, config.calib_samples, config.calib_seq_len, config.seed, data_dir=data_dir
    )
    adapter = get_adapter(model)
    checked = 0
    for step in LayerWalker(dense, ids, config.batch_size, progress=False):
        got: dict[str, list[torch.Tensor]] = {"o": [], "down": []}
        dense_layer = step.layer

        def keep(n: str, x: torch.Tensor, _y: torch.Tensor, got: dict = got) -> None:
            got[n].append(x.reshape(-1, x.shape[-1]))

        run_layer(
            dense_layer,
            step.inputs,
            step.kwargs,
            watch={"o": dense_layer.self_attn.o_proj, "down": dense_layer.mlp.down_proj},
            on_output=keep,
        )
        layer = adapter.layers(model)[step.index]
        layout = layer_layout(layer, adapter)
        head_dim = layout.head_dim
        cols = torch.tensor(
            [c for h in layout.kept_heads for c in range(h * head_dim, (h + 1) * head_dim)]
        )
        pairs = [
            (dense_layer.self_attn.o_proj, layer.self_attn.o_proj, torch.cat(got["o"]), cols),
            (
                dense_layer.mlp.down_proj,
                layer.mlp.down_proj,
                torch.cat(got["down"]),
                torch.tensor(layout.kept_channels),
            ),
        ]
        for full, pruned, x, kept in pairs:
            if len(kept) == x.shape[1]:
                continue
            want = full(x).double().mean(0)
            have = pruned(x[:, kept]).double().mean(0)
            torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-5)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", MODELS)
def test_flap_uniform_ranks_by_flaps_scores_with_one_ratio_per_layer(
    name: str, data_dir: str
) -> None:
    _, global_scores, _ = scores_of("flap", name, data_dir)
    _, uniform_scores, _ = scores_of("flap-uniform", name, data_dir)
    assert global_scores.keys() == uniform_scores.keys()
    for key, raw in uniform_scores.items():
        # FLAP standardises per layer and kind before its global ranking; within a layer the
        # order, and so the uniform variant's choice, is the same.
        torch.testing.assert_close(global_scores[key], standardise(raw))
    _, report = run("flap-uniform", name, data_dir)
    dense = tiny_model(name)
    counts = uniform_counts(dense, list(range(len(report.layers))), report.base_ratio)
    removed = {
        row.index: (
            (row.heads_before - len(row.heads_kept))
            * dense.config.num_key_value_heads
            // dense.config.num_attention_heads,
            row.channels_before - row.channels_kept,
        )
        for row in report.layers
    }
    assert removed == counts


def test_flap_model_saves_and_loads_with_its_biases(tmp_path: Path, data_dir: str) -> None:
    model, report = run("flap", "tiny-gqa", data_dir)
    tok = byte_tokenizer()
    out = save_pruned(model, tok, tmp_path / "m", {**report.to_dict(), "model": "tiny-gqa"})
    loaded, _ = load_pruned(out)
    assert any(layer.self_attn.o_proj.bias is not None for layer in loaded.model.layers)
    torch.testing.assert_close(logits(loaded), logits(model))


def test_llm_pruner_prunes_its_depth_range() -> None:
    peer = PEERS["llm-pruner"]
    assert pruned_layers(peer, 32) == list(range(4, 30))
    assert pruned_layers(peer, 30) == list(range(4, 28))
    assert pruned_layers(PEERS["wanda-sp"], 30) == list(range(30))


def test_score_mode_meets_the_target_on_gqa(data_dir: str) -> None:
    model, report = run("slimllm", "tiny-gqa", data_dir, gqa_mode="score")
    assert abs(report.achieved - 0.3) <= 0.005 + 1e-9
    assert {r.attention_mode for r in report.layers} <= {"heads", "groups", "none"}
    assert torch.isfinite(logits(model)).all()


def test_unknown_method_is_one_clear_line() -> None:
    model, tok = tiny_model("tiny-llama"), byte_tokenizer()
    with pytest.raises(ValueError, match="unknown pruning method 'obs'") as err:
        prune_with("obs", model, tok)
    assert "\n" not in str(err.value)
    recipe = {"base": "tiny-llama", "prune": {"method": "obs", "ratio": 0.2}}
    with pytest.raises(ValueError, match="unknown pruning method"):
        recipes.build(recipe, use_cache=False)


@pytest.mark.parametrize("method", METHODS)
def test_an_unsupported_architecture_is_one_clear_line(method: str) -> None:
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=259, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    with pytest.raises(ValueError, match="no adapter for model_type 'gpt2'") as err:
        prune_with(method, model, byte_tokenizer(), small(method), progress=False)
    assert "\n" not in str(err.value).split(". Add")[0]


def test_recipe_builds_a_peer(data_dir: str) -> None:
    config = small("random")
    recipe = recipes.pruned(config, base="tiny-gqa", method="random")
    model, _ = recipes.build(recipe, use_cache=False)
    direct, _ = run("random", "tiny-gqa", data_dir)
    torch.testing.assert_close(logits(model), logits(direct))


def test_cli_prunes_with_a_baseline(tmp_path: Path, data_dir: str) -> None:
    out = tmp_path / "flap"
    assert main(flap_prune_argv(data_dir, "--out", str(out))) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["slimllm"]["record"]["method"] == "flap"
    load_pruned(out)
    with pytest.raises(SystemExit) as err:
        main(["prune", "tiny-gqa", "--method", "obs", "--ratio", "0.3", "--out", str(out)])
    assert err.value.code == 2


def test_llm_pruner_scores_match_a_direct_taylor_sum(data_dir: str) -> None:
    dense, seen, ids = scores_of("llm-pruner", "tiny-gqa", data_dir)
    dense(input_ids=ids, labels=ids).loss.backward()
    attn, mlp = dense.model.layers[1].self_attn, dense.model.layers[1].mlp

    def sal(lin: torch.nn.Linear) -> torch.Tensor:
        return (lin.weight.double() * lin.weight.grad.double()).abs()

    hd = attn.head_dim
    for g in range(2):
        q_rows = slice(g * 3 * hd, (g + 1) * 3 * hd)
        kv_rows = slice(g * hd, (g + 1) * hd)
        want = (
            sal(attn.q_proj)[q_rows].sum()
            + sal(attn.k_proj)[kv_rows].sum()
            + sal(attn.v_proj)[kv_rows].sum()
            + sal(attn.o_proj)[:, q_rows].sum()
        )
        torch.testing.assert_close(seen[(1, "attention")][g], want.detach())
    j = 7
    want_mlp = (
        sal(mlp.gate_proj)[j].sum() + sal(mlp.up_proj)[j].sum() + sal(mlp.down_proj)[:, j].sum()
    )
    torch.testing.assert_close(seen[(1, "mlp")][j], want_mlp.detach())


@pytest.mark.parametrize("method", sorted(PEERS))
def test_peers_on_multi_query_attention_prune_only_the_mlp(method: str, data_dir: str) -> None:
    model = tiny_model("tiny-gqa", num_key_value_heads=1)
    report = prune_with(
        method, model, byte_tokenizer(), small(method), data_dir=data_dir, progress=False
    )
    assert abs(report.achieved - 0.3) <= 0.005 + 1e-9
    assert all(len(r.heads_kept) == r.heads_before for r in report.layers)
