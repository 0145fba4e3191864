"""GGUF export: metadata, Q/K permutation, q8_0 fallback, refusals, atomic writes, the CLI, and
llama.cpp itself (through the xllamacpp wheel) agreeing with transformers on the exported file."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from torch import nn
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from slimllm.cli import main
from slimllm.deploy.gguf import (
    GGUF_TYPES,
    INERT_MERGE,
    Q8_BLOCK,
    export_gguf,
    layer_specs,
    permute_rope,
    pre_tokenizer_name,
)
from slimllm.models.adapters import get_adapter
from slimllm.models.io import save_pruned
from slimllm.models.loaders import byte_tokenizer, tiny_model
from tests.helpers import pruned_gqa

RECORD = {"method": "slimllm", "model": "tiny-gqa", "target": 0.3, "achieved": 0.31}
PROMPTS = (
    "The quick brown fox jumps over",
    "In 1998, revenue grew 12%.",
    "Hello\n\nworld  é ü 中文",
)
HEAD_DIM = 16


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "pruned"
    return save_pruned(pruned_gqa(), byte_tokenizer(), out, RECORD)


@pytest.fixture(scope="module")
def exported(pruned_dir: Path) -> dict[str, Any]:
    """The pruned folder exported once per type: {type: ExportResult}."""
    return {t: export_gguf(pruned_dir, pruned_dir.parent / f"{t}.gguf", type=t) for t in GGUF_TYPES}


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


def test_permute_rope_is_the_interleaving_formula() -> None:
    n_heads, rows_per_head, cols = 3, 8, 5
    weight = np.random.default_rng(0).normal(size=(n_heads * rows_per_head, cols))
    out = permute_rope(weight, n_heads)
    half = rows_per_head // 2
    for h in range(n_heads):
        for j in range(half):
            # llama.cpp rotates rows (2j, 2j+1) of a head; transformers rotates (j, j + half).
            np.testing.assert_array_equal(
                out[h * rows_per_head + 2 * j], weight[h * rows_per_head + j]
            )
            np.testing.assert_array_equal(
                out[h * rows_per_head + 2 * j + 1], weight[h * rows_per_head + half + j]
            )
    np.testing.assert_array_equal(permute_rope(weight[:, 0], n_heads), out[:, 0])  # a bias
    with pytest.raises(ValueError, match="even"):
        permute_rope(weight[:9], 3)


def test_per_layer_metadata_and_record(exported: dict[str, Any]) -> None:
    reader = gguf.GGUFReader(exported["f32"].path)
    assert _field(reader, "general.architecture") == "deci"
    assert _field(reader, "deci.attention.head_count") == [4, 2, 6]
    assert _field(reader, "deci.attention.head_count_kv") == [2, 1, 2]
    assert _field(reader, "deci.feed_forward_length") == [96, 48, 40]
    for key in ("attention.key_length", "attention.value_length", "rope.dimension_count"):
        assert _field(reader, f"deci.{key}") == HEAD_DIM
    assert _field(reader, "deci.block_count") == 3
    assert json.loads(_field(reader, "general.slimllm.record")) == RECORD
    assert "pruned by slimllm" in _field(reader, "general.description")
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _field(reader, "tokenizer.ggml.merges") == [INERT_MERGE]
    assert _field(reader, "tokenizer.ggml.bos_token_id") == 256
    names = {t.name for t in reader.tensors}
    assert {"blk.0.attn_output.bias", "blk.2.ffn_down.bias"} <= names
    assert not {"blk.1.attn_output.bias", "blk.0.ffn_down.bias"} & names
    assert "output.weight" in names  # tiny-gqa does not tie its embeddings


def test_q_and_k_are_permuted_with_each_layers_heads(exported: dict[str, Any]) -> None:
    model = pruned_gqa()
    adapter = get_adapter(model)
    tensors = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(exported["f32"].path).tensors}
    for i, (layer, spec) in enumerate(zip(adapter.layers(model), layer_specs(model), strict=True)):
        proj = adapter.attention_projections(layer)
        for name, linear, heads in (
            ("q", proj.q, spec.num_heads),
            ("k", proj.k, spec.num_kv_heads),
        ):
            expected = permute_rope(linear.weight.detach().numpy(), heads)
            np.testing.assert_array_equal(tensors[f"blk.{i}.attn_{name}.weight"], expected)


def test_tied_embeddings_write_no_output_weight(tmp_path: Path) -> None:
    model = tiny_model("tiny-llama", tie_word_embeddings=True)
    model.tie_weights()
    result = export_gguf(model, tmp_path / "tied.gguf", tokenizer=byte_tokenizer())
    names = {t.name for t in gguf.GGUFReader(result.path).tensors}
    assert "token_embd.weight" in names
    assert "output.weight" not in names


def test_q8_0_keeps_rows_not_divisible_by_32_in_f16(exported: dict[str, Any]) -> None:
    result = exported["q8_0"]
    reader = gguf.GGUFReader(result.path)
    expected = sorted(
        t.name for t in reader.tensors if len(t.shape) == 2 and int(t.shape[0]) % Q8_BLOCK
    )
    # Layer 1: 2 heads x 16 = 32 wide o_proj input is fine; 48 MLP channels and layer 2's 40 not.
    assert expected == ["blk.1.ffn_down.weight", "blk.2.ffn_down.weight"]
    assert sorted(result.kept_f16) == expected
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert all(types[n] == gguf.GGMLQuantizationType.F16 for n in expected)
    assert types["blk.0.ffn_down.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.2.ffn_down.bias"] == gguf.GGMLQuantizationType.F32
    assert exported["f16"].kept_f16 == exported["f32"].kept_f16 == []
    assert result.bytes < exported["f16"].bytes < exported["f32"].bytes


def test_refuses_gemma3_naming_the_layer(tmp_path: Path) -> None:
    config = Gemma3TextConfig(
        vocab_size=259, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    )  # fmt: skip
    with pytest.raises(ValueError, match="layer 0: Gemma 3"):
        export_gguf(Gemma3ForCausalLM(config), tmp_path / "g.gguf", tokenizer=byte_tokenizer())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ("q_proj", "layer 1 keeps no attention heads"),
        ("gate_proj", "layer 1 keeps no MLP channels"),
    ],
)
def test_refuses_an_empty_layer(part: str, reason: str) -> None:
    model = tiny_model("tiny-gqa")
    layer = get_adapter(model).layers(model)[1]
    owner = layer.self_attn if part == "q_proj" else layer.mlp
    setattr(owner, part, nn.Linear(96, 0, bias=False))
    with pytest.raises(ValueError, match=reason):
        layer_specs(model)


def test_pre_tokenizer_names() -> None:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    base = {"model": {"type": "BPE", "merges": ["a b"]}, "decoder": {"type": "ByteLevel"}}
    assert pre_tokenizer_name({**base, "pre_tokenizer": byte_level}) == "gpt-2"
    digits = {"type": "Digits", "individual_digits": True}
    sequence = {"type": "Sequence", "pretokenizers": [digits, byte_level]}
    assert pre_tokenizer_name({**base, "pre_tokenizer": sequence}) == "smollm"
    with pytest.raises(ValueError, match="no exact llama"):
        pre_tokenizer_name({**base, "pre_tokenizer": {**byte_level, "use_regex": False}})
    with pytest.raises(ValueError, match="byte-level BPE"):
        pre_tokenizer_name({"model": {"type": "Unigram"}, "decoder": {"type": "Metaspace"}})


def test_write_is_atomic(pruned_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="exists"):
        export_gguf(pruned_dir, out)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", fail)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(pruned_dir, out, overwrite=True)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]


def test_cli_export(pruned_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.gguf"
    assert main(["export", str(pruned_dir), "--gguf", str(out), "--type", "q8_0"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (q8_0" in printed
    assert "blk.1.ffn_down.weight" in printed
    assert main(["export", str(pruned_dir), "--gguf", str(out)]) == 2
    assert main(["export", str(tmp_path / "missing"), "--gguf", str(tmp_path / "x.gguf")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("slimllm export: error:") and "exists" in errors[0]
    assert "missing is not a directory" in errors[1]


# --- llama.cpp itself ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llamacpp() -> ModuleType:
    """`slimllm.deploy.llamacpp`, or a skip where the llama.cpp runtime wheel is missing."""
    return pytest.importorskip(
        "slimllm.deploy.llamacpp", reason="the llama.cpp runtime wheel (xllamacpp) is missing"
    )


def _top_logprobs(llamacpp: ModuleType, srv: Any, ids: list[int], k: int) -> dict[int, float]:
    """Next-token log-probs of the top k after `ids`, from llama.cpp's raw logits. A plain ASCII
    token is forced: a partial UTF-8 byte would be held back with its probabilities."""
    chosen = llamacpp.forced_token(srv, ids, ids[0], k, cache_prompt=False)
    return {t["id"]: t["logprob"] for t in chosen["top_logprobs"]}


def _reference(model: nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)


@pytest.fixture(scope="module")
def dense_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dense") / "dense.gguf"
    return export_gguf(tiny_model("tiny-gqa"), out, tokenizer=byte_tokenizer()).path


@pytest.mark.parametrize("which", ["pruned", "dense"])
def test_llama_cpp_matches_transformers(
    which: str, exported: dict[str, Any], dense_gguf: Path, llamacpp: ModuleType
) -> None:
    path, model = (
        (exported["f32"].path, pruned_gqa())
        if which == "pruned"
        else (dense_gguf, tiny_model("tiny-gqa"))
    )
    srv = llamacpp.server(path)
    tokenizer = byte_tokenizer()
    for prompt in PROMPTS:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert llamacpp.tokenize(srv, prompt) == ids
        got = _top_logprobs(llamacpp, srv, ids, k=10)
        reference = _reference(model, ids)
        assert list(got) == torch.topk(reference, 10).indices.tolist()
        assert max(abs(lp - reference[i].item()) for i, lp in got.items()) < 1e-4


@pytest.mark.parametrize("kind", ["f16", "q8_0"])
def test_llama_cpp_runs_reduced_precision(
    kind: str, exported: dict[str, Any], llamacpp: ModuleType
) -> None:
    srv = llamacpp.server(exported[kind].path)
    model = pruned_gqa()
    ids = byte_tokenizer()(PROMPTS[0], add_special_tokens=False)["input_ids"]
    got = _top_logprobs(llamacpp, srv, ids, k=5)
    reference = _reference(model, ids)
    assert next(iter(got)) == int(reference.argmax())
    assert max(abs(lp - reference[i].item()) for i, lp in got.items()) < 0.05
