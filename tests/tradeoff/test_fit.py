"""Curve fits recover known parameters from synthetic curves; recommendations by closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlens as sl
from steerlens.tradeoff.fit import parabolic_curve, tanh_curve

R = np.linspace(-6, 6, 25)


def noisy(curve: np.ndarray, n_queries: int, scale: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return curve[:, None] + rng.normal(0, scale, (curve.size, n_queries))


def test_tanh_fit_recovers_parameters_with_ci():
    values = np.clip(noisy(np.tanh(0.8 * R - 0.4), 40, 0.05), -1, 1)
    fit = sl.tradeoff.fit_behaviour(R, values, n_boot=100, seed=1)
    assert fit.params["delta_lambda"] == pytest.approx(0.8, rel=0.05)
    assert fit.params["b0"] == pytest.approx(-0.4, abs=0.05)
    low, high = fit.ci["delta_lambda"]
    assert low < 0.8 < high and low < fit.params["delta_lambda"] < high
    mean = values.mean(1)
    by_hand = (
        1
        - ((mean - np.tanh(fit.params["delta_lambda"] * R + fit.params["b0"])) ** 2).sum()
        / ((mean - mean.mean()) ** 2).sum()
    )
    assert fit.r2 == pytest.approx(by_hand)
    assert fit.params["B0"] == pytest.approx(math.tanh(fit.params["b0"]))


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.1, 2.0), b0=st.floats(-1.5, 1.5))
def test_tanh_fit_exact_curves(a, b0):
    fit = sl.tradeoff.fit_behaviour(R, tanh_curve(R, a, b0), n_boot=0)
    assert fit.params["delta_lambda"] == pytest.approx(a, rel=1e-4, abs=1e-6)
    assert fit.params["b0"] == pytest.approx(b0, abs=1e-4)
    flipped = sl.tradeoff.fit_behaviour(-R, tanh_curve(R, a, b0), n_boot=0)
    assert flipped.params["delta_lambda"] == pytest.approx(-a, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("floor", [0.0, 0.25])
def test_parabolic_fit_recovers_parameters_with_ci(floor):
    truth = parabolic_curve(R, 0.3, 0.6, floor)
    values = np.clip(noisy(truth, 50, 0.03, seed=2), 0, 1)
    fit = sl.tradeoff.fit_helpfulness(R, values, floor=floor, n_boot=100)
    assert fit.params["a"] == pytest.approx(0.3, rel=0.15)
    assert fit.params["lambda_sigma_beta"] == pytest.approx(0.6, rel=0.1)
    low, high = fit.ci["lambda_sigma_beta"]
    assert low < 0.6 < high
    assert fit.params["h0"] == pytest.approx(floor + (1 - floor) / 1.3, abs=0.02)
    np.testing.assert_allclose(
        fit.predict(R), parabolic_curve(R, fit.params["a"], fit.params["lambda_sigma_beta"], floor)
    )


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.05, 3.0), b=st.floats(0.05, 2.0), floor=st.sampled_from([0.0, 0.25]))
def test_parabolic_fit_exact_curves(a, b, floor):
    fit = sl.tradeoff.fit_helpfulness(R, parabolic_curve(R, a, b, floor), floor=floor, n_boot=0)
    assert fit.params["a"] == pytest.approx(a, rel=1e-3)
    assert fit.params["lambda_sigma_beta"] == pytest.approx(b, rel=1e-3)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)


def test_bootstrap_is_seeded():
    values = np.clip(noisy(np.tanh(0.5 * R), 20, 0.1), -1, 1)
    one = sl.tradeoff.fit_behaviour(R, values, n_boot=30, seed=3)
    two = sl.tradeoff.fit_behaviour(R, values, n_boot=30, seed=3)
    assert one.ci == two.ci
    np.testing.assert_array_equal(one.replicates, two.replicates)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": np.zeros((25, 4))}, "does not change"),
        ({"values": np.full((25, 4), np.nan)}, "finite"),
        ({"values": np.ones((24, 4))}, "shape"),
        ({"values": np.full((25, 4), 2.0)}, r"\[-1, 1\]"),
        ({"values": np.zeros((25, 0))}, "no queries"),
        ({"coeffs": np.array([0.0, 1.0]), "values": np.array([0.1, 0.2])}, "at least 3"),
        ({"values": np.tanh(R), "n_boot": -1}, "n_boot"),
    ],
)
def test_behaviour_fit_refuses_bad_input(kwargs, match):
    args = {"coeffs": R, **kwargs}
    with pytest.raises(sl.SteerlensError, match=match):
        sl.tradeoff.fit_behaviour(args.pop("coeffs"), args.pop("values"), **args)


def test_helpfulness_fit_refuses_bad_input():
    flat = np.full(R.size, 0.5)
    with pytest.raises(sl.SteerlensError, match="flat curve"):
        sl.tradeoff.fit_helpfulness(R, flat)
    with pytest.raises(sl.SteerlensError, match="at chance"):
        sl.tradeoff.fit_helpfulness(R, parabolic_curve(R, 0.3, 0.6) * 0.2, floor=0.25)
    with pytest.raises(sl.SteerlensError, match="probabilities"):
        sl.tradeoff.fit_helpfulness(R, parabolic_curve(R, 0.3, 0.6) + 1.0)
    with pytest.raises(sl.SteerlensError, match="floor"):
        sl.tradeoff.fit_helpfulness(R, parabolic_curve(R, 0.3, 0.6), floor=1.5)
    rising = 0.4 + 0.01 * R**2  # helpfulness that grows with |r|: no bound to fit
    with pytest.raises(sl.SteerlensError, match="does not fall away"):
        sl.tradeoff.fit_helpfulness(R, rising)


def test_recommendation_from_measured_curves():
    coeffs = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    b = np.array([-0.9, -0.7, -0.5, 0.0, 0.4, 0.6])
    h = np.array([0.60, 0.79, 0.80, 0.78, 0.765, 0.5])
    rec = sl.tradeoff.recommend_coefficient(coeffs, b, h, budget=0.05)
    assert rec.coeff == 2.0  # 0.765 >= 0.95 * 0.8 = 0.76; r = 3 drops h too far
    assert rec.gain == pytest.approx(0.9)
    assert rec.h_ratio == pytest.approx(0.765 / 0.8)
    strict = sl.tradeoff.recommend_coefficient(coeffs, b, h, budget=0.01)
    assert strict.coeff == 0.0 and strict.gain == 0.0
    recovers = np.array([0.60, 0.79, 0.80, 0.70, 0.60, 0.90])  # h dips, then comes back
    rec = sl.tradeoff.recommend_coefficient(coeffs, b, recovers, budget=0.05)
    assert rec.coeff == 0.0  # r = 3 is within budget but lies beyond the dip at r = 1


@pytest.mark.parametrize("floor", [0.0, 0.25])
def test_recommendation_from_fits_meets_budget_exactly(floor):
    r = np.linspace(-10, 10, 21)
    b_fit = sl.tradeoff.fit_behaviour(r, tanh_curve(r, 0.3, -0.5), n_boot=0)
    h_fit = sl.tradeoff.fit_helpfulness(
        r, parabolic_curve(r, 0.4, 0.2, floor), floor=floor, n_boot=0
    )
    rec = sl.tradeoff.recommend_coefficient(
        r,
        tanh_curve(r, 0.3, -0.5),
        parabolic_curve(r, 0.4, 0.2, floor),
        budget=0.05,
        behaviour_fit=b_fit,
        helpfulness_fit=h_fit,
        target=0.6,
    )
    h0 = parabolic_curve(0.0, 0.4, 0.2, floor)
    assert rec.coeff_fit > 0 and not rec.capped
    assert parabolic_curve(rec.coeff_fit, 0.4, 0.2, floor) == pytest.approx(0.95 * h0, rel=1e-4)
    assert np.tanh(0.3 * rec.corollary - 0.5) == pytest.approx(0.6, rel=1e-4)
    geometric = sl.tradeoff.recommend_coefficient(
        r,
        tanh_curve(r, 0.3, -0.5),
        parabolic_curve(r, 0.4, 0.2, floor),
        delta_lambda_geometric=0.1,
        target=0.6,
    )
    start = math.atanh(math.tanh(-0.5))
    assert geometric.corollary_geometric == pytest.approx((math.atanh(0.6) - start) / 0.1)
    assert len(rec.table) == 4 and rec.fit_r2 == pytest.approx(1.0)
    assert "not informative" not in rec.table["rule"].iloc[1]


def test_recommendation_is_capped_to_the_swept_range():
    r = np.linspace(-2, 2, 9)
    b_fit = sl.tradeoff.fit_behaviour(r, tanh_curve(r, -0.7, 0.0), n_boot=0)
    h_fit = sl.tradeoff.fit_helpfulness(r, parabolic_curve(r, 0.2, 0.3), n_boot=0)
    rec = sl.tradeoff.recommend_coefficient(
        r,
        tanh_curve(r, -0.7, 0.0),
        parabolic_curve(r, 0.2, 0.3),
        behaviour_fit=b_fit,
        helpfulness_fit=h_fit,
    )
    assert rec.capped and rec.coeff_fit == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coeffs": np.array([1.0, 2.0, 3.0])}, "must include 0"),
        ({"budget": 1.5}, "budget"),
        ({"target": 1.0}, "target"),
        ({"behaviour": np.array([0.1, 0.2])}, "one per coefficient"),
        ({"helpfulness": np.zeros(3)}, "h\\(0\\) is 0"),
        ({"behaviour": np.array([0.1, np.nan, 0.3])}, "finite"),
    ],
)
def test_recommendation_refuses_bad_input(kwargs, match):
    args = {
        "coeffs": np.array([-1.0, 0.0, 1.0]),
        "behaviour": np.array([-0.5, 0.0, 0.5]),
        "helpfulness": np.array([0.7, 0.8, 0.7]),
        **kwargs,
    }
    with pytest.raises(sl.SteerlensError, match=match):
        sl.tradeoff.recommend_coefficient(
            args.pop("coeffs"), args.pop("behaviour"), args.pop("helpfulness"), **args
        )
