"""LoRA recovery on tiny pruned models: learns, merges exactly, fails safely, saves, reopens."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.optimization import get_linear_schedule_with_warmup

from slimllm.cli import build_parser, main
from slimllm.data.alpaca import IGNORE_INDEX, collate, encode
from slimllm.experiments import recipes
from slimllm.experiments.runners import run_tune, tune_record_config
from slimllm.experiments.store import Store
from slimllm.method.regression import fold_regression
from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned, save_pruned
from slimllm.models.loaders import byte_tokenizer, tiny_model
from slimllm.tuning import lora as tune_module
from slimllm.tuning.lora import (
    NonFiniteLossError,
    TuneConfig,
    learning_rate,
    micro_batches,
    preset,
    target_loss_sum,
    train_lora,
    tune,
)

IDS = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
WORDS = ["apple", "river", "stone", "cloud", "ember", "maple", "orbit", "pearl"]
#: Short records: the byte tokenizer makes the template alone ~170 tokens.
RECORDS = [
    {"instruction": f"Say {w} twice.", "input": "" if i % 2 else "loud", "output": f"{w} {w}"}
    for i, w in enumerate(WORDS * 6)
]


def fast(**kw: object) -> TuneConfig:
    """A few steps at a rate a random tiny model notices."""
    base = TuneConfig(
        val_size=8,
        batch_size=8,
        micro_batch_size=4,
        max_steps=4,
        warmup_steps=1,
        eval_every=2,
        learning_rate=5e-3,
        lora_dropout=0.0,
    )
    return replace(base, **kw)


def logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def pruned_tiny() -> nn.Module:
    """tiny-gqa with fewer heads and channels per layer and regression biases on o/down_proj."""
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    first, second, third = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [0, 2, 3, 5])
    surgery.prune_mlp_channels(second, adapter, range(0, 96, 2))
    surgery.prune_mlp_channels(third, adapter, range(40))
    gen = torch.Generator().manual_seed(1)
    for linear in (adapter.attention_projections(first).o, adapter.mlp_projections(third).down):
        a = 1 + 0.1 * torch.randn(linear.out_features, generator=gen)
        b = 0.1 * torch.randn(linear.out_features, generator=gen)
        surgery.set_output_bias(linear, *fold_regression(linear.weight.data, linear.bias, a, b))
    return model


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "pruned"
    return save_pruned(pruned_tiny(), byte_tokenizer(), out, {"method": "slimllm"})


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("alpaca") / "records.json"
    file.write_text(json.dumps(RECORDS))
    return file


def test_a_few_steps_lower_the_loss_on_a_pruned_model() -> None:
    model = pruned_tiny()
    model, report = tune(model, byte_tokenizer(), fast(max_steps=6), records=RECORDS)
    train = [loss for _, loss in report.train_loss]
    val = [loss for _, loss in report.val_loss]
    assert len(train) == 6 and [s for s, _ in report.val_loss] == [0, 2, 4, 6]
    assert train[-1] < train[0] - 0.1 and val[-1] < val[0] - 0.1
    assert report.examples_seen == 48 and report.data["val_examples"] == 8
    assert model.model.layers[0].self_attn.o_proj.bias is not None
    assert all(p.requires_grad for p in model.parameters())


def test_merged_logits_equal_the_unmerged_peft_model() -> None:
    model = pruned_tiny()
    before = logits(model)
    peft_model, _ = train_lora(model, byte_tokenizer(), fast(), records=RECORDS, progress=False)
    unmerged = logits(peft_model)
    assert not torch.allclose(unmerged, before, atol=1e-3)  # the LoRA did change something
    merged = peft_model.merge_and_unload()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), unmerged, rtol=0, atol=1e-5)


def test_bf16_autocast_tracks_float32_for_a_few_steps() -> None:
    losses = {}
    for autocast in ("none", "bfloat16"):
        _, report = tune(pruned_tiny(), byte_tokenizer(), fast(autocast=autocast), records=RECORDS)
        losses[autocast] = torch.tensor([loss for _, loss in report.train_loss])
    torch.testing.assert_close(losses["bfloat16"], losses["none"], rtol=2e-2, atol=0)


def test_the_step_loss_does_not_depend_on_the_micro_batch() -> None:
    results = [
        tune(pruned_tiny(), byte_tokenizer(), fast(micro_batch_size=m), records=RECORDS)
        for m in (1, 8)
    ]
    (a, ra), (b, rb) = results
    torch.testing.assert_close(
        torch.tensor(ra.train_loss), torch.tensor(rb.train_loss), rtol=1e-5, atol=0
    )
    torch.testing.assert_close(logits(a), logits(b), rtol=0, atol=1e-5)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a, _ = tune(pruned_tiny(), byte_tokenizer(), fast(), records=RECORDS)
    b, _ = tune(pruned_tiny(), byte_tokenizer(), fast(), records=RECORDS)
    c, _ = tune(pruned_tiny(), byte_tokenizer(), fast(seed=7), records=RECORDS)
    assert torch.equal(logits(a), logits(b))
    assert not torch.equal(logits(a), logits(c))


def test_target_loss_equals_the_full_logits_loss() -> None:
    model, tok = pruned_tiny(), byte_tokenizer()
    examples = [encode(tok, r) for r in RECORDS[:3]]
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        ours = target_loss_sum(model, **batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    direct = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    torch.testing.assert_close(ours, direct, rtol=1e-6, atol=0)
    assert sum(e.targets for e in examples) == (batch["labels"][:, 1:] != IGNORE_INDEX).sum()


def test_micro_batches_group_by_length_and_keep_every_example() -> None:
    tok = byte_tokenizer()
    examples = [encode(tok, r) for r in RECORDS[:7]]
    groups = micro_batches(examples, 3)
    assert [len(g) for g in groups] == [3, 3, 1]
    lengths = [len(e.input_ids) for g in groups for e in g]
    assert lengths == sorted(lengths, reverse=True)
    assert sorted(map(id, [e for g in groups for e in g])) == sorted(map(id, examples))


def test_schedule_matches_transformers_after_warmup() -> None:
    config, total = TuneConfig(warmup_steps=3, learning_rate=1.0), 10
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = get_linear_schedule_with_warmup(opt, 3, total)
    hf = []
    for _ in range(total):
        hf.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [learning_rate(step, config, total) for step in range(1, total + 1)]
    assert ours[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert ours[3:] == pytest.approx(hf[3:])


def test_forced_nan_stops_naming_the_step_and_writes_nothing(
    pruned_dir: Path,
    data_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real, calls = tune_module.target_loss_sum, {"n": 0}

    def poisoned(*args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        # Calls: 2 validation micro-batches, then 2 per step: the 5th is in step 2.
        return real(*args, **kwargs) * (torch.nan if calls["n"] == 5 else 1.0)

    monkeypatch.setattr(tune_module, "target_loss_sum", poisoned)
    out = tmp_path / "tuned"
    argv = ["tune", str(pruned_dir), "--out", str(out), "--data", str(data_file)]
    argv += ["--val-size", "8", "--batch-size", "8", "--micro-batch-size", "4", "--max-steps", "3"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "slimllm tune: error: training loss became nan at step 2; stopped, nothing saved"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_nan_in_training_leaves_the_model_as_it_was() -> None:
    model = pruned_tiny()
    before = logits(model)
    with torch.no_grad():
        model.lm_head.weight[3, 0] = torch.inf
    with pytest.raises(NonFiniteLossError, match="at step 0"):
        tune(model, byte_tokenizer(), fast(), records=RECORDS)
    assert not any("lora" in name for name, _ in model.named_parameters())
    with torch.no_grad():
        model.lm_head.weight[3, 0] = tiny_model("tiny-gqa").lm_head.weight[3, 0]
    assert torch.equal(logits(model), before)


def test_tuned_folder_reopens_both_ways_with_identical_logits(
    pruned_dir: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuned"
    argv = ["tune", str(pruned_dir), "--out", str(out), "--data", str(data_file)]
    argv += ["--val-size", "8", "--batch-size", "8", "--max-steps", "2", "--lr", "5e-3"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert f"saved to {out}" in capsys.readouterr().out
    ours, _ = load_pruned(out)
    theirs = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()
    assert type(theirs).__name__ == "SlimLlamaForCausalLM"
    assert torch.equal(logits(ours), logits(theirs))
    untuned, _ = load_pruned(pruned_dir)
    assert not torch.allclose(logits(ours), logits(untuned), atol=1e-4)
    record = ours.config.slimllm["record"]
    assert record["method"] == "slimllm"  # the pruning record is kept
    assert record["tune"]["steps"] == 2 and len(record["tune"]["val_loss"]) == 2
    assert record["tune"]["config"]["learning_rate"] == 5e-3
    assert record["tune"]["config"]["lora_r"] == 8


def test_the_remote_code_class_tunes_and_saves(pruned_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(pruned_dir, trust_remote_code=True)
    assert (
        type(model).__module__ != "slimllm.models.modeling_slimllm"
    )  # the copy beside the weights
    model, _ = tune(model, byte_tokenizer(), fast(max_steps=2), records=RECORDS)
    out = save_pruned(model, byte_tokenizer(), tmp_path / "tuned", {"tuned": True})
    reopened, _ = load_pruned(out)
    assert torch.equal(logits(reopened), logits(model))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "m", "--out", "o", "--lr", "0"], "argument --lr: must be > 0, got 0.0"),
        (["tune", "m", "--out", "o", "--lr=-1e-4"], "argument --lr: must be > 0"),
        (["tune", "m", "--out", "o", "--max-steps", "0"], "argument --max-steps: must be an"),
        (["tune", "m", "--out", "o", "--preset", "gpu"], "invalid choice: 'gpu'"),
    ],
)
def test_bad_arguments_name_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert re.search(re.escape(message), capsys.readouterr().err)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("learning_rate", 0.0, "learning_rate must be > 0, got 0.0"),
        ("max_steps", 0, "max_steps must be None or >= 1, got 0"),
        ("micro_batch_size", 5, "batch_size (64) must be a multiple of micro_batch_size (5)"),
        ("autocast", "float16", "autocast must be one of ('none', 'bfloat16')"),
    ],
)
def test_bad_config_values_are_one_line(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        replace(TuneConfig(), **{field: value}).validate()
    with pytest.raises(ValueError, match="are not TuneConfig fields"):
        TuneConfig.from_dict({"lr": 1e-4})


def test_runtime_errors_are_one_line(
    tmp_path: Path, pruned_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["tune", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == f"slimllm tune: error: {empty} is not a model directory: it has no config.json\n"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "x", "output": "y"}]))
    assert main(["tune", str(pruned_dir), "--out", str(tmp_path / "o"), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "record 0 lacks the alpaca field(s) ['input']" in err
    argv = ["tune", str(pruned_dir), "--out", str(tmp_path / "o"), "--data", str(bad)]
    assert main([*argv, "--lr", "1e-4", "--val-size", "100"]) == 2
    assert not (tmp_path / "o").exists()


def test_presets_share_the_recipe_and_differ_in_the_budget() -> None:
    paper, cpu = preset("paper"), preset("cpu")
    same = ("learning_rate", "lora_r", "lora_alpha", "lora_dropout", "cutoff_len", "target_modules")
    same += ("train_on_inputs", "split_seed", "seed", "autocast")
    assert all(getattr(paper, f) == getattr(cpu, f) for f in same)
    assert paper.max_steps is None and cpu.max_steps is not None
    assert preset("cpu", max_steps=3, seed=None).max_steps == 3
    with pytest.raises(ValueError, match="unknown tune preset"):
        preset("gpu")


@pytest.fixture
def recipe_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_file: Path
) -> tuple[Path, Store]:
    """A data folder holding the records as alpaca-cleaned, and an empty model cache."""
    root = tmp_path / "data"
    (root / "alpaca_cleaned").mkdir(parents=True)
    (root / "alpaca_cleaned" / "alpaca_data_cleaned_first5000.json").write_text(
        data_file.read_text()
    )
    monkeypatch.setenv("SLIMLLM_CACHE_DIR", str(tmp_path / "cache"))
    return root, Store(tmp_path / "results")


def test_a_tuned_recipe_is_rebuilt_identically_and_recorded(
    recipe_env: tuple[Path, Store],
) -> None:
    data_dir, store = recipe_env
    recipe = recipes.tuned(recipes.dense("tiny-gqa"), fast(max_steps=2))
    assert recipes.label(recipe) == "tiny-gqa + tune"
    settings = {"device": "cpu", "data_dir": str(data_dir), "progress": False}
    config = tune_record_config(recipe)
    record = store.run("tune", config, lambda: run_tune(config, settings), settings)
    assert record.kind == "tune" and record.result["tune"]["steps"] == 2
    assert record.result["tune"]["data"]["records"] == len(RECORDS)
    cached, _ = recipes.build(recipe, data_dir=data_dir)
    rebuilt, _ = recipes.build(recipe, data_dir=data_dir, rebuild=True)
    dense, _ = recipes.build(recipes.dense("tiny-gqa"))
    assert torch.equal(logits(cached), logits(rebuilt))
    assert not torch.equal(logits(cached), logits(dense))
    folder = recipes.cached_folder(recipe)
    saved = json.loads((folder / "config.json").read_text())["slimllm"]["record"]
    assert saved["recipe"] == json.loads(json.dumps(recipe)) and saved["tune"]["steps"] == 2
    with pytest.raises(ValueError, match="already tuned"):
        recipes.tuned(recipe, fast())
    with pytest.raises(ValueError, match="needs a recipe with a 'tune' entry"):
        tune_record_config(recipes.dense("tiny-gqa"))


def test_help_explains_every_option_and_the_presets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tune", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--preset", "--max-steps", "--lr", "--lora-r", "--data", "--autocast"):
        assert option in text
    assert "cpu: as paper but" in text and "learning_rate=0.0001" in text
