"""`FastLM` against lm-eval's own `HFLM`: the same log-likelihoods, greedy flags and accuracies
on the 7 tasks through `zeroshot` (tiny-gqa; SmolLM2 when slow tests run), and on hand-made edge
cases for LLaMA, sliding-window Mistral and soft-capped Gemma 3, in any row layout, and rolling
windows; the layout itself; refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    MistralConfig,
    MistralForCausalLM,
)

from slimllm.measure.fast_lm import FastLM, _rows
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.measure.zeroshot import ZeroShotResult, make_lm, zeroshot
from slimllm.models.loaders import byte_tokenizer, load_model

#: The byte-level tiny models' ids (see `slimllm.models.loaders.tiny_model`).
BYTES = {"vocab_size": 259, "bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 258}
SMALL = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2}
SMALL |= {"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 160}


def close(ours: float, theirs: float) -> bool:
    """Within 1e-4, or within 2 float32 steps of the value where a step is larger than that
    (the tiny models' byte-level sums run to a thousand and more)."""
    return abs(ours - theirs) <= max(1e-4, 2 * float(np.spacing(np.float32(abs(theirs)))))


def both(model: Any, requests: list[Instance], **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """(FastLM's answers, HFLM's answers) to the same requests."""
    tokenizer = byte_tokenizer() if "tokenizer" not in kwargs else kwargs.pop("tokenizer")
    fast = make_lm(model, tokenizer, backend="fast", **kwargs)
    hflm = make_lm(model, tokenizer, backend="hflm", **kwargs)
    assert isinstance(fast, FastLM) and type(hflm) is HFLM
    return fast.loglikelihood(requests, disable_tqdm=True), hflm.loglikelihood(
        requests, disable_tqdm=True
    )


def assert_same(ours: list[Any], theirs: list[Any]) -> float:
    assert len(ours) == len(theirs)
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a[1] != b[1]]
    assert bad == [], f"greedy flags differ: {bad[:5]}"
    far = [(i, a[0], b[0]) for i, (a, b) in enumerate(zip(ours, theirs, strict=True))]
    far = [f for f in far if not close(f[1], f[2])]
    assert far == [], f"log-likelihoods differ: {far[:5]}"
    return max(abs(a[0] - b[0]) for a, b in zip(ours, theirs, strict=True))


def requests_of(pairs: list[tuple[str, str]]) -> list[Instance]:
    return [
        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for i, pair in enumerate(pairs)
    ]


#: Shared contexts with choices that begin alike, a one-token choice, an empty context (the
#: prefix token), a trailing space moved into the continuation, and contexts longer than the
#: models' positions (512 for tiny-gqa, 160 here: left truncation) and sliding windows.
EDGE_CASES = [
    ("Question: is water wet?\nAnswer:", " yes"),
    ("Question: is water wet?\nAnswer:", " no"),
    ("Question: is water wet?\nAnswer:", " not really, no"),
    ("The cat sat on the", " mat."),
    ("The cat sat on the", " mat, then slept."),
    ("The cat sat on the ", "hat."),
    ("", "An empty context scores from the prefix token."),
    ("A long context. " * 40, " ends here."),
    ("A long context. " * 40, " ends elsewhere, further on."),
    ("Short", "x" * 40),
]


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return load_model("tiny-gqa")


@pytest.fixture(scope="module")
def requests() -> list[Instance]:
    """The edge cases, and every printable character after a few contexts (some of them are
    the random model's greedy next byte)."""
    contexts = [c for c, _ in EDGE_CASES[::3] if c]
    return requests_of(EDGE_CASES + [(c, chr(k)) for c in contexts for k in range(32, 127)])


def test_edge_cases_and_greedy_flags_on_llama(
    tiny: tuple[Any, Any], requests: list[Instance]
) -> None:
    ours, theirs = both(tiny[0], requests)
    assert_same(ours, theirs)
    assert any(flag for _, flag in ours)


@pytest.mark.parametrize("sizes", [{"row_tokens": 1}, {"row_tokens": 10_000, "batch_tokens": 64}])
def test_any_layout_gives_the_same_numbers(
    tiny: tuple[Any, Any], requests: list[Instance], sizes: dict[str, int]
) -> None:
    """One context per row, or everything in one long row: the same answers."""
    model, tokenizer = tiny
    default = FastLM(model, tokenizer).loglikelihood(requests, disable_tqdm=True)
    other = FastLM(model, tokenizer, **sizes).loglikelihood(requests, disable_tqdm=True)
    assert_same(other, default)


def tiny_mistral() -> MistralForCausalLM:
    return MistralForCausalLM(MistralConfig(sliding_window=40, **SMALL, **BYTES)).eval()


def tiny_gemma3() -> Gemma3ForCausalLM:
    config = Gemma3TextConfig(
        head_dim=16,
        sliding_window=40,
        layer_types=["sliding_attention", "full_attention"],
        final_logit_softcapping=5.0,
        **SMALL,
        **BYTES,
    )
    return Gemma3ForCausalLM(config).eval()


@pytest.mark.parametrize("build", [tiny_mistral, tiny_gemma3], ids=["mistral", "gemma3"])
def test_sliding_windows_and_soft_capping(build: Any) -> None:
    """Requests longer than the window go through HFLM's own path; the others are packed."""
    model = build()
    ours, theirs = both(model, requests_of(EDGE_CASES))
    assert_same(ours, theirs)
    lengths = [len(c) + len(x) for c, x in EDGE_CASES]
    assert min(lengths) < 40 < max(lengths)


def test_rolling_windows_run_through_the_same_scorer(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    texts = ["A short text.", "A text longer than one window of 512 byte positions. " * 12]
    rolling = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(texts)]
    fast, hflm = (make_lm(model, tokenizer, backend=b) for b in ("fast", "hflm"))
    ours = fast.loglikelihood_rolling(rolling, disable_tqdm=True)
    theirs = hflm.loglikelihood_rolling(rolling, disable_tqdm=True)
    assert all(close(a, b) for a, b in zip(ours, theirs, strict=True)), (ours, theirs)
    # Generation is HFLM's own, untouched.
    assert FastLM.generate_until is HFLM.generate_until


def test_rows_lay_each_context_out_once() -> None:
    # Two requests of one context (tokens 1 2 3) and one of another (tokens 1 4).
    sequences = [[1, 2, 3, 7, 8], [1, 2, 3, 9], [1, 4, 5]]
    rows = _rows(sequences, [3, 2, 1], row_tokens=100)
    assert len(rows) == 1
    row = rows[0]
    assert row.tokens == [1, 2, 3, 7, 8, 9, 4, 5]
    assert row.depths == [0, 1, 2, 3, 4, 3, 1, 2]
    seen = row.visible()
    # The second choice (position 5) sees its context and itself, not the first choice.
    assert seen[5].nonzero()[0].tolist() == [0, 1, 2, 5]
    assert seen[7].nonzero()[0].tolist() == [0, 6, 7]
    scored = dict(row.scored)
    assert scored == {0: [2, 3, 4], 1: [2, 5], 2: [7]}
    # A budget smaller than a context: one context per row, never split.
    assert [r.tokens for r in _rows(sequences, [3, 2, 1], row_tokens=1)] == [
        [1, 2, 3, 7, 8, 9],
        [1, 4, 5],
    ]


def test_unsupported_models_and_sizes_fail_clearly(tiny: tuple[Any, Any]) -> None:
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, **BYTES)).eval()
    with pytest.raises(ValueError, match="not 'gpt2'; use backend='hflm'"):
        FastLM(gpt2, byte_tokenizer())
    with pytest.raises(ValueError, match="row_tokens and batch_tokens must be >= 1"):
        FastLM(tiny[0], tiny[1], row_tokens=0)
    with pytest.raises(ValueError, match="backend must be one of fast, hflm"):
        make_lm(*tiny, backend="vllm")


