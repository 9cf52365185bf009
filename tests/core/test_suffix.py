"""Prefix + suffix replay equals the full forward (tiny model), with padding and tiling."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.forward import mask_kwargs
from steerlens.core.suffix import compute_prefix, run_suffix, unembed
from steerlens.core.tokens import encode, left_pad, single_token_id
from steerlens.steering.readout import next_token_logits

TEXTS = ["A short one.", "A somewhat longer sentence with more tokens in it."]


def batch(model):
    return left_pad(model, [encode(model, t) for t in TEXTS])


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_suffix_matches_full_forward(tiny_model, layer):
    tokens, mask = batch(tiny_model)
    prefix = compute_prefix(tiny_model, tokens, mask, layer)
    with torch.no_grad():
        full = tiny_model(tokens, **mask_kwargs(tiny_model, mask))
        replayed = unembed(tiny_model, run_suffix(tiny_model, prefix, prefix.resid))
    real = mask.bool()
    torch.testing.assert_close(replayed[real], full[real], atol=1e-4, rtol=1e-4)
    baseline = unembed(tiny_model, prefix.final)
    torch.testing.assert_close(baseline[real], full[real], atol=1e-4, rtol=1e-4)


def test_suffix_with_addition_matches_steer(tiny_model):
    """Adding v to the prefix residual == sl.add at that layer, all positions."""
    tokens, mask = batch(tiny_model)
    v = torch.randn(64, generator=torch.Generator().manual_seed(0))
    prefix = compute_prefix(tiny_model, tokens, mask, 1)
    with torch.no_grad():
        ours = unembed(tiny_model, run_suffix(tiny_model, prefix, prefix.resid + 2.0 * v))
        with sl.steer(tiny_model, sl.add(v, 2.0, layers=[1])):
            expected = tiny_model(tokens, **mask_kwargs(tiny_model, mask))
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=1e-4, rtol=1e-4)


def test_tile_runs_variants_of_each_row(tiny_model):
    tokens, mask = batch(tiny_model)
    prefix = compute_prefix(tiny_model, tokens, mask, 1)
    v = torch.randn(64, generator=torch.Generator().manual_seed(1))
    tiled = prefix.tile(3)
    coeffs = torch.tensor([0.0, 1.0, -2.0]).repeat_interleave(2)[:, None, None]
    with torch.no_grad():
        together = run_suffix(tiny_model, tiled, tiled.resid + coeffs * v)
        for k, c in enumerate([0.0, 1.0, -2.0]):
            alone = run_suffix(tiny_model, prefix, prefix.resid + c * v)
            real = mask.bool()
            torch.testing.assert_close(together[2 * k : 2 * k + 2][real], alone[real])


def test_gradient_reaches_the_added_vector(tiny_model):
    tokens, mask = batch(tiny_model)
    prefix = compute_prefix(tiny_model, tokens, mask, 2)
    v = torch.zeros(64, requires_grad=True)
    loss = unembed(tiny_model, run_suffix(tiny_model, prefix, prefix.resid + v))[:, -1, 7].sum()
    (grad,) = torch.autograd.grad(loss, [v])
    assert grad.abs().sum() > 0


def test_suffix_refuses_wrong_shape(tiny_model):
    tokens, mask = batch(tiny_model)
    prefix = compute_prefix(tiny_model, tokens, mask, 1)
    with pytest.raises(sl.SteerlensError, match="tile"):
        run_suffix(tiny_model, prefix, prefix.resid[:1])


def test_next_token_logits_match_single_runs(tiny_model):
    logits = next_token_logits(tiny_model, TEXTS, batch_size=2)
    for row, text in enumerate(TEXTS):
        with torch.no_grad():
            alone = tiny_model(torch.tensor([encode(tiny_model, text)]))[0, -1]
        torch.testing.assert_close(logits[row], alone, atol=1e-4, rtol=1e-4)


def test_single_token_id(tiny_model):
    assert isinstance(single_token_id(tiny_model, " Yes"), int)
    with pytest.raises(sl.SteerlensError, match="not one"):
        single_token_id(tiny_model, " antidisestablishmentarianism")
