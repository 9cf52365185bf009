"""The tradeoff stage's KL budget section, on the tiny model (no full report run)."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.report.kl_budget import kl_budget
from steerlens.report.settings import ReportSettings

from ..measures.test_calibrate import LAYER, TEXTS, hand_token_kl


@pytest.fixture(scope="module")
def unit():
    direction = torch.randn(64, generator=torch.Generator().manual_seed(2))
    return sl.SteeringVector({LAYER: direction / direction.norm()})


@pytest.mark.parametrize("recommended", [0.05, -0.05])
def test_kl_budget_next_to_the_recommendation(tiny_model, unit, recommended, monkeypatch):
    monkeypatch.setattr("steerlens.report.kl_budget.neutral_texts", lambda: list(TEXTS))
    settings = ReportSettings(kl_budget=0.01, kl_texts=3)
    numbers, section = kl_budget(tiny_model, settings, unit, recommended, start=0.1)
    assert numbers["n_texts"] == 3 and numbers["quantile"] == 0.95
    assert (numbers["coeff"] > 0) == (recommended > 0)  # calibrated on the recommended side
    hand = hand_token_kl(tiny_model, unit[LAYER], numbers["coeff"])
    assert float(torch.tensor(hand).quantile(0.95)) == pytest.approx(0.01, rel=0.051)
    at_recommended = hand_token_kl(tiny_model, unit[LAYER], recommended)
    expected = float(torch.tensor(at_recommended).quantile(0.95))
    assert numbers["kl_at_recommended"] == pytest.approx(expected, rel=1e-6)
    assert section.title == "Tradeoff: KL budget" and len(section.figures) == 1
    assert f"{recommended:g}" in section.paragraphs[0]


def test_kl_settings_are_checked():
    with pytest.raises(sl.SteerlensError, match="kl_budget"):
        ReportSettings(kl_budget=0.0)
    with pytest.raises(sl.SteerlensError, match="kl_texts"):
        ReportSettings(kl_texts=0)
