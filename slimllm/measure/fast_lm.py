"""lm-eval's `HFLM` with a faster multiple-choice scorer: the same numbers, a fraction of the work.

A multiple-choice task asks lm-eval for one log-likelihood per (context, choice); `HFLM` runs
every pair as its own padded sequence and takes a full-vocabulary log-softmax at every position.
`FastLM` inherits everything else from `HFLM` (tokenization, the context/continuation split,
left truncation, the empty-context prefix token, the rolling windows and generation), and
replaces only `_loglikelihood_tokens`:

- the token sequences of the requests are merged into prefix trees (a context shared by its
  choices, or any common prefix, is one set of positions), small trees several to a row;
- a row is one forward, with an attention mask that lets each position see exactly its own
  ancestors and position ids that are its depth, so each request's positions see the same
  tokens at the same positions as in its own sequence;
- only the positions that predict a continuation token go through the output head and the
  log-softmax, once each even where several requests share them;
- rows are cut to a token budget and batched by length, so padding stays small.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: Families whose decoder takes a custom 4D additive attention mask as given and whose causal LM
#: head is `lm_head` plus, at most, `final_logit_softcapping` (checked in their transformers code).
FAST_MODEL_TYPES = ("llama", "mistral", "qwen2", "gemma3_text")

#: Positions per row: contexts smaller than this share a row. A row attends over all its
#: positions (masked), so packing costs attention: on the 7-task 500-item subset of SmolLM2 a
#: budget of 64 lays out 246k positions with 143 attended per position, 384 lays out 238k with
#: 327 (and attention was 12 % of a bfloat16 run at 256).
ROW_TOKENS = 64

#: Positions per forward (rows x padded length): large matrix products, about 1 % padding.
BATCH_TOKENS = 2048

#: Positions per output-head and log-softmax call (a float32 slice of about 100 MB here).
HEAD_POSITIONS = 512

#: (context tokens, continuation tokens) of one request as `TemplateLM.loglikelihood` made them,
#: with the request strings first (None for rolling windows).
Request = tuple[tuple[str, str] | None, list[int], list[int]]


@dataclass
class _Row:
    """Prefix trees of some requests' input tokens, laid out as one sequence of positions."""

    tokens: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    #: (first position, end, parent position or -1): each request appends one chain of new
    #: positions below an existing one, which is all the attention mask needs.
    chains: list[tuple[int, int, int]] = field(default_factory=list)
    #: (request index, positions whose outputs predict its continuation tokens).
    scored: list[tuple[int, list[int]]] = field(default_factory=list)
    #: (parent position or -1, token) -> position.
    children: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, index: int, sequence: list[int], n_scored: int) -> None:
        """Lay out `sequence` below the longest path of the row that spells its beginning."""
        path: list[int] = []
        for token in sequence:
            child = self.children.get((path[-1] if path else -1, token))
            if child is None:
                break
            path.append(child)
        start, parent = len(self.tokens), path[-1] if path else -1
        for depth in range(len(path), len(sequence)):
            self.children[(path[-1] if path else -1, sequence[depth])] = len(self.tokens)
            path.append(len(self.tokens))
            self.tokens.append(sequence[depth])
            self.depths.append(depth)
        if len(self.tokens) > start:
            self.chains.append((start, len(self.tokens), parent))
        self.scored.append((index, path[-n_scored:]))

    def visible(self) -> np.ndarray:
        """[i, j]: position i may attend to position j (j is i or one of its ancestors)."""
        n = len(self.tokens)
        seen = np.zeros((n, n), dtype=bool)
        for start, end, parent in self.chains:
            if parent >= 0:
                seen[start:end] = seen[parent]
            seen[start:end, start:end] |= np.tri(end - start, dtype=bool)
        return seen


