"""tradeoff_report end to end on the tiny model: tables, figures, JSON, sections, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.report.html import render
from steerlens.report.lines import study_section
from steerlens.tradeoff import TradeoffSettings

from .synthetic import COEFFS, PROMPTS, synthetic_setup, synthetic_vector

REQUIRED = (
    "lambda",
    "delta",
    "sigma",
    "delta_lambda_fit",
    "lambda_sigma_beta_fit",
    "recommended_coeff",
)


@pytest.fixture(scope="module")
def vector(tiny_model):
    return synthetic_vector(tiny_model)


@pytest.fixture(scope="module")
def report(tradeoff_result):
    return tradeoff_result


def test_summary_has_the_contract_keys(report):
    summary = report.summary
    for key in REQUIRED:
        assert isinstance(summary[key], float) and math.isfinite(summary[key]), key
    assert summary["lambda"] == pytest.approx(report.lam.slope)
    assert summary["delta_lambda_fit"] == report.behaviour_fit.params["delta_lambda"]
    assert summary["lambda_sigma_beta_fit"] == report.helpfulness_fit.params["lambda_sigma_beta"]
    assert summary["recommended_coeff"] in COEFFS.tolist()


def test_repr_is_short(report):
    assert len(repr(report)) < 400 and "recommended r=" in repr(report)
    assert len(repr(report.behaviour_sweep)) < 400


def test_tables_agree_with_the_curves(report):
    curves = report.curves
    assert len(curves) == len(COEFFS)
    np.testing.assert_allclose(curves["B"], report.behaviour.normalized.mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(curves["h"], report.helpfulness.p_correct.mean(1).numpy(), rtol=1e-6)
    # the measured recommendation, recomputed from the table by hand
    h0 = curves.loc[curves["coeff"] == 0, "h"].item()
    b0 = curves.loc[curves["coeff"] == 0, "B"].item()
    ok = curves[curves["h"] >= 0.95 * h0]
    best = ok.sort_values("B", ascending=False).iloc[0]
    expected = best["coeff"] if best["B"] > b0 else 0.0
    assert report.recommendation.coeff == pytest.approx(expected)
    assert set(report.fits["parameter"]) >= {"delta_lambda", "b0", "a", "lambda_sigma_beta"}
    assert list(report.comparison["quantity"]) == ["Δλ", "λσβ"]
    assert report.geometry["quantity"].str.startswith("λ").any()


def test_to_dict_is_json_and_complete(report):
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(REQUIRED) <= set(data["summary"])
    assert len(data["curves"]) == len(COEFFS)
    assert data["settings"]["coeffs"] == pytest.approx(COEFFS.tolist())


def test_figures_and_sections(report):
    figures = report.figures()
    assert set(figures) == {"behaviour", "helpfulness", "lambda", "noise_histogram", "noise_spread"}
    assert all(isinstance(f, go.Figure) for f in figures.values())
    assert len(figures["behaviour"].data) == 2  # measured + tanh fit
    assert len(figures["lambda"].data) == 3  # measured + one line per side
    page = render("tradeoff", [study_section("tradeoff", report)])
    assert page.count('class="figure"') == 5


def test_default_coefficients(tiny_model, vector):
    """Quadratic spacing up to span x the median last-token residual norm (HF, unpadded)."""
    spec, task = synthetic_setup(tiny_model, vector, PROMPTS[:4], 1.0)
    settings = TradeoffSettings.quick(floor=0.0, n_boot=5, span=5.0)
    rep = sl.tradeoff_report(tiny_model, vector, spec, task, settings=settings)
    norms = []
    for text in PROMPTS[:4]:
        ids = torch.tensor([encode(tiny_model, text)])
        with torch.no_grad():
            hidden = tiny_model.original_model(ids, output_hidden_states=True).hidden_states
        norms.append(float(hidden[1][0, -1].norm()))  # input of decoder layer 1
    reach = 5.0 * sorted(norms)[1]  # torch.median: the lower middle of 4 values
    x = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(rep.settings["coeffs"], reach * x * np.abs(x), rtol=1e-3)
    with pytest.raises(sl.SteerlensError, match="span"):
        TradeoffSettings(span=-1.0)


def test_a_failed_fit_is_reported_not_fatal(tiny_model, vector):
    spec, task = synthetic_setup(tiny_model, vector, PROMPTS[:4], 1.0)
    wrong = type(task)(task.prompts, task.choice_ids, torch.full((4,), 3))  # a least-likely choice
    settings = TradeoffSettings(n_boot=5)
    rep = sl.tradeoff_report(tiny_model, vector, spec, wrong, coeffs=COEFFS, settings=settings)
    assert rep.helpfulness_fit is None and "at chance" in rep.failures["theorem2_floor_0.25"]
    assert math.isnan(rep.summary["lambda_sigma_beta_fit"])
    assert math.isfinite(rep.summary["delta_lambda_fit"])
    data = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert data["summary"]["lambda_sigma_beta_fit"] is None and data["failures"]
    assert "Not fitted (theorem2_floor_0.25)" in render("t", [study_section("t", rep)])


def test_behaviour_range_follows_the_token_mass(tiny_model, vector, report):
    mass = (report.behaviour.aligned_mass + report.behaviour.misaligned_mass).mean(1)
    r = report.behaviour.coeffs
    low, high = report.settings["behaviour_range"]
    inside = (r >= low) & (r <= high)
    assert bool((mass[inside] >= 0.1 * mass[r == 0]).all())
    spec, task = synthetic_setup(tiny_model, vector, PROMPTS[:3], 1.0)
    settings = TradeoffSettings(floor=0.0, n_boot=5, min_mass=100.0)
    strict = sl.tradeoff_report(tiny_model, vector, spec, task, coeffs=COEFFS, settings=settings)
    assert strict.settings["behaviour_range"] == [0.0, 0.0]
    assert strict.behaviour_fit is None and "at least 3" in strict.failures["theorem1"]
    assert strict.recommendation.coeff == 0.0


def test_bad_input(tiny_model, vector):
    spec, task = synthetic_setup(tiny_model, vector, PROMPTS[:3], 1.0)
    with pytest.raises(sl.SteerlensError, match="3 positive and 3 negative"):
        sl.tradeoff_report(tiny_model, vector, spec, task, coeffs=[-1.0, 0.0, 1.0, 2.0])
    with pytest.raises(sl.SteerlensError, match="finite"):
        sl.tradeoff_report(tiny_model, vector, spec, task, coeffs=[-1.0, float("nan"), 1.0])
    with pytest.raises(sl.SteerlensError, match="floor"):
        TradeoffSettings(floor="zero")
    with pytest.raises(sl.SteerlensError, match="n_boot"):
        TradeoffSettings(n_boot=-1)
    with pytest.raises((sl.SteerlensError, TypeError), match="ChoiceTask|helpfulness"):
        sl.tradeoff_report(tiny_model, vector, spec, 123, coeffs=COEFFS)


def test_completion_behaviour_scores_replies(tiny_model, vector):
    prompts = PROMPTS[:2]
    out = sl.tradeoff.completion_behaviour(
        tiny_model, vector, [-1.0, 0.0, 1.0], prompts, score=lambda text: True, max_new_tokens=3
    )
    assert out.table["B"].tolist() == [1.0, 1.0, 1.0] and len(out.replies) == 6
    half = sl.tradeoff.completion_behaviour(
        tiny_model, vector, [0.0, 1.0], prompts, score=lambda text: 0.5, max_new_tokens=2
    )
    assert torch.equal(half.scores, torch.full((2, 2), 0.5))
    with pytest.raises(sl.SteerlensError, match="score: must return"):
        sl.tradeoff.completion_behaviour(
            tiny_model, vector, [1.0], prompts, score=lambda text: 2.0, max_new_tokens=2
        )
    with pytest.raises(sl.SteerlensError, match="finite"):
        sl.tradeoff.completion_behaviour(tiny_model, vector, [float("inf")], prompts)
