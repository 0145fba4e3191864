"""Latency harness on tiny models: fields, drivers agree, pruned folders generate, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slimllm.cli import main
from slimllm.measure.latency import (
    LatencySpec,
    Timing,
    greedy_generate,
    greedy_loop,
    measure_latency,
)
from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned, save_pruned
from slimllm.models.loaders import byte_tokenizer, tiny_model

TINY = LatencySpec(
    prefill_len=12, decode_batch=2, new_tokens=5, decode_prompt_len=4, repeats=2, warmup=1
)


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-gqa with odd widths (43, 57 and 95 channels, heads pruned two ways), saved."""
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    first, second, third = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [0, 2, 3, 5])
    surgery.prune_attention_heads(second, adapter, [3, 4, 5])
    for layer, width in ((first, 43), (second, 57), (third, 95)):
        surgery.prune_mlp_channels(layer, adapter, range(width))
    return save_pruned(model, byte_tokenizer(), tmp_path_factory.mktemp("m") / "p", {"t": 1})


def test_timing_statistics() -> None:
    t = Timing.of([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (t.median, t.q1, t.q3, t.min, t.max, t.mean) == (3.0, 2.0, 4.0, 1.0, 5.0, 3.0)
    assert t.times == [4.0, 1.0, 3.0, 2.0, 5.0]


def test_pruned_folder_generates_with_the_cache(pruned_dir: Path) -> None:
    model, _ = load_pruned(pruned_dir)
    assert type(model).__name__ == "SlimLlamaForCausalLM"
    ids = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(0))
    loop, gen = greedy_loop(model, ids, 7), greedy_generate(model, ids, 7)
    assert loop.shape == (2, 7)
    assert torch.equal(loop, gen)
    # The cached steps give the tokens a full re-run of the sequence would.
    with torch.no_grad():
        full = model(torch.cat([ids, loop[:, :-1]], dim=1)).logits[:, ids.shape[1] - 1 :]
    assert torch.equal(full.argmax(-1), loop)


@pytest.mark.parametrize("driver", ["generate", "loop"])
def test_measure_latency_returns_every_field(pruned_dir: Path, driver: str) -> None:
    dense = tiny_model("tiny-gqa")
    pruned, _ = load_pruned(pruned_dir)
    spec = LatencySpec(**{**TINY.__dict__, "driver": driver})
    result = measure_latency({"dense": dense, "pruned": pruned}, spec, progress=False)
    assert result["reference"] == "dense" and result["spec"]["driver"] == driver
    for entry in result["models"].values():
        for phase in ("prefill", "decode"):
            assert len(entry[phase]["times"]) == 2
            assert 0 < entry[phase]["min"] <= entry[phase]["median"] <= entry[phase]["max"]
        assert {"parameters", "prefill_flops", "decode_flops", "layers", "ratios"} <= set(entry)
    ratios = result["models"]["pruned"]["ratios"]
    assert result["models"]["dense"]["ratios"]["prefill_time"] == 1.0
    assert 0 < ratios["parameters"] < 1 and 0 < ratios["prefill_flops"] < 1
    assert ratios["prefill_efficiency"] == pytest.approx(
        ratios["prefill_flops"] / ratios["prefill_time"]
    )
    assert [layer["channels"] for layer in result["models"]["pruned"]["layers"]] == [43, 57, 95]


def test_run_latency_from_a_config() -> None:
    from slimllm.experiments import recipes
    from slimllm.experiments.runners import run_latency

    config = {"models": {"dense": recipes.dense("tiny-llama")}, "dtype": "float32"}
    config.update({k: v for k, v in TINY.__dict__.items() if k != "repeats"}, repeats=2)
    result = run_latency(config, {"progress": False, "threads": 1})
    assert result["dtype"] == "float32" and result["threads"] == 1
    assert result["cpu"]["model"] and len(result["models"]["dense"]["decode"]["times"]) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"repeats": 0}, "repeats must be >= 1"),
        ({"warmup": -1}, "warmup must be >= 0"),
        ({"driver": "fast"}, "driver must be one of"),
    ],
)
def test_bad_spec_is_a_clear_error(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_latency({"m": tiny_model("tiny-llama")}, LatencySpec(**spec), progress=False)


def test_cli_bench_prints_the_table(pruned_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", str(pruned_dir), "--dense", "tiny-gqa", "--repeats", "2", "--warmup", "0"]
    args += ["--prefill-len", "8", "--batch", "2", "--new-tokens", "3", "--prompt-len", "4"]
    assert main([*args, "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert str(pruned_dir) in out and "pEff" in out and "dtype float32" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "has no config.json"),
        (lambda tmp: _plain_model(tmp), "not a slimllm pruned model"),
    ],
)
def test_cli_bench_bad_folder(
    tmp_path: Path, make: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make(tmp_path)  # type: ignore[operator]
    capsys.readouterr()  # drop save_pretrained's progress bar
    assert main(["bench", str(folder), "--dense", "tiny-gqa"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slimllm bench: error:") and message in err and "\n" not in err


def _plain_model(tmp: Path) -> Path:
    tiny_model("tiny-llama").save_pretrained(tmp / "plain")
    return tmp / "plain"


def test_cli_bench_bad_numbers(pruned_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(pruned_dir), "--repeats", "0"])
    assert exit_info.value.code == 2
    assert "--repeats: must be an integer >= 1" in capsys.readouterr().err
    assert main(["bench", str(pruned_dir), "--warmup", "-1"]) == 2
    assert "--warmup must be >= 0" in capsys.readouterr().err