def _rows(sequences: list[list[int]], n_scored: list[int], row_tokens: int) -> list[_Row]:
    """Requests packed into rows of at most `row_tokens` positions (a longer context alone).

    Sorting the sequences puts those that share a prefix side by side; the requests of one
    context (the tokens up to its first scored position) always share a row, so the context is
    laid out once.
    """
    order = sorted(range(len(sequences)), key=lambda i: sequences[i])
    rows = [_Row()]
    for context, group in itertools.groupby(
        order, key=lambda i: tuple(sequences[i][: len(sequences[i]) - n_scored[i] + 1])
    ):
        members = list(group)
        # At most this many new positions (choices that begin alike share a few more).
        size = len(context) + sum(len(sequences[i]) - len(context) for i in members)
        if rows[-1].tokens and len(rows[-1].tokens) + size > row_tokens:
            rows.append(_Row())
        for i in members:
            rows[-1].add(i, sequences[i], n_scored[i])
    return [row for row in rows if row.tokens]


def _batches(rows: list[_Row], batch_tokens: int) -> list[list[_Row]]:
    """Rows longest first, as many per batch as fit `batch_tokens` padded positions."""
    rows = sorted(rows, key=lambda r: -len(r.tokens))
    batches: list[list[_Row]] = []
    for row in rows:
        if batches and len(batches[-1][0].tokens) * (len(batches[-1]) + 1) <= batch_tokens:
            batches[-1].append(row)
        else:
            batches.append([row])
    return batches


