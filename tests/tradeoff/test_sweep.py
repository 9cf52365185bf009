"""Coefficient sweeps equal the naive loop of full forwards under sl.steer (tiny model)."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.steering.readout import next_token_logits

PROMPTS = [
    "A short one.",
    "A somewhat longer sentence with more tokens in it, to force left padding.",
    "Three.",
]


def unit(model, seed: int) -> torch.Tensor:
    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def naive(model, vector, coeffs, prompts, positions="all"):
    """Reference: one full forward per coefficient under sl.steer(sl.add(v, r))."""
    rows = []
    for r in coeffs:
        with sl.steer(model, sl.add(vector, float(r), positions=positions)):
            rows.append(next_token_logits(model, prompts, batch_size=len(prompts)))
    return torch.stack(rows)


def sweep_logits(res):
    return torch.stack([res.logits(i) for i in range(res.n_coeffs)])


def test_sweep_matches_naive_loop_one_layer(tiny_model, max_rows=4):
    """(Rows per pass from 1 to 64: tests/steering/test_sweep.py.)"""
    vec = sl.SteeringVector({1: 3.0 * unit(tiny_model, 0)})
    coeffs = [-2.0, 0.0, 0.5, 3.0]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, batch_size=2, max_rows=max_rows)
    unit_vec = sl.SteeringVector({1: vec[1] / vec[1].norm()})
    expected = naive(tiny_model, unit_vec, coeffs, PROMPTS)
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)
    assert res.final.shape == (4, 3, tiny_model.cfg.d_model)


def test_sweep_several_layers_and_unnormalised(tiny_model):
    """Later layers are added by hooks with per-row coefficients; normalize=False adds r·v."""
    vec = sl.SteeringVector({0: 2.0 * unit(tiny_model, 1), 2: 0.5 * unit(tiny_model, 2)})
    coeffs = [1.5, -1.0, 0.25]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, normalize=False, max_rows=4)
    expected = naive(tiny_model, vec, coeffs, PROMPTS)
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(res.base_logits(), naive(tiny_model, vec, [0.0], PROMPTS)[0])


@pytest.mark.parametrize("site", ["resid_mid", "resid_post"])
def test_sweep_other_sites(tiny_model, site):
    vec = sl.SteeringVector({1: unit(tiny_model, 3)}, site=site)
    coeffs = [-3.0, 2.0]
    res = sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS, max_rows=6)
    torch.testing.assert_close(
        sweep_logits(res), naive(tiny_model, vec, coeffs, PROMPTS), atol=2e-4, rtol=1e-4
    )


def test_sweep_explicit_positions_and_single_prompt(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 4)})
    coeffs = [4.0, -4.0, 1.0]
    for prompts in (PROMPTS, PROMPTS[:1]):
        res = sl.tradeoff.sweep(tiny_model, vec, coeffs, prompts, positions=[0, -1], max_rows=8)
        expected = naive(tiny_model, vec, coeffs, prompts, positions=[0, -1])
        torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)


def test_readouts_agree_with_full_logits(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 5)})
    res = sl.tradeoff.sweep(tiny_model, vec, [-2.0, 2.0], PROMPTS)
    full = sweep_logits(res)
    ids = torch.tensor([5, 17, 300])
    torch.testing.assert_close(res.token_logits(ids), full[..., ids])
    per_query = torch.tensor([[1, 2], [3, 4], [5, 6]])
    torch.testing.assert_close(
        res.token_logits(per_query), torch.gather(full, 2, per_query[None].expand(2, -1, -1))
    )
    base = res.base_logits()
    torch.testing.assert_close(res.token_delta_logits(ids), full[..., ids] - base[None][..., ids])
    torch.testing.assert_close(res.log_normalizer(), full.logsumexp(-1))
    torch.testing.assert_close(res.delta, res.final - res.base[None])
    assert res.index(2.0) == 1


def test_zero_coefficient_changes_nothing(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 6)})
    res = sl.tradeoff.sweep(tiny_model, vec, [0.0, 1.0], PROMPTS)
    assert torch.equal(res.final[0], res.base)
    assert float(res.delta[0].abs().max()) == 0.0


@pytest.mark.parametrize(
    ("coeffs", "match"),
    [
        ([], "at least one"),
        ([1.0, float("nan")], "finite"),
        ([1.0, float("inf")], "finite"),
        ([1.0, 1.0], "distinct"),
        (torch.ones(2, 2), "1-D"),
        (torch.tensor([1.0, float("nan")]), "finite"),
    ],
)
def test_bad_coefficients(tiny_model, coeffs, match):
    vec = sl.SteeringVector({1: unit(tiny_model, 0)})
    with pytest.raises(sl.SteerlensError, match=match):
        sl.tradeoff.sweep(tiny_model, vec, coeffs, PROMPTS)


def test_bad_inputs(tiny_model):
    vec = sl.SteeringVector({1: unit(tiny_model, 0)})
    with pytest.raises(sl.SteerlensError, match="at least one text"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], [])
    with pytest.raises(sl.SteerlensError, match="single string"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], "one prompt")
    with pytest.raises(sl.SteerlensError, match="selects no token"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, positions="generated")
    with pytest.raises(sl.SteerlensError, match="zero vector has no direction"):
        sl.tradeoff.sweep(tiny_model, sl.SteeringVector({1: torch.zeros(64)}), [1.0], PROMPTS)
    with pytest.raises(sl.SteerlensError, match="d_model"):
        sl.tradeoff.sweep(tiny_model, sl.SteeringVector({1: torch.ones(8)}), [1.0], PROMPTS)
    with pytest.raises(sl.SteerlensError, match="max_rows"):
        sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS, max_rows=0)
    res = sl.tradeoff.sweep(tiny_model, vec, [1.0], PROMPTS)
    with pytest.raises(sl.SteerlensError, match="not among"):
        res.index(2.0)
    with pytest.raises(sl.SteerlensError, match="shape"):
        res.token_logits(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(sl.SteerlensError, match="token ids"):
        res.token_logits(torch.tensor([10**7]))
