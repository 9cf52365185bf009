"""calibrate: the coefficient of a KL budget, checked by a hand-hooked KL in plain PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import steerlens as sl
from steerlens.core.errors import SteerlensError
from steerlens.core.tokens import encode
from steerlens.measures import calibration as calibrate_module
from tests.reference import edited

TEXTS = ["The river runs north.", "Bread is made from flour, water and salt.", "Hi"]
LAYER = 1


@pytest.fixture(scope="module")
def vec():
    return sl.SteeringVector({LAYER: torch.randn(64, generator=torch.Generator().manual_seed(2))})


def hand_token_kl(model, direction: torch.Tensor, coeff: float) -> np.ndarray:
    """Per-token KL(p || p_steered) with ``coeff * direction`` added before HF layer 1."""
    hf, kls = model.original_model, []

    for text in TEXTS:
        ids = torch.tensor([encode(model, text)])
        with torch.no_grad():
            base = torch.softmax(hf(ids).logits[0].double(), -1)
            with edited(hf, "", LAYER, "resid_pre", lambda x: x + coeff * direction):
                steered = torch.softmax(hf(ids).logits[0].double(), -1)
        kls.append((base * (base.log() - steered.log())).sum(-1))
    return torch.cat(kls).numpy()


def test_coeff_gives_the_target_kl(tiny_model, vec):
    cal = sl.calibrate(tiny_model, vec, kl=0.01, texts=TEXTS, quantile=0.9, rtol=0.02)
    kls = hand_token_kl(tiny_model, vec[LAYER], cal.coeff)
    assert cal.n_tokens == kls.size
    assert np.quantile(kls, 0.9) == pytest.approx(0.01, rel=0.021)
    assert cal.achieved == pytest.approx(float(np.quantile(kls, 0.9)), rel=1e-6)
    assert cal.curve.loc[cal.curve["coeff"] == cal.coeff, "kl_mean"].item() == pytest.approx(
        float(kls.mean()), rel=1e-6
    )


def test_curve_is_monotone_and_brackets_the_target(tiny_model, vec):
    cal = sl.calibrate(tiny_model, vec, kl=0.01, texts=TEXTS, quantile=0.9)
    curve = cal.curve
    assert list(curve.columns) == ["coeff", "kl_quantile", "kl_mean"]
    assert curve["coeff"].is_monotonic_increasing and (curve["coeff"] > 0).all()
    assert curve["kl_quantile"].is_monotonic_increasing
    assert curve["kl_quantile"].min() < 0.01 < curve["kl_quantile"].max()
    figure = cal.figure()
    assert list(figure.data[0].x) == list(curve["coeff"])
    assert [s["type"] for s in figure.layout.shapes] == ["line", "line"]


def test_opposite_direction_through_the_vector(tiny_model, vec):
    cal = sl.calibrate(tiny_model, -vec, kl=0.01, texts=TEXTS, quantile=0.9)
    kls = hand_token_kl(tiny_model, -vec[LAYER], cal.coeff)
    assert cal.coeff > 0
    assert np.quantile(kls, 0.9) == pytest.approx(0.01, rel=0.021)


def test_a_budget_beyond_saturation_is_a_clear_error(tiny_model, vec):
    with pytest.raises(SteerlensError, match="never reached 5"):
        sl.calibrate(tiny_model, vec, kl=5.0, texts=["Hi"])


def test_bad_input_before_any_compute(tiny_model, vec, monkeypatch):
    def no_compute(*_args, **_kwargs):
        raise AssertionError("computed before validating")

    monkeypatch.setattr(calibrate_module, "token_kl", no_compute)
    cases = [
        ({"kl": 0.0}, SteerlensError, "kl"),
        ({"kl": -1.0}, SteerlensError, "kl"),
        ({"kl": "big"}, TypeError, "kl"),
        ({"quantile": 0.0}, SteerlensError, "quantile"),
        ({"quantile": 1.5}, SteerlensError, "quantile"),
        ({"texts": "one text"}, TypeError, "texts"),
        ({"texts": []}, SteerlensError, "texts"),
        ({"steps": 0}, SteerlensError, "steps"),
        ({"rtol": 0.0}, SteerlensError, "rtol"),
        ({"start": -1.0}, SteerlensError, "start"),
    ]
    for kwargs, error, name in cases:
        with pytest.raises(error, match=name):
            sl.calibrate(tiny_model, vec, **kwargs)
    with pytest.raises(SteerlensError, match="layers: required"):
        sl.calibrate(tiny_model, torch.ones(64))
    with pytest.raises(SteerlensError, match="d_model"):
        sl.calibrate(tiny_model, sl.SteeringVector({1: torch.ones(32)}))
    with pytest.raises(SteerlensError, match="zero"):
        sl.calibrate(tiny_model, torch.zeros(64), layers=1)
    with pytest.raises(TypeError):
        sl.calibrate("not a model", vec)