class FastLM(HFLM):
    """`HFLM` around an in-memory model, scoring log-likelihood requests by shared prefixes.

    `loglikelihood` gives `HFLM`'s numbers up to float rounding (the same token sequences,
    positions and log-softmax dtype; only the matrix shapes differ); `loglikelihood_rolling`
    runs HFLM's rolling windows through the same scorer; `generate_until` is HFLM's own.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        row_tokens: int = ROW_TOKENS,
        batch_tokens: int = BATCH_TOKENS,
        **hflm_args: Any,
    ) -> None:
        config = model.config
        if config.model_type not in FAST_MODEL_TYPES:
            raise ValueError(
                f"the fast zero-shot backend supports model types {', '.join(FAST_MODEL_TYPES)}, "
                f"not {config.model_type!r}; use backend='hflm'"
            )
        if getattr(config, "use_bidirectional_attention", False):
            raise ValueError(
                "the fast zero-shot backend needs causal attention; use backend='hflm'"
            )
        if row_tokens < 1 or batch_tokens < 1:
            raise ValueError(
                f"row_tokens and batch_tokens must be >= 1, got {row_tokens}, {batch_tokens}"
            )
        super().__init__(pretrained=model, tokenizer=tokenizer, **hflm_args)
        self.row_tokens = row_tokens
        self.batch_tokens = batch_tokens
        # The tree mask knows no sliding window: a longer request goes through HFLM's own path.
        self.window: int | None = getattr(config, "sliding_window", None)

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        # `override_bs` is HFLM's rolling path's batch size; batches here are sized by positions.
        sequences, n_scored = [], []
        for _, context, continuation in requests:
            if not context or not continuation or len(continuation) > self.max_length:
                raise ValueError(
                    f"a request needs a context, a continuation and at most {self.max_length} "
                    f"continuation tokens, got {len(context)} and {len(continuation)}"
                )
            # HFLM's input: the last max_length + 1 tokens less the final one.
            sequences.append((context + continuation)[-(self.max_length + 1) :][:-1])
            n_scored.append(len(continuation))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        fits = [self.window is None or len(s) <= self.window for s in sequences]
        packed = [i for i, ok in enumerate(fits) if ok]
        long = [i for i, ok in enumerate(fits) if not ok]
        if long:
            done = super()._loglikelihood_tokens([requests[i] for i in long], disable_tqdm=True)
            for i, answer in zip(long, done, strict=True):
                results[i] = answer
        rows = _rows([sequences[i] for i in packed], [n_scored[i] for i in packed], self.row_tokens)
        bar = tqdm(
            total=len(packed),
            disable=disable_tqdm or self.rank != 0,
            desc="Running loglikelihood requests",
        )
        continuations = [requests[i][2] for i in packed]
        for batch in _batches(rows, self.batch_tokens):
            for k, answer in self._score(batch, continuations).items():
                results[packed[k]] = answer
            bar.update(sum(len(r.scored) for r in batch))
        bar.close()
        for (strings, _, _), answer in zip(requests, results, strict=True):
            if strings is not None:
                self.cache_hook.add_partial("loglikelihood", strings, answer)
        return results  # type: ignore[return-value]

    def _score(
        self, batch: list[_Row], continuations: list[list[int]]
    ) -> dict[int, tuple[float, bool]]:
        """(log-likelihood, greedy?) of every request of the rows, by request index."""
        # Each scored position once, and each (position, next token) pair once: the choices of
        # a context share its last position and differ in the token it must predict.
        at: dict[tuple[int, int], int] = {}
        pairs: dict[tuple[int, int], int] = {}
        for b, row in enumerate(batch):
            for index, path in row.scored:
                for p, token in zip(path, continuations[index], strict=True):
                    pairs.setdefault((at.setdefault((b, p), len(at)), token), 0)
        order = sorted(pairs)
        for j, pair in enumerate(order):
            pairs[pair] = j
        hidden = self._hidden(batch, torch.tensor(list(at), dtype=torch.long))
        values, greedy = self._log_probs(hidden, torch.tensor(order, dtype=torch.long))
        answers = {}
        for b, row in enumerate(batch):
            for index, path in row.scored:
                ks = [at[(b, p)] for p in path]
                js = [pairs[(k, t)] for k, t in zip(ks, continuations[index], strict=True)]
                target = torch.tensor(continuations[index])
                answers[index] = (float(values[js].sum()), bool((greedy[ks] == target).all()))
        return answers

    def _hidden(self, batch: list[_Row], where: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden states of the rows at `where` ((row, position) pairs)."""
        length = len(batch[0].tokens)
        ids = torch.zeros((len(batch), length), dtype=torch.long)
        positions = torch.zeros((len(batch), length), dtype=torch.long)
        # Padding sees only itself, so no softmax row is empty.
        visible = torch.eye(length, dtype=torch.bool).repeat(len(batch), 1, 1)
        for b, row in enumerate(batch):
            n = len(row.tokens)
            ids[b, :n] = torch.tensor(row.tokens)
            positions[b, :n] = torch.tensor(row.depths)
            visible[b, :n, :n] = torch.from_numpy(row.visible())
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(visible.shape, dtype=dtype).masked_fill_(
            ~visible, torch.finfo(dtype).min
        )
        with torch.no_grad():
            hidden = self.model.get_decoder()(
                input_ids=ids.to(self.device),
                attention_mask=mask[:, None].to(self.device),
                position_ids=positions.to(self.device),
                use_cache=False,
            ).last_hidden_state
        where = where.to(hidden.device)
        return hidden[where[:, 0], where[:, 1]]

    def _log_probs(
        self, hidden: torch.Tensor, pairs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the (position, token) `pairs` (sorted by position), and each
        position's most likely token, from the hidden states of the positions."""
        head = self.model.get_output_embeddings()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        values = torch.empty(len(pairs), dtype=self.softmax_dtype or hidden.dtype)
        greedy = torch.empty(len(hidden), dtype=torch.long)
        bounds = torch.searchsorted(pairs[:, 0].contiguous(), torch.arange(len(hidden) + 1))
        # In slices: a full-vocabulary float32 block for every position at once is slow to
        # allocate and fill.
        for start in range(0, len(hidden), HEAD_POSITIONS):
            end = min(start + HEAD_POSITIONS, len(hidden))
            with torch.no_grad():
                logits = head(hidden[start:end])
                if cap is not None:
                    logits = torch.tanh(logits / cap) * cap
                log_probs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
            greedy[start:end] = log_probs.argmax(dim=-1).cpu()
            chunk = pairs[bounds[start] : bounds[end]].to(log_probs.device)
            picked = log_probs[chunk[:, 0] - start, chunk[:, 1]]
            values[bounds[start] : bounds[end]] = picked.cpu()
        return values, greedy
