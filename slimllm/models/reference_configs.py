"""The config.json of the paper's models, for work that needs their shapes but not their weights.

`config_of` gives any model's config without loading weights: a tiny model's, an embedded
model's, a folder's, a hub id's from the local Hugging Face cache, and, where that cache does
not hold it, the copy below (so a plan for LLaMA-7B resolves on a machine that never downloaded
it). A model built from such a config on the meta device has the real parameter count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from slimllm.models.loaders import EMBEDDED, TINY, convert_embedded, tiny_model

_LLAMA_V1 = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_act": "silu",
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "tie_word_embeddings": False,
    "initializer_range": 0.02,
    "torch_dtype": "float16",
}

#: huggyllama/llama-7b and llama-13b's config.json (the LLaMA-1 checkpoints the lineage prunes),
#: and meta-llama/Llama-2-70b-hf's (grouped-query attention, 8 KV heads), for the memory estimate.
REFERENCE_CONFIGS: dict[str, dict[str, Any]] = {
    "huggyllama/llama-7b": {
        **_LLAMA_V1,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
    },
    "huggyllama/llama-13b": {
        **_LLAMA_V1,
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
    },
    # The gated original was not read: these are the values of its copies on the hub, e.g.
    # huggingface.co/TheBloke/Llama-2-70B-fp16/blob/refs%2Fpr%2F6/config.json, whose
    # _name_or_path is meta-llama/Llama-2-70b-hf.
    "meta-llama/Llama-2-70b-hf": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "torch_dtype": "float16",
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
    },
}


def config_of(name: str) -> tuple[PretrainedConfig, str]:
    """The config of the model `name` (as `load_model` takes it) and where it came from,
    without reading any weights."""
    if name in TINY:
        return tiny_model(name).config, "slimllm.models.loaders.tiny_model"
    if name in EMBEDDED:
        folder = convert_embedded(name)
        return AutoConfig.from_pretrained(folder), f"{folder}/config.json"
    if Path(name).exists():
        return AutoConfig.from_pretrained(name), f"{name}/config.json"
    try:
        return AutoConfig.from_pretrained(name), "the local Hugging Face cache"
    except OSError:
        if name not in REFERENCE_CONFIGS:
            raise
    return AutoConfig.for_model(**REFERENCE_CONFIGS[name]), (
        f"slimllm.models.reference_configs ({name}'s config.json, copied)"
    )
