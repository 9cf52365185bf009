"""Seeded loader fuzz: 2,000 mutated vector files, each loaded finite or refused clearly."""

from __future__ import annotations

from tests.fuzz_vector_files import failures, fuzz


def test_mutated_vector_files_load_finite_or_raise_steerlens_error():
    counts = fuzz(2000, seed=0)
    assert sum(counts.values()) == 2000
    assert failures(counts) == {}  # no other exception, no NaN/inf load, path always named
    assert counts["refused"] > 1000  # the mutations do break files ...
    assert counts["loaded"] > 0  # ... and some (e.g. float64 within range) still load
