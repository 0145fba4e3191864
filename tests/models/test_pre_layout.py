"""A folder saved before the package moved into sub-packages still opens, and pruning is unchanged.

The fixture is `slimllm prune tiny-gqa --ratio 0.3` as written by commit b13fa1a (the flat
layout, `slimllm.io` / `slimllm.modeling_slimllm`), kept as a tarball so that its copy of the
remote code stays byte for byte what that commit wrote.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from slimllm.experiments.recipes import make, of_folder
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned
from slimllm.models.loaders import byte_tokenizer
from slimllm.models.surgery import layer_layout

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_tiny_gqa.tar.gz"


@pytest.fixture(scope="module")
def old_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pre_layout")
    with tarfile.open(FIXTURE) as tar:
        # The "data" filter exists from Python 3.11.4 (and 3.12); the fixture is our own file.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)
    return root / "old_tiny_gqa"


def _ids() -> torch.Tensor:
    return byte_tokenizer()("pruned models keep working", return_tensors="pt").input_ids


def test_old_folder_is_keyed_by_its_weights(old_folder: Path) -> None:
    """It kept no weights digest, so its recipe cannot vouch for its weights."""
    identity = of_folder(old_folder)
    assert set(identity) == {"base", "weights_sha256"} and len(identity["weights_sha256"]) == 64


def test_old_folder_opens_with_load_pruned_and_remote_code(old_folder: Path) -> None:
    model, _ = load_pruned(old_folder)
    remote = AutoModelForCausalLM.from_pretrained(old_folder, trust_remote_code=True)
    assert type(remote).__module__ != "slimllm.models.modeling_slimllm"  # the folder's own copy
    with torch.no_grad():
        torch.testing.assert_close(model(_ids()).logits, remote(_ids()).logits)
    kept = [len(layer.self_attn.o_proj.weight[0]) for layer in model.model.layers]
    assert kept != [kept[0]] * len(kept), "the fixture should hold layers of different widths"


def test_pruning_today_matches_the_old_layout(old_folder: Path, shared_data_dir: Path) -> None:
    """The same recipe pruned by today's package gives the old folder's layouts and weights."""
    recipe = json.loads((old_folder / "config.json").read_text())["slimllm"]["record"]["recipe"]
    model, _, report = make(recipe, "cpu", str(shared_data_dir))
    old = load_file(old_folder / "model.safetensors")
    new = model.state_dict()
    assert sorted(old) == sorted(k for k in new if k in old)
    for name, tensor in old.items():
        assert tensor.shape == new[name].shape, name
        # Bit-identical on the machine that wrote the fixture; another CPU's kernels may round
        # the last bit differently, so the weights are compared to float32 precision.
        torch.testing.assert_close(new[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    old_layers = load_pruned(old_folder)[0].config.slimllm["layers"]
    adapter = get_adapter(model)
    layouts = [layer_layout(layer, adapter).to_dict() for layer in adapter.layers(model)]
    assert layouts == old_layers
    assert report["achieved"] == pytest.approx(0.3027, abs=1e-4)
