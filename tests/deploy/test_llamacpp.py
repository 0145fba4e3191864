"""Timing an exported GGUF in llama.cpp (`measure_serving`): the protocol's phases, token counts
and interleaving, on tiny-gqa with short lengths."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from slimllm.deploy.gguf import export_gguf
from slimllm.models.loaders import byte_tokenizer, tiny_model


@pytest.fixture(scope="module")
def llamacpp() -> ModuleType:
    """`slimllm.deploy.llamacpp`, or a skip where the llama.cpp runtime wheel is missing."""
    return pytest.importorskip(
        "slimllm.deploy.llamacpp", reason="the llama.cpp runtime wheel (xllamacpp) is missing"
    )


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "tiny.gguf"
    return export_gguf(tiny_model("tiny-gqa"), out, type="q8_0", tokenizer=byte_tokenizer()).path


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("new_tokens", 0, "new_tokens must be >= 1"),
        ("warmup", -1, "warmup must be >= 0"),
        ("batches", (), "batches must name at least one"),
        ("batches", (1, 0), "decode_batch must be >= 1, got 0"),
        ("threads", 0, "threads must be >= 1"),
    ],
)
def test_spec_is_validated(llamacpp: ModuleType, field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        llamacpp.measure_serving({"m": "unused.gguf"}, 259, llamacpp.ServingSpec(**{field: value}))


def test_slot_context_fits_both_requests(llamacpp: ModuleType) -> None:
    assert llamacpp.ServingSpec().slot_context() == 288  # 32-token prompt + 256 new tokens
    assert llamacpp.ServingSpec(new_tokens=8).slot_context() == 257  # 256 prompt + 1 new token


def test_measure_serving_times_every_phase(llamacpp: ModuleType, tiny_gguf: Path) -> None:
    spec = llamacpp.ServingSpec(
        prefill_len=12, decode_prompt_len=5, new_tokens=6, batches=(1, 3), repeats=2
    )
    result = llamacpp.measure_serving({"a": tiny_gguf, "b": tiny_gguf}, 259, spec, progress=False)
    assert result["server"]["slots"] == 3
    assert list(result["models"]) == ["a", "b"]
    for phases in result["models"].values():
        assert list(phases) == ["prefill", "decode_b1", "decode_b3"]
        assert [phases[p]["tokens"] for p in phases] == [12, 6, 18]
        for timing in phases.values():
            assert len(timing["samples"]) == len(timing["times"]) == 2
            assert 0 < timing["min"] <= timing["median"] <= timing["max"]
            assert timing["cpu_median"] >= 0 and timing["server_ms_median"] > 0
