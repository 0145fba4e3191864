"""Saving and loading pruned models: safetensors weights plus per-layer layouts in config.json.

Pruned layers differ in width, which a transformers config cannot express. As SliceGPT does,
slimllm stores the per-layer dimensions (`config.slimllm`) and rebuilds the shapes before the
weights are loaded. The rebuild lives in `slimllm/models/modeling_slimllm.py`, which is copied
next to the weights and named in `config.auto_map`, so that
`AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` (lm-eval, pipelines) opens the
folder without slimllm installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from slimllm.models import modeling_slimllm
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import load_tokenizer, unreadable_weights
from slimllm.models.modeling_slimllm import SLIM_CLASSES
from slimllm.models.surgery import LayerLayout, layer_layout

MODELING_FILE = "modeling_slimllm.py"


def _slim_class(model_type: str) -> type[PreTrainedModel]:
    if model_type not in SLIM_CLASSES:
        raise ValueError(
            f"saving or loading pruned {model_type!r} models is not supported; "
            f"supported model types: {', '.join(sorted(SLIM_CLASSES))}"
        )
    return SLIM_CLASSES[model_type]


def _sibling(path: Path, tag: str) -> Path:
    # Same parent directory, so the final rename stays on one filesystem (atomic).
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}")


def _write_slimllm_config(config_file: Path, entry: dict[str, Any], class_name: str) -> None:
    config = json.loads(config_file.read_text())
    config["slimllm"] = entry
    config["auto_map"] = {
        **config.get("auto_map", {}),
        "AutoModelForCausalLM": f"{Path(MODELING_FILE).stem}.{class_name}",
    }
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    # rename(2) cannot replace a non-empty directory: move the old one aside first and put it
    # back if the swap fails.
    old = _sibling(out, "old")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old)


def weights_digest(folder: str | os.PathLike[str]) -> str:
    """sha256 over a folder's weight files (names and bytes, in name order).

    Saved in config.json by `save_pruned`, it tells whether the weights are still the ones the
    folder's recipe made (a tuned or edited copy is a different model under the same recipe).
    """
    root = Path(folder)
    files = sorted(root.glob("*.safetensors")) or sorted(root.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no weights (*.safetensors or *.bin)")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over a model's state dict in memory (names and raw bytes, in name order): equal
    digests mean bit-identical weights, whatever file format they would be saved in."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _entry(model: PreTrainedModel, record: dict[str, Any]) -> dict[str, Any]:
    """config.json's `slimllm` entry of a pruned model, before its weights' digest."""
    adapter = get_adapter(model)
    entry = {
        "format": modeling_slimllm.FORMAT,
        "layers": [layer_layout(layer, adapter).to_dict() for layer in adapter.layers(model)],
        "record": record,
    }
    try:
        json.dumps(entry)
    except (TypeError, ValueError) as err:
        raise TypeError(f"record must be JSON-serialisable: {err}") from err
    return entry


@contextmanager
def writing_folder(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """A hidden sibling of `out_dir` to write a model folder into, renamed to `out_dir` when the
    block ends and removed if it raises, so `out_dir` is either complete or as it was.

    A non-empty `out_dir` raises FileExistsError unless `overwrite=True`.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    try:
        tmp.mkdir()
        yield tmp
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_pruned_files(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: str | os.PathLike[str],
    record: dict[str, Any],
) -> None:
    """All of a pruned model's folder but the weights, into `folder`, which holds them already
    (written shard by shard, see method.streaming_prune): config.json with the `slimllm` entry
    of :func:`save_pruned`, the tokenizer and `modeling_slimllm.py`. `model`'s layers give the
    layouts and may be on the meta device."""
    entry = _entry(model, record)
    _finish_folder(Path(folder), model, tokenizer, entry)


def _finish_folder(
    folder: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, entry: dict[str, Any]
) -> None:
    if not (folder / "config.json").is_file():
        model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    entry["weights_sha256"] = weights_digest(folder)
    _write_slimllm_config(
        folder / "config.json", entry, _slim_class(model.config.model_type).__name__
    )
    shutil.copyfile(modeling_slimllm.__file__, folder / MODELING_FILE)


def save_pruned(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | os.PathLike[str],
    record: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a pruned model to `out_dir` atomically and return the path.

    The folder holds safetensors weights, the tokenizer, `modeling_slimllm.py` and a config.json
    with `slimllm = {"format", "layers": [LayerLayout dicts], "record": record, "weights_sha256"}`
    and an `auto_map` for trust_remote_code loading. Everything is written to a hidden sibling
    directory that is renamed into place at the end; on any error it is removed and `out_dir` is
    left as it was. A non-empty `out_dir` raises FileExistsError unless `overwrite=True`.
    """
    _slim_class(model.config.model_type)
    entry = _entry(model, record)
    if getattr(model, "hf_quantizer", None) is not None:
        # A GGUF-loaded model keeps its quantizer, which would make save_pretrained write a
        # quantization_config for weights that are in fact dequantised.
        model.hf_quantizer.remove_quantization_config(model)
    for param in model.parameters():
        if not param.is_contiguous():
            param.data = param.data.contiguous()
    with writing_folder(out_dir, overwrite) as tmp:
        model.save_pretrained(tmp)
        _finish_folder(tmp, model, tokenizer, entry)
    return Path(out_dir)


def load_pruned(
    path: str | os.PathLike[str],
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    attn_implementation: str = "sdpa",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a folder written by :func:`save_pruned`, in eval mode, with its tokenizer.

    The base architecture is built from the config, each layer is reshaped per
    `config.slimllm["layers"]` (biases created where recorded) and the weights are loaded with
    every key required to match. `dtype=None` keeps the saved dtype. Layers carry their
    `LayerLayout` as `layer.slimllm_layout`, so further surgery keeps original indices.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json")
    config = AutoConfig.from_pretrained(folder)
    if getattr(config, "slimllm", None) is None:
        raise ValueError(
            f"not a slimllm pruned model: {folder / 'config.json'} has no `slimllm` entry; "
            "use transformers' from_pretrained (or slimllm.models.loaders.load_model) for it"
        )
    entry = modeling_slimllm.slimllm_entry(config)
    slim_class = _slim_class(config.model_type)
    try:
        model, info = slim_class.from_pretrained(
            folder,
            config=config,
            dtype=dtype if dtype is not None else "auto",
            attn_implementation=attn_implementation,
            output_loading_info=True,
        )
    except SafetensorError as err:
        raise unreadable_weights(folder, err) from err
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise ValueError(f"{folder}: weights do not match the recorded layout: {problems}")
    adapter = get_adapter(model)
    for layer, layout in zip(adapter.layers(model), entry["layers"], strict=True):
        layer.slimllm_layout = LayerLayout.from_dict(layout)
    tokenizer = load_tokenizer(folder)
    return model.to(device).eval(), tokenizer
