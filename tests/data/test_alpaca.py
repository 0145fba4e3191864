"""Alpaca records as training examples: template, truncation, EOS, the response-only mask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimllm.data.alpaca import IGNORE_INDEX, collate, encode, load_records, prompt, read_file
from slimllm.data.sources import DataError
from slimllm.models.loaders import byte_tokenizer

RECORD = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}


def test_prompt_follows_the_lineage_template() -> None:
    with_input = prompt(RECORD)
    assert with_input.startswith("Below is an instruction that describes a task, paired with")
    assert with_input.endswith("### Input:\n2 and 3\n\n### Response:\n")
    no_input = prompt({**RECORD, "input": ""})
    assert "### Input:" not in no_input
    assert no_input.endswith("### Instruction:\nAdd the numbers.\n\n### Response:\n")


def test_encode_masks_the_prompt_and_appends_eos() -> None:
    tok = byte_tokenizer()
    example = encode(tok, RECORD, cutoff_len=512)
    n_prompt = len(prompt(RECORD).encode())
    assert example.input_ids[-1] == tok.eos_token_id
    assert len(example.input_ids) == n_prompt + 1 + 1  # "5" + EOS
    assert example.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert example.labels[n_prompt:] == example.input_ids[n_prompt:]
    assert example.targets == 2
    everything = encode(tok, RECORD, cutoff_len=512, train_on_inputs=True)
    assert everything.labels == everything.input_ids


def test_cutoff_truncates_and_leaves_out_eos() -> None:
    tok = byte_tokenizer()
    example = encode(tok, {**RECORD, "output": "x" * 600}, cutoff_len=256)
    assert len(example.input_ids) == 256 and example.input_ids[-1] != tok.eos_token_id
    short = encode(tok, RECORD, cutoff_len=40)
    assert short.targets == 0  # the prompt alone fills the cutoff


def test_collate_pads_on_the_right_with_ignored_labels() -> None:
    tok = byte_tokenizer()
    a, b = encode(tok, RECORD), encode(tok, {**RECORD, "output": "five"})
    batch = collate([a, b], pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(b.input_ids))
    gap = len(b.input_ids) - len(a.input_ids)
    assert batch["attention_mask"][0].tolist() == [1] * len(a.input_ids) + [0] * gap
    assert batch["labels"][0, len(a.input_ids) :].tolist() == [IGNORE_INDEX] * gap


def test_data_file_without_alpaca_fields_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "a", "input": ""}]))
    with pytest.raises(DataError, match=r"record 0 lacks the alpaca field\(s\) \['output'\]"):
        read_file(bad)
    lines = tmp_path / "ok.jsonl"
    lines.write_text("\n".join(json.dumps(RECORD) for _ in range(3)))
    assert len(read_file(lines)) == 3
    with pytest.raises(DataError, match="non-empty JSON array"):
        (tmp_path / "obj.json").write_text("{}")
        read_file(tmp_path / "obj.json")


def test_local_subset_has_its_origin(shared_data_dir: Path) -> None:
    records, origin = load_records(data_dir=shared_data_dir)
    assert len(records) == 5000 and "first5000.json sha256:" in origin
