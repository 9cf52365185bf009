"""The one batching helper: length-sorted, left-padded batches under a row and token budget.

Texts of similar length share a batch (less padding); each batch remembers the input
positions of its rows, so callers write results back in the input order
(``out[batch.rows] = ...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .tokens import left_pad
from .types import Mask, Tokens
from .validate import check_int


@dataclass(frozen=True, eq=False)
class PaddedBatch:
    """Rows ``rows`` (input positions) as one left-padded batch."""

    rows: list[int]
    tokens: Tokens
    mask: Mask


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Input positions grouped by length (shortest first, ties in input order).

    A batch holds at most ``batch_size`` rows and, if ``max_tokens`` is given, at most that
    many padded tokens (rows x longest row); a single row longer than the budget still
    gets a batch of its own.
    """
    check_int("batch_size", batch_size, low=1)
    if max_tokens is not None:
        check_int("max_tokens", max_tokens, low=1)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        fits = current is not None and len(current) < batch_size
        if fits and max_tokens is not None:
            fits = (len(current) + 1) * lengths[index] <= max_tokens
        if fits:
            current.append(index)
        else:
            batches.append([index])
    return batches


def padded_batches(
    model: Any,
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    max_tokens: int | None = None,
) -> list[PaddedBatch]:
    """``length_batches`` of token id lists, each left-padded for ``model``."""
    groups = length_batches([len(s) for s in sequences], batch_size, max_tokens)
    return [PaddedBatch(rows, *left_pad(model, [sequences[i] for i in rows])) for rows in groups]
