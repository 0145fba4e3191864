"""Perplexity protocols against a direct, window-by-window computation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import slimllm.measure.perplexity as perplexity_module
from slimllm.measure.perplexity import (
    PROTOCOLS,
    Protocol,
    bootstrap_interval,
    make_windows,
    perplexity,
    token_nll,
    window_nll,
)
from slimllm.models.loaders import load_model


def test_windows_put_bos_at_the_start_and_drop_the_remainder() -> None:
    ids = torch.arange(10, 30)
    w = make_windows(ids, 8, bos_id=1, bos_per_window=False)
    assert w.shape == (2, 8)
    assert w[0].tolist() == [1, *range(10, 17)]
    assert w[1].tolist() == list(range(17, 25))


def test_windows_with_bos_on_each() -> None:
    w = make_windows(torch.arange(10, 30), 8, bos_id=1, bos_per_window=True)
    assert w.shape == (2, 8)
    assert (w[:, 0] == 1).all()
    assert w[1, 1:].tolist() == list(range(17, 24))
    with pytest.raises(ValueError, match="needs a BOS"):
        make_windows(torch.arange(10), 4, bos_id=None, bos_per_window=True)


def test_bootstrap_interval_brackets_the_estimate() -> None:
    nll = torch.linspace(2.0, 3.0, 50)
    low, high = bootstrap_interval(nll)
    assert low < math.exp(nll.mean().item()) < high
    assert bootstrap_interval(nll) == (low, high)


def _corpus(root: Path) -> Path:
    (root / "wikitext2").mkdir(parents=True)
    text = "".join(f" Sentence number {i} talks about pruning heads . \n \n" for i in range(60))
    (root / "wikitext2" / "wiki.test.raw").write_text(text)
    return root


def test_perplexity_matches_a_direct_computation(tmp_path: Path) -> None:
    model, tok = load_model("tiny-gqa")
    root = _corpus(tmp_path)
    proto = Protocol("t32", 32)
    res = perplexity(
        model, tok, "wikitext2", protocol=proto, data_dir=str(root), batch_size=3, progress=False
    )

    rows = [
        ("" if not line.strip() else line + "\n")
        for line in (root / "wikitext2" / "wiki.test.raw").read_text().split("\n")[:-1]
    ]
    ids = [tok.bos_token_id, *tok("\n\n".join(rows), add_special_tokens=False).input_ids]
    nlls = []
    for start in range(0, len(ids) - 31, 32):
        window = torch.tensor(ids[start : start + 32])
        with torch.no_grad():
            logits = model(input_ids=window[None]).logits[0]
        nlls.append(F.cross_entropy(logits[:-1], window[1:], reduction="sum").item())
    n = len(nlls)
    assert res.n_windows == n and res.n_tokens == n * 31
    assert res.ppl == pytest.approx(math.exp(sum(nlls) / (n * 31)), rel=1e-5)
    assert res.ci_low <= res.ppl <= res.ci_high
    assert res.record["protocol"]["seq_len"] == 32
    assert res.record["data"]["origin"].startswith("wikitext2/wiki.test.raw sha256:")
    assert "transformers" in res.record["versions"]


def test_max_windows_and_bad_arguments(tmp_path: Path) -> None:
    model, tok = load_model("tiny-llama")
    root = str(_corpus(tmp_path))
    res = perplexity(
        model, tok, protocol=Protocol("t16", 16), max_windows=3, data_dir=root, progress=False
    )
    assert res.n_windows == 3 and res.record["data"]["windows_total"] > 3
    with pytest.raises(ValueError, match="unknown protocol"):
        perplexity(model, tok, protocol="lineage-64", data_dir=root)
    with pytest.raises(ValueError, match="batch_size"):
        perplexity(model, tok, batch_size=0, data_dir=root)


def test_named_protocols() -> None:
    assert PROTOCOLS["lineage-128"].seq_len == 128
    assert PROTOCOLS["sparsegpt-2048"].seq_len == 2048


@pytest.mark.slow
def test_smollm2_wikitext_first_windows(shared_data_dir: Path) -> None:
    model, tok = load_model("smollm2-135m")
    res = perplexity(
        model, tok, "wikitext2", max_windows=4, data_dir=str(shared_data_dir), progress=False
    )
    assert res.record["data"]["windows_total"] > 2000
    assert 5 < res.ppl < 100


def test_token_nll_matches_log_softmax_with_and_without_softcap() -> None:
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(6, 5, generator=gen), torch.randn(11, 5, generator=gen)
    targets = torch.randint(0, 11, (6,), generator=gen)
    for cap in (None, 2.0):
        logits = hidden @ weight.T
        if cap is not None:
            logits = cap * torch.tanh(logits / cap)
        slow = torch.stack(
            [-torch.log_softmax(row, 0)[t] for row, t in zip(logits, targets, strict=True)]
        )
        torch.testing.assert_close(token_nll(hidden, weight, targets, cap), slow)


def test_token_nll_blocks_of_rows_join_without_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 rows in blocks of 4: two full blocks and a partial one, each row scored once.
    monkeypatch.setattr(perplexity_module, "LOGIT_ROWS", 4)
    gen = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(10, 5, generator=gen), torch.randn(11, 5, generator=gen)
    targets = torch.randint(0, 11, (10,), generator=gen)
    whole = F.cross_entropy(hidden @ weight.T, targets, reduction="none")
    torch.testing.assert_close(token_nll(hidden, weight, targets), whole)


def test_bfloat16_scoring_stays_close_to_float32() -> None:
    model, _ = load_model("tiny-llama")
    windows = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))
    fp32 = window_nll(model, windows, batch_size=2, progress=False)
    bf16 = window_nll(model.to(torch.bfloat16), windows, batch_size=2, progress=False)
    assert bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max() < 0.05
