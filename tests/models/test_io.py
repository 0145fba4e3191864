"""Saving and re-loading pruned models: exact round trips, transformers loading, atomic writes."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from slimllm.models import modeling_slimllm, surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned, save_pruned, weights_digest
from slimllm.models.loaders import byte_tokenizer, tiny_model
from tests.helpers import add_regression_bias, pruned_gqa

IDS = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))
RECORD = {"method": "slimllm", "ratio": {"target": 0.2, "achieved": 0.198}, "seed": 0}


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    model = pruned_gqa()
    out = save_pruned(model, byte_tokenizer(), tmp_path_factory.mktemp("io") / "pruned", RECORD)
    return out, model


def _layouts(model: nn.Module) -> list[dict[str, Any]]:
    adapter = get_adapter(model)
    return [surgery.layer_layout(layer, adapter).to_dict() for layer in adapter.layers(model)]


def test_load_pruned_round_trip(saved: tuple[Path, nn.Module]) -> None:
    out, model = saved
    loaded, tokenizer = load_pruned(out)
    assert torch.equal(_logits(loaded), _logits(model))
    assert loaded.dtype == torch.float32 and not loaded.training
    assert _layouts(loaded) == _layouts(model)
    first = get_adapter(loaded).layers(loaded)[0]
    assert isinstance(first.slimllm_layout, surgery.LayerLayout)
    assert first.slimllm_layout.kept_heads == [0, 2, 3, 5]
    assert first.self_attn.o_proj.bias is not None
    assert loaded.config.slimllm["record"] == RECORD
    assert tokenizer("abc")["input_ids"] == byte_tokenizer()("abc")["input_ids"]


def test_auto_model_with_remote_code(saved: tuple[Path, nn.Module]) -> None:
    out, model = saved
    loaded = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    assert type(loaded).__name__ == "SlimLlamaForCausalLM"
    assert torch.equal(_logits(loaded), _logits(model))
    assert _layouts(loaded) == _layouts(model)
    generated = loaded.generate(IDS, max_new_tokens=3, do_sample=False, pad_token_id=258)
    assert generated.shape == (2, IDS.shape[1] + 3)


def test_plain_auto_model_refuses_pruned_shapes(saved: tuple[Path, nn.Module]) -> None:
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        AutoModelForCausalLM.from_pretrained(saved[0])


def test_saved_folder(saved: tuple[Path, nn.Module]) -> None:
    out, model = saved
    assert {"config.json", "model.safetensors", "modeling_slimllm.py", "tokenizer.json"} <= {
        p.name for p in out.iterdir()
    }
    config = AutoConfig.from_pretrained(out)  # no remote code needed for the config
    assert isinstance(config, LlamaConfig)
    assert config.auto_map["AutoModelForCausalLM"] == "modeling_slimllm.SlimLlamaForCausalLM"
    raw = json.loads((out / "config.json").read_text())["slimllm"]
    assert raw["format"] == 1 and raw["record"] == RECORD and raw["layers"] == _layouts(model)
    with safe_open(out / "model.safetensors", "pt") as weights:
        assert tuple(weights.get_tensor("model.layers.1.self_attn.k_proj.weight").shape) == (16, 96)
        assert weights.get_tensor("model.layers.2.mlp.down_proj.bias").shape == (96,)
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())
    assert raw["weights_sha256"] == weights_digest(out)


def test_the_remote_code_is_the_package_file_byte_for_byte(saved: tuple[Path, nn.Module]) -> None:
    """What trust_remote_code=True runs is exactly this package's modeling_slimllm.py."""
    out, _ = saved
    package_copy = Path(modeling_slimllm.__file__).read_bytes()
    assert (out / "modeling_slimllm.py").read_bytes() == package_copy
    tree = ast.parse(package_copy)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m.split(".")[0] for m in imported} <= {
        "__future__",
        "collections",
        "typing",
        "torch",
        "transformers",
    }


def test_load_pruned_rejects_plain_checkpoint(tmp_path: Path) -> None:
    tiny_model("tiny-llama").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a slimllm pruned model"):
        load_pruned(tmp_path)


def test_load_pruned_is_strict(saved: tuple[Path, nn.Module], tmp_path: Path) -> None:
    copy = shutil.copytree(saved[0], tmp_path / "copy")
    config = json.loads((copy / "config.json").read_text())
    config["slimllm"]["layers"][0]["o_proj_bias"] = False  # the file still holds that bias
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"o_proj\.bias"):
        load_pruned(copy)


def test_prune_again_after_loading(saved: tuple[Path, nn.Module], tmp_path: Path) -> None:
    loaded, tokenizer = load_pruned(saved[0])
    adapter = get_adapter(loaded)
    layer = adapter.layers(loaded)[0]
    surgery.prune_attention_heads(layer, adapter, [2, 3])  # positions of heads 3 and 5
    assert layer.slimllm_layout.kept_heads == [3, 5]
    assert layer.slimllm_layout.kept_kv_groups == [1]
    again, _ = load_pruned(save_pruned(loaded, tokenizer, tmp_path / "again", RECORD))
    assert torch.equal(_logits(again), _logits(loaded))


def test_refuses_non_empty_dir_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    model = tiny_model("tiny-llama")
    with pytest.raises(FileExistsError, match="overwrite"):
        save_pruned(model, byte_tokenizer(), out, RECORD)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    save_pruned(model, byte_tokenizer(), out, RECORD, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("existing", [False, True])
def test_failed_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "old.txt").write_text("previous run")
    tokenizer = byte_tokenizer()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(tiny_model("tiny-llama"), tokenizer, out, RECORD, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == (["out"] if existing else [])
    if existing:
        assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_bad_record_or_model_type_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_pruned(tiny_model("tiny-llama"), byte_tokenizer(), tmp_path / "a", {"x": object()})
    model = tiny_model("tiny-llama")
    model.config.model_type = "gemma3"  # multimodal Gemma 3 has no pruned class
    with pytest.raises(ValueError, match="not supported"):
        save_pruned(model, byte_tokenizer(), tmp_path / "b", RECORD)
    assert not any(tmp_path.iterdir())


def test_gguf_quantizer_is_detached(tmp_path: Path) -> None:
    model = tiny_model("tiny-llama")
    calls = []

    class FakeQuantizer:
        def remove_quantization_config(self, target: nn.Module) -> None:
            calls.append(target)
            del target.hf_quantizer

    model.hf_quantizer = FakeQuantizer()
    save_pruned(model, byte_tokenizer(), tmp_path / "out", RECORD)
    assert calls == [model]


def _random_init(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.08)
    return model.eval()


SIZES = {"vocab_size": 259, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2}
HEADS = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}


@pytest.mark.parametrize("family", ["qwen2", "gemma3_text"])
def test_other_families_round_trip(family: str, tmp_path: Path) -> None:
    # Qwen2 has q/k/v biases to slice; Gemma 3 ties lm_head to the embeddings.
    if family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**SIZES, **HEADS))
    else:
        model = Gemma3ForCausalLM(Gemma3TextConfig(**SIZES, **HEADS, sliding_window=4))
    model = _random_init(model)
    adapter = get_adapter(model)
    first, second = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [1, 3])
    surgery.prune_attention_heads(second, adapter, [2, 3])
    surgery.prune_mlp_channels(second, adapter, range(0, 96, 4))
    add_regression_bias(adapter.mlp_projections(second).down, 3)
    out = save_pruned(model, byte_tokenizer(), tmp_path / family, RECORD)
    expected = _logits(model)
    assert torch.equal(_logits(load_pruned(out)[0]), expected)
    remote = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    assert torch.equal(_logits(remote), expected)
