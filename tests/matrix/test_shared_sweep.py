"""``sl.tradeoff.sweep`` over prompts that open alike (the shared opening runs once per
coefficient, through the model's KV cache) equals full forwards under ``sl.steer`` on every
architecture."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.steering.readout import next_token_logits
from steerlens.steering.sweep import SweepPlan
from steerlens.steering.sweep.shared_opening import shared_length
from tests.architectures import ARCHITECTURES, build

OPENING = "Q: what colour is the sky? A: blue. Q: how many legs has a cat? A: four. Q: "
PROMPTS = [OPENING + "what is ice? A:", OPENING + "which animal says moo all day? A:"]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_shared_opening_sweep_equals_steered_forwards(name, tokenizer):
    model, _ = build(name, tokenizer)
    sequences = [encode(model, p) for p in PROMPTS]
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(3))
    vector = sl.SteeringVector({1: direction / direction.norm()})
    plan = SweepPlan((sl.add(vector, 1.0),), share_opening=True)
    assert shared_length(model, sequences, plan) > 20
    coeffs = [-4.0, 0.0, 2.5]
    res = sl.tradeoff.sweep(model, vector, coeffs, PROMPTS, max_rows=3, share_opening=True)
    for index, r in enumerate(coeffs):
        with sl.steer(model, sl.add(vector, r)):
            expected = next_token_logits(model, PROMPTS, batch_size=1)
        torch.testing.assert_close(res.logits(index), expected, atol=2e-4, rtol=1e-4)
