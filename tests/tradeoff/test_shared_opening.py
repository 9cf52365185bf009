"""Sweeps over prompts that open alike run the shared opening once per coefficient (KV
cache) and equal the naive loop of full forwards under sl.steer (tiny model)."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.steering.sweep import SweepPlan
from steerlens.steering.sweep.shared_opening import SharedOpening, opening_length, shared_length

from .test_sweep import naive, sweep_logits, unit

OPENING = (
    "Question: what colour is the sky? Answer: blue. Question: how many legs has a cat? "
    "Answer: four. Question: what do bees make? Answer: honey. Question: "
)
PROMPTS = [
    OPENING + "what is frozen water? Answer:",
    OPENING + "which animal says moo, and what does it eat all day long? Answer:",
    OPENING + "why? Answer:",
    OPENING + "what colour is grass? Answer:",
]


def plan(model, positions="all", **options):
    return SweepPlan((sl.add(unit(model, 0), 1.0, layers=[1], positions=positions),), **options)


def test_the_opening_is_shared_for_these_prompts(tiny_model):
    sequences = [encode(tiny_model, p) for p in PROMPTS]
    opening = opening_length(sequences)
    assert opening > 30
    assert all(s[:opening] == sequences[0][:opening] for s in sequences)
    assert shared_length(tiny_model, sequences, plan(tiny_model)) == opening
    assert shared_length(tiny_model, sequences, plan(tiny_model, [0, -1])) == 0
    assert shared_length(tiny_model, sequences, plan(tiny_model, "last")) == 0
    assert shared_length(tiny_model, sequences[:1], plan(tiny_model)) == 0
    assert shared_length(tiny_model, sequences, plan(tiny_model, share_opening=False)) == 0
    assert opening_length([[1, 2, 3], [1, 2, 3]]) == 2  # each keeps a token of its own


def test_shared_sweep_matches_naive_loop(tiny_model, max_rows=3):
    """(Rows per pass from 1 to 64: tests/steering/test_sweep.py.)"""
    vec = sl.SteeringVector({1: 3.0 * unit(tiny_model, 0)})
    coeffs = [-2.0, 0.5, 3.0, 0.0]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, max_rows=max_rows)
    unit_vec = sl.SteeringVector({1: vec[1] / vec[1].norm()})
    expected = naive(tiny_model, unit_vec, coeffs, PROMPTS)
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)
    assert torch.equal(res.final[3], res.base)


def test_shared_sweep_without_zero_several_layers_unnormalised(tiny_model):
    vec = sl.SteeringVector({0: 2.0 * unit(tiny_model, 1), 2: 0.5 * unit(tiny_model, 2)})
    coeffs = [1.5, -1.0]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, normalize=False, max_rows=4)
    expected = naive(tiny_model, vec, coeffs, PROMPTS)
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)
    base = naive(tiny_model, vec, [0.0], PROMPTS)[0]
    torch.testing.assert_close(res.base_logits(), base, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("site", ["resid_mid", "resid_post"])
def test_shared_sweep_other_sites(tiny_model, site):
    vec = sl.SteeringVector({0: unit(tiny_model, 3)}, site=site)
    coeffs = [-3.0, 2.0]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, positions="prompt")
    expected = naive(tiny_model, vec, coeffs, PROMPTS, positions="prompt")
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)


def test_shared_sweep_batch_size_is_checked(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 4)})
    with pytest.raises(sl.SteerlensError, match="batch_size"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, batch_size=0)


def test_the_shared_path_is_the_one_taken(tiny_model, monkeypatch):
    calls = []
    real = SharedOpening.run
    monkeypatch.setattr(SharedOpening, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    vec = sl.SteeringVector({1: unit(tiny_model, 5)})
    sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS)
    assert calls == [1]
    sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, positions=[0, -1])  # not every token
    sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, share_opening=False)
    assert calls == [1]
    sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS[:2], share_opening=True)
    assert calls == [1, 1]


def test_share_opening_true_says_why_it_cannot(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 6)})
    with pytest.raises(sl.SteerlensError, match="every token steered"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, positions=[0], share_opening=True)
    with pytest.raises(sl.SteerlensError, match="share no opening"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS[:1], share_opening=True)