def run_both(model: Any, tokenizer: Any, limit: int, data_dir: Any) -> float:
    """`zeroshot` through each backend: identical accuracies and verdicts, every request's
    answer equal (greedy flag) or close (log-likelihood); the largest difference."""
    runs: dict[str, ZeroShotResult] = {
        backend: zeroshot(
            model,
            tokenizer,
            limit=limit,
            data_dir=data_dir,
            seed=1,
            backend=backend,
            keep_loglikelihoods=True,
        )
        for backend in ("fast", "hflm")
    }
    fast, hflm = runs["fast"], runs["hflm"]
    assert fast.settings["backend"] == "fast" and hflm.settings["backend"] == "hflm"
    assert fast.tasks == hflm.tasks and fast.correct == hflm.correct and fast.mean == hflm.mean
    ours = [tuple(a) for t in SEVEN_TASKS for item in fast.loglikelihoods[t] for a in item]
    theirs = [tuple(a) for t in SEVEN_TASKS for item in hflm.loglikelihoods[t] for a in item]
    assert len(ours) > 2 * 7 * limit
    return assert_same(ours, theirs)


def test_seven_tasks_through_zeroshot_equal_hflm(
    tiny: tuple[Any, Any], shared_data_dir: Any
) -> None:
    run_both(*tiny, limit=6, data_dir=shared_data_dir)


@pytest.mark.slow
def test_smollm2_seven_tasks_equal_hflm(shared_data_dir: Any) -> None:
    """SmolLM2 in float32, 24 items of each task: every log-likelihood within 1e-4 of HFLM's."""
    assert run_both(*load_model("smollm2-135m"), limit=24, data_dir=shared_data_dir) <= 1e-4
