"""GGUF export for llama.cpp: pruned layers keep their own head counts and widths.

llama.cpp's `deci` architecture (Nemotron-NAS) reads `head_count`, `head_count_kv` and
`feed_forward_length` as per-layer arrays and loads optional `attn_output.bias` and
`ffn_down.bias`, which are exactly the shapes and the regression biases a SlimLLM model has.
Everything else follows llama.cpp's LLaMA conversion: Q and K rows are permuted from the
half-split rotary layout of transformers to llama.cpp's interleaved pairs (per layer, with that
layer's own head counts), and the byte-level BPE tokenizer is written with its merges, special
tokens and chat template.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.models.adapters import ModelAdapter, get_adapter
from slimllm.models.io import load_pruned
from slimllm.models.loaders import load_model

ARCH = "deci"
GGUF_TYPES = ("f32", "f16", "q8_0")
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}
#: Elements per q8_0 block: a row must be a whole number of blocks.
Q8_BLOCK = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]
#: Model families whose decoder layer is LLaMA's (norm, attention, norm, SwiGLU MLP).
LLAMA_TYPES = ("llama", "mistral", "qwen2")
#: A merge whose halves are two-character symbols never fires when it is the only merge (BPE
#: starts from single characters), yet llama.cpp refuses a BPE vocabulary without merges.
INERT_MERGE = "ĀĀ ĀĀ"


@dataclass(frozen=True)
class LayerSpec:
    """What llama.cpp must know of one decoder layer."""

    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int


@dataclass
class ExportResult:
    """Where the GGUF went and what it holds; `kept_f16` names the tensors that a q8_0 export
    left in f16 because their rows are not a whole number of 32-element blocks."""

    path: Path
    type: str
    tensors: int
    bytes: int
    kept_f16: list[str] = field(default_factory=list)


def permute_rope(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder Q or K projection rows (or bias) from transformers' rotary layout, where each head
    rotates its first half against its second, to llama.cpp's, which rotates adjacent pairs."""
    rows = weight.shape[0]
    if n_heads < 1 or rows % (2 * n_heads):
        raise ValueError(f"cannot split {rows} rows into {n_heads} heads of even size")
    half = rows // n_heads // 2
    return weight.reshape(n_heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def layer_specs(model: PreTrainedModel) -> list[LayerSpec]:
    """Per-layer shapes of a LLaMA-family model, or ValueError naming the layer (or the model
    setting) that llama.cpp's `deci` architecture cannot express."""
    config = model.config
    adapter = get_adapter(model)
    if adapter.name == "gemma3":
        raise ValueError(
            "layer 0: Gemma 3 layers have q/k norms and pre/post-feedforward norms (and scale the "
            "embeddings) that llama.cpp's deci architecture has no tensors for"
        )
    if config.model_type not in LLAMA_TYPES:
        raise ValueError(f"model_type {config.model_type!r} is not a LLaMA-family model")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {config.hidden_act!r}: deci's MLP is SwiGLU (silu)")
    scaling = getattr(config, "rope_scaling", None) or {}
    if scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise ValueError(f"rope scaling {scaling} is not exported (only plain RoPE)")
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        raise ValueError(f"sliding-window attention ({config.sliding_window}) is not exported")
    specs = []
    for index, layer in enumerate(adapter.layers(model)):
        shape = adapter.attention_shape(layer)
        spec = LayerSpec(
            shape.num_heads, shape.num_kv_heads, shape.head_dim, adapter.intermediate_size(layer)
        )
        if spec.num_heads == 0 or spec.num_kv_heads == 0:
            raise ValueError(
                f"layer {index} keeps no attention heads; llama.cpp's deci treats such a layer "
                "as attention-free and would drop its o_proj bias (and with layer 0, the head size)"
            )
        if spec.intermediate_size == 0:
            raise ValueError(
                f"layer {index} keeps no MLP channels; llama.cpp's deci skips such a layer "
                "entirely, attention included"
            )
        if spec.num_heads % spec.num_kv_heads:
            raise ValueError(
                f"layer {index}: {spec.num_heads} query heads do not divide into "
                f"{spec.num_kv_heads} key/value heads"
            )
        specs.append(spec)
    if len({s.head_dim for s in specs}) != 1:
        raise ValueError("layers differ in head size; GGUF has one key_length for all layers")
    return specs


def storage_type(name: str, shape: tuple[int, ...], type: str) -> gguf.GGMLQuantizationType:
    """The GGML type a tensor is stored in: 1-D tensors (norms, biases) in f32 as llama.cpp's
    converter does; matrices in `type`, except q8_0 rows not divisible by 32, which fall back to
    f16."""
    if type not in GGUF_TYPES:
        raise ValueError(f"type must be one of {GGUF_TYPES}, got {type!r}")
    if len(shape) == 1 or type == "f32":
        return gguf.GGMLQuantizationType.F32
    if type == "q8_0" and shape[-1] % Q8_BLOCK == 0:
        return gguf.GGMLQuantizationType.Q8_0
    return gguf.GGMLQuantizationType.F16


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def model_tensors(model: PreTrainedModel, specs: list[LayerSpec]) -> dict[str, np.ndarray]:
    """GGUF tensor name -> float32 array (transformers' [out, in] layout, Q/K permuted)."""
    adapter: ModelAdapter = get_adapter(model)
    decoder = adapter.decoder(model)
    embed = adapter.embeddings(model).weight
    tensors = {
        "token_embd.weight": _numpy(embed),
        "output_norm.weight": _numpy(decoder.norm.weight),
    }
    head = model.get_output_embeddings().weight
    # Tied embeddings: llama.cpp reuses token_embd when output.weight is absent.
    if head.data_ptr() != embed.data_ptr():
        tensors["output.weight"] = _numpy(head)
    for i, (layer, spec) in enumerate(zip(adapter.layers(model), specs, strict=True)):
        attn, mlp = adapter.attention_projections(layer), adapter.mlp_projections(layer)
        heads = {"attn_q": spec.num_heads, "attn_k": spec.num_kv_heads}
        parts = {
            "attn_norm": layer.input_layernorm,
            "ffn_norm": layer.post_attention_layernorm,
            "attn_q": attn.q,
            "attn_k": attn.k,
            "attn_v": attn.v,
            "attn_output": attn.o,
            "ffn_gate": mlp.gate,
            "ffn_up": mlp.up,
            "ffn_down": mlp.down,
        }
        for name, module in parts.items():
            for kind in ("weight", "bias"):
                param = getattr(module, kind, None)
                if param is None:
                    continue
                array = _numpy(param)
                if name in heads:
                    array = permute_rope(array, heads[name])
                tensors[f"blk.{i}.{name}.{kind}"] = array
    return tensors


def pre_tokenizer_name(tokenizer_json: Mapping[str, Any]) -> str:
    """llama.cpp's name for the pre-tokenizer of a byte-level BPE tokenizer.json, or ValueError.

    Only forms whose splitting llama.cpp reproduces exactly are accepted: GPT-2's regex
    (`gpt-2`), digits split one by one before it (`smollm`), and no regex with no merges (one
    token per byte, so the split cannot matter)."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE" or (tokenizer_json.get("decoder") or {}).get("type") != (
        "ByteLevel"
    ):
        raise ValueError("only byte-level BPE tokenizers are exported (no SentencePiece)")
    if tokenizer_json.get("normalizer"):
        raise ValueError(f"tokenizer normalizer {tokenizer_json['normalizer']} is not exported")
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    last = steps[-1]
    if kinds[-1] == "ByteLevel" and not last.get("add_prefix_space", False):
        digits = kinds[:-1] == ["Digits"] and steps[0].get("individual_digits")
        if len(kinds) == 1 and last.get("use_regex", True):
            return "gpt-2"
        if digits and last.get("use_regex", True):
            return "smollm"
        if len(kinds) == 1 and not model.get("merges"):
            return "gpt-2"
    raise ValueError(f"pre-tokenizer {json.dumps(pre)} has no exact llama.cpp equivalent")


def _adds(tokenizer: PreTrainedTokenizerBase, token_id: int | None, first: bool) -> bool:
    """Whether the tokenizer puts `token_id` first (or last) when adding special tokens."""
    if token_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    return len(ids) > len(plain) and ids[0 if first else -1] == token_id


def add_tokenizer(
    writer: gguf.GGUFWriter,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    vocab_size: int,
) -> None:
    """Tokens, types, merges, special token ids, add-BOS/EOS flags and the chat template."""
    tokenizer_json = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    pre = pre_tokenizer_name(tokenizer_json)
    vocab = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in vocab:
            # Rows past the tokenizer (embeddings padded to a round size) need a name.
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(vocab[i])
        if i in added:
            types.append(
                gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED
            )
        else:
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        special.merges = [INERT_MERGE]
    # Stated from the tokenizer's behaviour, so llama.cpp adds exactly what transformers adds.
    special.add_special_token["bos"] = _adds(tokenizer, tokenizer.bos_token_id, first=True)
    special.add_special_token["eos"] = _adds(tokenizer, tokenizer.eos_token_id, first=False)
    special.add_to_gguf(writer, quiet=True)


def _add_hparams(
    writer: gguf.GGUFWriter, model: PreTrainedModel, specs: list[LayerSpec], vocab_size: int
) -> None:
    config = model.config
    head_dim = specs[0].head_dim
    writer.add_block_count(len(specs))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_vocab_size(vocab_size)
    writer.add_feed_forward_length([s.intermediate_size for s in specs])
    writer.add_head_count([s.num_heads for s in specs])
    writer.add_head_count_kv([s.num_kv_heads for s in specs])
    # Explicit: llama.cpp otherwise derives the head size from hidden_size / layer 0's heads.
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    theta = getattr(config, "rope_theta", None) or (config.rope_parameters or {}).get("rope_theta")
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)


def _add_record(writer: gguf.GGUFWriter, name: str, record: Mapping[str, Any] | None) -> None:
    writer.add_name(name)
    if record is None:
        writer.add_description("dense model exported by slimllm")
        return
    target, achieved = record.get("target"), record.get("achieved")
    writer.add_description(
        f"pruned by slimllm ({record.get('method', 'slimllm')}) from {record.get('model')}: "
        f"target {target}, achieved {achieved} of the parameters removed"
    )
    writer.add_string("general.slimllm.record", json.dumps(record, sort_keys=True))


def _source(
    source: str | os.PathLike[str] | PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    record: Mapping[str, Any] | None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Mapping[str, Any] | None, str]:
    if isinstance(source, PreTrainedModel):
        if tokenizer is None:
            raise ValueError("exporting a model object needs its tokenizer (tokenizer=...)")
        name = getattr(source.config, "name_or_path", "") or source.config.model_type
        return source, tokenizer, record, str(name)
    folder = Path(source)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json)")
    entry = json.loads(config_file.read_text()).get("slimllm")
    if entry is None:
        model, tok = load_model(str(folder))
    else:
        model, tok = load_pruned(folder)
        record = entry.get("record", record)
    return model, tok, record, folder.name


def export_gguf(
    source: str | os.PathLike[str] | PreTrainedModel,
    out_path: str | os.PathLike[str],
    type: str = "f32",
    tokenizer: PreTrainedTokenizerBase | None = None,
    record: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write a pruned or dense LLaMA-family model as a GGUF (`deci` architecture) and return
    what was written.

    source: a folder written by `slimllm.models.io.save_pruned` (its pruning record goes into
    `general.slimllm.record`), a dense model folder, or a model object with its `tokenizer`
    (and optionally a `record`). type: f32, f16 or q8_0 (rows not divisible by 32 stay f16 and
    are listed in `ExportResult.kept_f16`). The file is written beside `out_path` and renamed
    into place, so an error leaves nothing behind; an existing file raises FileExistsError
    unless `overwrite`. A model llama.cpp cannot run (Gemma 3, a layer without heads) raises
    ValueError naming the layer and the reason.
    """
    if type not in GGUF_TYPES:
        raise ValueError(f"type must be one of {GGUF_TYPES}, got {type!r}")
    out = Path(out_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True, or --overwrite, to replace it)")
    model, tok, record, name = _source(source, tokenizer, record)
    specs = layer_specs(model)
    vocab_size = get_adapter(model).embeddings(model).num_embeddings
    writer = gguf.GGUFWriter(path=None, arch=ARCH)
    _add_record(writer, name, record)
    writer.add_file_type(FILE_TYPES[type])
    if type == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hparams(writer, model, specs, vocab_size)
    with tempfile.TemporaryDirectory(prefix="slimllm-gguf-tok-") as tok_dir:
        # The tokenizer as transformers saves it is what the model was measured with.
        tok.save_pretrained(tok_dir)
        add_tokenizer(writer, tok, Path(tok_dir), vocab_size)
    kept_f16 = []
    for tensor_name, array in model_tensors(model, specs).items():
        qtype = storage_type(tensor_name, array.shape, type)
        if type == "q8_0" and qtype == gguf.GGMLQuantizationType.F16:
            kept_f16.append(tensor_name)
        data = gguf.quants.quantize(array, qtype)
        writer.add_tensor(tensor_name, data, raw_dtype=qtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    result = ExportResult(out, type, len(writer.tensors[0]), out.stat().st_size, kept_f16)
    if log is not None and kept_f16:
        log(
            f"q8_0: {len(kept_f16)} tensors kept in f16 (rows not divisible by {Q8_BLOCK}): "
            + ", ".join(kept_f16)
        )
    return result
