"""Model loading, dtypes, the byte tokenizer and the tiny test models."""

from __future__ import annotations

import pytest
import torch

from slimllm.models.loaders import (
    ModelNotAvailableError,
    byte_tokenizer,
    describe_model,
    load_model,
    parse_dtype,
    tiny_model,
)


@pytest.mark.parametrize(("name", "heads", "kv"), [("tiny-llama", 4, 4), ("tiny-gqa", 6, 2)])
def test_tiny_models_have_the_advertised_attention(name: str, heads: int, kv: int) -> None:
    model, tok = load_model(name)
    info = describe_model(model)
    assert (info["query_heads"], info["kv_heads"]) == (heads, kv)
    assert info["layers"] == 3
    ids = tok("pruning", return_tensors="pt").input_ids
    assert model(input_ids=ids).logits.shape == (1, ids.size(1), 259)


def test_tiny_model_is_seeded() -> None:
    a, b, c = (
        tiny_model("tiny-gqa", seed=1),
        tiny_model("tiny-gqa", seed=1),
        tiny_model("tiny-gqa", seed=2),
    )
    wa, wb, wc = (m.model.layers[0].self_attn.q_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_byte_tokenizer_round_trips_unicode() -> None:
    tok = byte_tokenizer()
    text = "Größe — 12 ≤ 13\n\nnext"
    ids = tok(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (256, 257, 258)


def test_load_model_dtype_and_names() -> None:
    model, _ = load_model("tiny-llama", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert parse_dtype("fp32") is torch.float32
    with pytest.raises(ValueError, match="dtype must be"):
        parse_dtype("int3")


@pytest.mark.parametrize("name", ["smolllm2", "not a model", "/no/such/dir"])
def test_bad_model_name_is_a_clear_error(name: str) -> None:
    with pytest.raises(ModelNotAvailableError, match="unknown model"):
        load_model(name)


def test_hub_id_offline_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="not in the local Hugging Face cache"):
        load_model("huggyllama/llama-7b")


@pytest.mark.slow
def test_smollm2_loads_from_the_embedded_gguf() -> None:
    model, tok = load_model("smollm2-135m")
    info = describe_model(model)
    assert (info["layers"], info["query_heads"], info["kv_heads"], info["hidden_size"]) == (
        30,
        9,
        3,
        576,
    )
    assert getattr(model, "hf_quantizer", None) is None
    assert "quantization_config" not in model.config.to_dict()
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.size(1) :])
