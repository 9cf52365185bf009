"""The one batching helper: length-sorted batches under a row and a token budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerlens.core.batching import length_batches, padded_batches
from steerlens.core.errors import SteerlensError


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=40),
    batch_size=st.integers(1, 8),
    max_tokens=st.none() | st.integers(1, 200),
)
def test_batches_cover_every_row_once_within_budget(lengths, batch_size, max_tokens):
    batches = length_batches(lengths, batch_size, max_tokens)
    rows = [i for batch in batches for i in batch]
    assert sorted(rows) == list(range(len(lengths)))
    assert [lengths[i] for i in rows] == sorted(lengths)  # shortest first
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        if max_tokens is not None and len(batch) > 1:
            assert len(batch) * max(lengths[i] for i in batch) <= max_tokens


def test_bad_budget():
    with pytest.raises(SteerlensError, match="batch_size"):
        length_batches([1, 2], 0)
    with pytest.raises(SteerlensError, match="max_tokens"):
        length_batches([1, 2], 2, max_tokens=0)


def test_padded_batches_left_pad_and_remember_rows(tiny_model):
    sequences = [[1, 2, 3], [4], [5, 6]]
    batches = padded_batches(tiny_model, sequences, batch_size=2)
    assert [b.rows for b in batches] == [[1, 2], [0]]
    first = batches[0]
    assert first.tokens[0, -1] == 4 and first.mask[0].tolist() == [False, True]
    assert first.tokens[1].tolist() == [5, 6] and bool(first.mask[1].all())
