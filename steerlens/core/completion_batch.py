"""Prompt + completion pairs as one left-padded batch, with the positions that score them.

A completion ``y = (y_1..y_m)`` after a prompt ``x`` is scored at the ``m`` positions that
predict its tokens: the last prompt token predicts ``y_1``, token ``y_k`` predicts
``y_{k+1}``. Prompt and completion are tokenized separately and their ids concatenated, so
the boundary is exactly where the caller put it (the tokenizer never merges the last prompt
characters with the first completion characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from .forward import position_ids
from .positions import PositionRule, Positions
from .tokens import check_context, encode, left_pad


@dataclass(frozen=True, eq=False)
class CompletionBatch:
    """Rows of ``prompt ids + completion ids``, left-padded.

    Attributes:
        tokens: ``[row, pos]`` token ids.
        mask: ``[row, pos]``, real (non-pad) tokens.
        prompt_len: ``[row]``, prompt tokens per row (BOS included).
        rows: ``[n]``, the row of each scored completion token.
        cols: ``[n]``, the padded column whose logits predict it.
        targets: ``[n]``, the completion token id.
    """

    tokens: Int[Tensor, "row pos"]
    mask: Bool[Tensor, "row pos"]
    prompt_len: Int[Tensor, " row"]
    rows: Int[Tensor, " n"]
    cols: Int[Tensor, " n"]
    targets: Int[Tensor, " n"]

    def selected(self, rule: PositionRule) -> Bool[Tensor, "row pos"]:
        """Where a position rule applies (``"generated"`` = the completion's tokens)."""
        absolute = torch.where(self.mask, position_ids(self.mask), -1)
        return rule.select(Positions(absolute, self.prompt_len, new_stream=True))

    def take(self, rows: Int[Tensor, " k"]) -> CompletionBatch:
        """Only the given rows, in that order (same width), with their scored tokens."""
        new_index = torch.full((self.tokens.shape[0],), -1, dtype=torch.long)
        new_index[rows] = torch.arange(len(rows))
        kept = new_index[self.rows] >= 0
        return CompletionBatch(
            self.tokens[rows],
            self.mask[rows],
            self.prompt_len[rows],
            new_index[self.rows[kept]],
            self.cols[kept],
            self.targets[kept],
        )


def completion_batch(model: Any, pairs: Sequence[tuple[str, Sequence[int]]]) -> CompletionBatch:
    """One batch of ``(prompt text, completion ids)`` pairs."""
    sequences, prompt_lens = [], []
    for prompt, ids in pairs:
        prompt_ids = encode(model, prompt)
        sequences.append(prompt_ids + list(ids))
        prompt_lens.append(len(prompt_ids))
    check_context(model, max(map(len, sequences)), "prompt + completion")
    tokens, mask = left_pad(model, sequences)
    width = tokens.shape[1]
    rows, cols, targets = [], [], []
    for row, (sequence, prompt_len) in enumerate(zip(sequences, prompt_lens, strict=True)):
        start = width - len(sequence)  # column of the row's first real token
        for k in range(prompt_len, len(sequence)):
            rows.append(row)
            cols.append(start + k - 1)
            targets.append(sequence[k])
    return CompletionBatch(
        tokens,
        mask,
        torch.tensor(prompt_lens),
        torch.tensor(rows),
        torch.tensor(cols),
        torch.tensor(targets),
    )
