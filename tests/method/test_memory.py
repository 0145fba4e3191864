"""The streaming prune's device-memory estimate: how its terms scale, that the layer's weights
are a real layer's, and that it matches the tensors measured alive while a small LLaMA's layers
are pruned on the CPU."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM, PretrainedConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

from slimllm.method.calibration import LayerHome
from slimllm.method.config import PruneConfig
from slimllm.method.memory import CUDA_CONTEXT_BYTES, streaming_peak_bytes, streaming_phases
from slimllm.method.pruner import prune
from slimllm.models.loaders import byte_tokenizer
from slimllm.models.reference_configs import REFERENCE_CONFIGS
from tests.helpers import write_novels

#: Terms that grow with the calibration tokens; every other term does not.
TOKEN_TERMS = {
    "o_proj_inputs",
    "o_proj_outputs",
    "o_proj_inputs_joined",
    "attention_outputs",
    "pruned_o_proj_inputs",
    "down_proj_inputs",
    "down_proj_outputs",
    "pruned_down_proj_inputs",
    "fit_outputs",
}


def small_llama(kv_heads: int = 4) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=259,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        bos_token_id=256,
        eos_token_id=257,
        pad_token_id=258,
        initializer_range=0.08,
    )


def llama_7b() -> PretrainedConfig:
    return AutoConfig.for_model(**REFERENCE_CONFIGS["huggyllama/llama-7b"])


def test_token_terms_double_with_the_windows_and_nothing_else_does() -> None:
    one = streaming_phases(llama_7b(), PruneConfig(), torch.bfloat16, None)
    two = streaming_phases(llama_7b(), PruneConfig(calib_samples=64), torch.bfloat16, None)
    for phase, terms in one.items():
        for name, value in terms.items():
            if name in TOKEN_TERMS:
                assert two[phase][name] == 2 * value > 0, (phase, name)
            elif name != "batch_forward":
                assert two[phase][name] == value, (phase, name)
    # Batches of 8 windows: only the number of batches grows, not what one batch holds.
    assert two["mlp_forward"]["batch_forward"] == one["mlp_forward"]["batch_forward"]


def test_float32_forwards_add_a_work_copy_and_double_the_activations() -> None:
    bf16 = streaming_phases(llama_7b(), PruneConfig(), torch.bfloat16, None)["mlp_statistics"]
    f32 = streaming_phases(llama_7b(), PruneConfig(), torch.bfloat16, torch.float32)
    mlp = f32["mlp_statistics"]
    assert bf16["work_copy"] == 0
    assert mlp["work_copy"] == 2 * mlp["layer_weights"] == 2 * bf16["layer_weights"]
    assert mlp["down_proj_inputs"] == 2 * bf16["down_proj_inputs"]
    assert mlp["mlp_statistics"] == bf16["mlp_statistics"]


@pytest.mark.parametrize("name", ["huggyllama/llama-7b", "meta-llama/Llama-2-70b-hf"])
def test_layer_weights_are_a_decoder_layers_parameters(name: str) -> None:
    config = AutoConfig.for_model(**REFERENCE_CONFIGS[name])
    with torch.device("meta"):
        layer = LlamaDecoderLayer(config, 0)
    params = sum(p.numel() for p in layer.parameters())
    terms = streaming_peak_bytes(config, PruneConfig(), torch.bfloat16, None)
    assert terms["layer_weights"] == 2 * params


def test_the_peak_is_the_largest_phase_plus_the_cuda_context() -> None:
    phases = streaming_phases(llama_7b(), PruneConfig(), torch.bfloat16, None)
    peak = streaming_peak_bytes(llama_7b(), PruneConfig(), torch.bfloat16, None)
    largest = max(sum(t.values()) for t in phases.values())
    assert peak["cuda_context"] == CUDA_CONTEXT_BYTES
    assert peak["total"] == largest + CUDA_CONTEXT_BYTES
    assert peak["total"] == sum(v for k, v in peak.items() if k != "total")


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages made while it is open (or `watch`ed) that are still alive,
    and their peak: every op's outputs are watched, and a storage counts until it is freed."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.now = 0
        self.peak = 0

    def watch(self, tensor: object) -> None:
        if not isinstance(tensor, Tensor) or tensor.device.type == "meta":
            return
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self.live:
            return
        self.live[key] = storage.nbytes()
        self.now += storage.nbytes()
        self.peak = max(self.peak, self.now)
        # A storage's Python object lives as long as the storage does, so this runs when it goes.
        weakref.finalize(storage, self._drop, key)

    def _drop(self, key: int) -> None:
        self.now -= self.live.pop(key)

    def __torch_dispatch__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self.watch(tensor)
        return out


class MeasuredHome(LayerHome):
    """Layers in the model, as the default home keeps them, with the bytes alive during each
    visit measured: the layer's weights and what the visit makes. The hidden states entering
    the layer are not counted (a GPU run keeps them in CPU memory); the outputs it hands on
    are, though a GPU run moves them there too, but they are made after the peak. `peaks` has
    one entry per layer of the pruning walk."""

    def __init__(self) -> None:
        super().__init__()
        self.peaks: list[int] = []

    def fetch(self, index: int, layer: nn.Module, device: torch.device) -> None:
        super().fetch(index, layer, device)
        self.mode = LiveBytes()
        self.mode.__enter__()
        for param in layer.parameters():
            self.mode.watch(param)

    def release(self, index: int, layer: nn.Module, final: bool) -> None:
        self.mode.__exit__(None, None, None)
        if final:
            self.peaks.append(self.mode.peak)
        super().release(index, layer, final)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    words = "a lantern swung over the harbour while gulls argued about bread " * 400
    return str(write_novels(tmp_path_factory.mktemp("data"), words))


def measured_peak(
    config: LlamaConfig, prune_config: PruneConfig, dtype: torch.dtype, data_dir: str
) -> int:
    """The largest of the bytes alive while each layer of a seeded random model is pruned."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval().to(dtype)
    home = MeasuredHome()
    prune(model, byte_tokenizer(), prune_config, data_dir=data_dir, progress=False, home=home)
    assert len(home.peaks) == config.num_hidden_layers
    return max(home.peaks)


