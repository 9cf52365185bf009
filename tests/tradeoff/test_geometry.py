"""λ, Δ, σ and the B/h curves against a hand computation on the tiny model's HF weights.

The reference runs each prompt alone (no padding) through ``model.original_model`` with a
forward pre-hook adding ``r·u`` to the input of decoder layer 1, reads the final normalized
hidden state at the last token, and applies the formulas of Wolf et al. directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.tradeoff.linefit import fit_through_origin
from tests.reference import edited

from .synthetic import make_task

LAYER = 1
COEFFS = [-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6]
PROMPTS = ["The cat sat on the mat.", "Tell me a story about a dragon.", "Numbers: 1, 2, 3"]
ALIGNED, MISALIGNED = [100, 2000, 3000], [50, 400, 9000, 12000]


def direction(model) -> torch.Tensor:
    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(7))
    return v / v.norm()


def hand_final(model, prompts, u, coeffs) -> torch.Tensor:
    """``[n_coeffs, n_prompts, d_model]`` final normalized hidden state at the last token."""
    hf = model.original_model
    out = torch.empty(len(coeffs), len(prompts), model.cfg.d_model)
    for i, r in enumerate(coeffs):
        with edited(hf, "", LAYER, "resid_pre", lambda x, r=r: x + r * u), torch.no_grad():
            for j, text in enumerate(prompts):
                ids = torch.tensor([encode(model, text)])
                out[i, j] = hf(ids, output_hidden_states=True).hidden_states[-1][0, -1]
    return out


def side_slope(r, y, absolute=True):
    """Mean of the per-side least-squares slopes through the origin (all points)."""
    slopes = []
    for sign in (1, -1):
        side = np.sign(r) == sign
        x = np.abs(r[side]) if absolute else r[side]
        slopes.append((x * y[side]).sum() / (x * x).sum())
    return float(np.mean(slopes))


@pytest.fixture(scope="module")
def setup(tiny_model):
    u = direction(tiny_model)
    vec = sl.SteeringVector({LAYER: 5.0 * u})  # sweep normalizes it back to u
    res = sl.tradeoff.sweep(tiny_model, vec, COEFFS, PROMPTS, batch_size=2, max_rows=5)
    final = hand_final(tiny_model, PROMPTS, u, COEFFS)
    return res, final


def test_sweep_final_matches_hand(setup):
    res, final = setup
    torch.testing.assert_close(res.final, final, atol=1e-4, rtol=1e-4)


def test_lambda_matches_hand(setup, tiny_model):
    res, final = setup
    delta = final - final[COEFFS.index(0.0)][None]
    r = np.array(COEFFS)
    w = tiny_model.original_model.lm_head.weight.detach()
    for space, norms in (("resid", delta.norm(dim=-1)), ("logits", (delta @ w.T).norm(dim=-1))):
        lam = sl.tradeoff.estimate_lambda(res, space=space, r2_min=-math.inf)
        expected = side_slope(r, norms.mean(1).double().numpy())
        assert lam.slope == pytest.approx(expected, rel=1e-4)
        assert lam.fits.positive.x_max == 0.6 and lam.fits.negative.x_max == 0.6
        per_query = [side_slope(r, norms[:, q].double().numpy()) for q in range(len(PROMPTS))]
        np.testing.assert_allclose(lam.per_query.numpy(), per_query, rtol=1e-4)


def test_margin_matches_hand(setup, tiny_model):
    res, final = setup
    delta = final - final[COEFFS.index(0.0)][None]
    w = tiny_model.original_model.lm_head.weight.detach()
    est = sl.tradeoff.estimate_margin(
        res, torch.tensor(ALIGNED), torch.tensor(MISALIGNED), r2_min=-1e9
    )
    nonzero = [i for i, c in enumerate(COEFFS) if c != 0]
    for row, i in enumerate(nonzero):
        for q in range(len(PROMPTS)):
            unit = delta[i, q] / delta[i, q].norm()
            pairs = [float(unit @ (w[a] - w[m])) for a in ALIGNED for m in MISALIGNED]
            assert float(est.min_margin[row, q]) == pytest.approx(min(pairs), abs=1e-5)
            assert float(est.mean_margin[row, q]) == pytest.approx(np.mean(pairs), abs=1e-5)
    gap = w[ALIGNED].mean(0) - w[MISALIGNED].mean(0)
    separation = (delta @ gap).mean(1).double().numpy()
    expected = side_slope(np.array(COEFFS), separation, absolute=False)
    assert est.delta_lambda.slope == pytest.approx(expected, rel=1e-4)
    summary = est.summary(r_max=0.4)
    rows = [nonzero.index(COEFFS.index(0.2)), nonzero.index(COEFFS.index(0.4))]
    assert summary["delta"] == pytest.approx(float(est.mean_margin[rows].mean()))


def test_noise_matches_hand(setup, tiny_model):
    res, final = setup
    delta = final - final[COEFFS.index(0.0)][None]
    w = tiny_model.original_model.lm_head.weight.detach()
    correct = torch.tensor([11, 222, 3333])
    est = sl.tradeoff.estimate_noise(res, correct, top_t=5, r2_min=-math.inf)
    base_logits = final[COEFFS.index(0.0)] @ w.T
    nonzero = [i for i, c in enumerate(COEFFS) if c != 0]
    for q in range(len(PROMPTS)):
        ranked = [int(t) for t in base_logits[q].argsort(descending=True) if t != correct[q]]
        assert est.tokens[q].tolist() == ranked[:5]
    for row, i in enumerate(nonzero):
        xs, ys = [], []
        for q in range(len(PROMPTS)):
            diff = w[est.tokens[q]] - w[correct[q]]
            ys += (diff @ delta[i, q]).tolist()
            xs += (diff @ (delta[i, q] / delta[i, q].norm())).tolist()
        assert float(est.sigma[row]) == pytest.approx(np.std(xs, ddof=1), rel=1e-4)
        assert float(est.spread[i]) == pytest.approx(np.std(ys, ddof=1), rel=1e-4)
    spread = est.spread.double().numpy()
    assert est.lambda_sigma.slope == pytest.approx(side_slope(np.array(COEFFS), spread), rel=1e-4)
    assert est.lambda_sigma_beta == pytest.approx(math.sqrt(2 / math.pi) * est.lambda_sigma.slope)
    assert 0 <= est.normality["shapiro_p"] <= 1 and est.normality["n"] == 15


def test_behaviour_and_helpfulness_curves_match_hand(tiny_model):
    u = direction(tiny_model)
    task = make_task(tiny_model, n=4)
    spec = sl.tradeoff.BehaviourSpec(tuple(task.prompts), tuple(ALIGNED), tuple(MISALIGNED))
    res = sl.tradeoff.sweep(tiny_model, sl.SteeringVector({LAYER: u}), COEFFS, task.prompts)
    logits = (
        hand_final(tiny_model, task.prompts, u, COEFFS)
        @ tiny_model.original_model.lm_head.weight.detach().T
    )
    probs = logits.softmax(-1)
    p_a, p_m = probs[..., ALIGNED].sum(-1), probs[..., MISALIGNED].sum(-1)
    b = sl.tradeoff.behaviour_curve(res, spec)
    torch.testing.assert_close(b.raw, p_a - p_m, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(b.normalized, (p_a - p_m) / (p_a + p_m), atol=1e-5, rtol=1e-4)
    choice = torch.gather(logits, 2, task.choice_ids[None].expand(len(COEFFS), -1, -1))
    p_choice = choice.softmax(-1)
    h = sl.tradeoff.helpfulness_curve(res, task)
    expected = p_choice.gather(2, task.correct[None, :, None].expand(len(COEFFS), -1, 1))[..., 0]
    torch.testing.assert_close(h.p_correct, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h.correct, (p_choice.argmax(-1) == task.correct).float())
    assert h.n_choices == 4
    assert list(h.table.columns) == ["coeff", "h", "h_sem", "accuracy", "accuracy_sem"]


@settings(max_examples=30, deadline=None)
@given(slope=st.floats(0.1, 10), kink=st.integers(3, 8))
def test_range_selection_stops_at_a_kink(slope, kink):
    x = np.arange(1, 13, dtype=float)
    y = np.where(x <= kink, slope * x, slope * kink + 3 * slope * (x - kink) ** 2)
    fit = fit_through_origin(x, y, r2_min=0.999)
    assert fit.linear and fit.slope == pytest.approx(slope)
    assert kink <= fit.x_max < kink + 2 and fit.r2 >= 0.999
    straight = fit_through_origin(np.r_[-x, x], np.r_[-slope * x, slope * x], r2_min=0.999)
    assert straight.x_max == 12 and straight.r2 == pytest.approx(1.0)


def test_bad_inputs(setup, tiny_model):
    res, _ = setup
    with pytest.raises(sl.SteerlensError, match="'resid', 'logits'"):
        sl.tradeoff.estimate_lambda(res, space="hidden")
    with pytest.raises(sl.SteerlensError, match="top_t"):
        sl.tradeoff.estimate_noise(res, torch.tensor([1, 2, 3]), top_t=1)
    with pytest.raises(sl.SteerlensError, match="correct"):
        sl.tradeoff.estimate_noise(res, torch.tensor([1, 2]))
    with pytest.raises(sl.SteerlensError, match="at least 3"):
        fit_through_origin(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    with pytest.raises(sl.SteerlensError, match="NaN"):
        fit_through_origin(np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 3.0]))
    spec = sl.tradeoff.BehaviourSpec(("other prompt",), (1,), (2,))
    with pytest.raises(sl.SteerlensError, match="other prompts"):
        sl.tradeoff.behaviour_curve(res, spec)
    with pytest.raises(sl.SteerlensError, match="ChoiceTask"):
        sl.tradeoff.helpfulness_curve(res, object())


def test_behaviour_spec_validation(tiny_model):
    with pytest.raises(sl.SteerlensError, match="overlap"):
        sl.tradeoff.BehaviourSpec(("p",), (1, 2), (2, 3))
    with pytest.raises(sl.SteerlensError, match="at least one token"):
        sl.tradeoff.BehaviourSpec(("p",), (), (2,))
    with pytest.raises(sl.SteerlensError, match="twice"):
        sl.tradeoff.BehaviourSpec(("p",), (1, 1), (2,))
    with pytest.raises(sl.SteerlensError, match="at least one text"):
        sl.tradeoff.BehaviourSpec((), (1,), (2,))
    with pytest.raises(sl.SteerlensError, match="not one"):
        sl.tradeoff.BehaviourSpec.from_words(
            tiny_model, ["p"], [" antidisestablishmentarianism"], ["No"]
        )
    with pytest.raises(sl.SteerlensError, match="non-empty list of words"):
        sl.tradeoff.BehaviourSpec.from_words(tiny_model, ["p"], "Yes", ["No"])
    spec = sl.tradeoff.BehaviourSpec.from_words(tiny_model, ["p"], ["Yes"], ["No"])
    assert spec.labels == (("Yes",), ("No",))
    refusal = sl.tradeoff.refusal_behaviour(tiny_model, n=5)
    assert len(refusal.prompts) == 5 and refusal.name == "refusal"
    with pytest.raises(sl.SteerlensError, match="n: expected"):
        sl.tradeoff.refusal_behaviour(tiny_model, n=0)
