"""Tradeoff diagnostics on the default model (integration, slow)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import steerlens as sl
from steerlens.measures.refusal import refusal_pairs
from steerlens.report.lines import LINES
from steerlens.report.settings import RefusalFindings, ReportContext, ReportSettings
from steerlens.steering.readout import next_token_logits

pytestmark = pytest.mark.slow

LAYER = 17


@pytest.fixture(scope="module")
def refusal(default_model):
    frame = sl.datasets.load("refusal")
    held_out = frame[~frame["harmful"]].tail(8)
    train = frame.drop(index=held_out.index).iloc[:24]
    positives, negatives = refusal_pairs(default_model, train)
    return sl.mean_difference(default_model, positives, negatives, layers=[LAYER]), held_out


def test_sweep_equals_naive_loop(default_model, refusal):
    vec, held_out = refusal
    prompts = [sl.format_chat(default_model, r) for r in held_out["request"].head(2)]
    coeffs = [-40.0, 60.0]
    res = sl.tradeoff.sweep(default_model, vec, coeffs, prompts)
    unit = sl.SteeringVector({LAYER: vec[LAYER] / vec[LAYER].norm()})
    for i, r in enumerate(coeffs):
        with sl.steer(default_model, sl.add(unit, r)):
            expected = next_token_logits(default_model, prompts)
        torch.testing.assert_close(res.logits(i), expected, atol=2e-3, rtol=1e-3)


def test_quick_report_stage_on_a_refusal_vector(default_model, refusal):
    """The report stage (as ``steerlens report --quick`` would run it) on a refusal vector."""
    vec, held_out = refusal
    findings = RefusalFindings(vec, held_out)
    context = ReportContext(default_model, ReportSettings(quick=True, layer=LAYER), findings)
    (line,) = [line for line in LINES if line.name == "tradeoff"]
    numbers, sections = line.stage(context)
    rep = context.studies["tradeoff"]
    b = rep.curves["B"]
    assert b.iloc[-1] > b[rep.curves["coeff"] == 0].item() > b.iloc[0]  # refusal rises with r
    for key in ("lambda", "delta", "sigma", "recommended_coeff"):
        assert math.isfinite(rep.summary[key]), key
    assert rep.lam.fits.positive is not None and rep.lam.slope > 0
    task = sl.measures.qa_task(default_model, n=12)
    assert rep.summary["h0"] == pytest.approx(
        sl.measures.helpfulness(default_model, task).p_correct
    )
    data = json.loads(json.dumps(numbers, allow_nan=False))
    assert len(data["curves"]) == 9 and len(sections) == 2
    budget = data["kl_budget"]  # sl.calibrate beside the recommendation
    assert sections[-1].title == "Tradeoff: KL budget" and "error" not in budget
    assert math.copysign(1, budget["coeff"]) == math.copysign(1, rep.recommendation.coeff)
    assert budget["achieved"] == pytest.approx(budget["kl"], rel=0.25)
    print(f"\nquick tradeoff stage: {rep.seconds:.1f} s; summary {rep.summary}")