# Every layer pruned. 32 windows of 128 tokens: the stored activations lead; 4 of 16: the
# weights and the float64 statistics do.
CASES = {
    "32x128": (small_llama(), PruneConfig(calib_samples=32, calib_seq_len=128), torch.float32),
    "4x16": (small_llama(), PruneConfig(calib_samples=4, calib_seq_len=16), torch.float32),
    "bf16-weights-f32-forwards-4x16": (
        small_llama(),
        PruneConfig(calib_samples=4, calib_seq_len=16, calib_dtype="float32"),
        torch.bfloat16,
    ),
    "gqa-2x16": (small_llama(2), PruneConfig(calib_samples=2, calib_seq_len=16), torch.float32),
}


@pytest.mark.parametrize("case", CASES)
def test_estimate_matches_the_bytes_measured_alive_on_the_cpu(case: str, data_dir: str) -> None:
    config, prune_config, dtype = CASES[case]
    prune_config = replace(prune_config, ratio=0.3, ratio_of="decoder", num_pruned_layers=4)
    measured = measured_peak(config, prune_config, dtype, data_dir)
    calib = None if prune_config.calib_dtype is None else getattr(torch, prune_config.calib_dtype)
    terms = streaming_peak_bytes(config, prune_config, dtype, calib)
    # The CPU has no CUDA context; the rest is meant as the tensors alive at the peak.
    estimate = terms["total"] - terms["cuda_context"]
    assert 0.85 <= measured / estimate <= 1.15, (measured, estimate)


def test_live_bytes_counts_new_storages_until_they_are_freed() -> None:
    with LiveBytes() as mode:
        a = torch.zeros(1000)
        b = torch.ones(2000)
        del a, b
        c = torch.ones(500)
        view = c[:10]
    assert (mode.peak, mode.now) == (12000, 2000)
    del c, view
    assert mode.now == 0
