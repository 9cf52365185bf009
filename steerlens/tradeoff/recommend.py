"""A recommended steering coefficient: the most behaviour change within a helpfulness budget.

- From the measured curves: walking out from 0 on each side, the coefficients reached before
  ``h(r)`` first drops below ``(1 − budget)·h(0)``; among them the one with the largest
  ``B(r)`` (ties: the smallest ``|r|``). A coefficient beyond a violation is never chosen,
  even if ``h`` recovers there (it often does once the model degenerates).
- From the fitted curves: the parabolic bound allows ``|r| <= r_max`` with
  ``r_max² = 2·((1 − f)/g − 1 − a)/(a·b²)``, ``g = (1 − budget)·h(0) − f``; the tanh is
  monotone, so the recommendation is ``r_max`` on the side where B grows, never beyond the
  swept range (``capped`` says when the budget would allow more). CIs pair the bootstrap
  refits of the two curves.
- Corollary 1 (Wolf et al.): ``r = (artanh(target) − artanh(B0)) / Δλ`` reaches
  ``B >= target``; with the fitted Δλ and ``b0 = artanh(B0)`` of the tanh fit, and with the
  geometric Δλ and the measured ``B(0)`` if given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.validate import check_array, check_instance, check_number
from .fit import CurveFit


@dataclass(frozen=True)
class Recommendation:
    """Recommended coefficients (see the module docstring for each rule).

    Attributes:
        budget: the allowed relative drop of helpfulness.
        coeff: from the measured curves; ``gain`` = ``B(coeff) − B(0)``, ``h_ratio`` =
            ``h(coeff) / h(0)``.
        coeff_fit: from the fitted curves, with ``coeff_fit_ci``; ``capped`` when the budget
            allows more than the swept range.
        target: the behaviour expectation Corollary 1 aims at.
        corollary: Corollary 1's coefficient with the fitted Δλ (None if Δλ = 0), CI too.
        corollary_geometric: the same with the geometric Δλ (None if not given).
        fit_r2: the smaller R² of the two fits behind ``coeff_fit`` (None without fits);
            below 0.5 the table marks the fitted rule as not informative.
    """

    budget: float
    coeff: float
    gain: float
    h_ratio: float
    coeff_fit: float | None
    coeff_fit_ci: tuple[float, float] | None
    capped: bool
    target: float
    corollary: float | None
    corollary_ci: tuple[float, float] | None
    corollary_geometric: float | None
    fit_r2: float | None = None

    @property
    def table(self) -> pd.DataFrame:
        """One row per rule: coefficient and confidence interval."""
        nan = (math.nan, math.nan)
        fitted = "fitted curves, h within budget"
        if self.capped:
            fitted += " (capped at the swept range)"
        if self.fit_r2 is not None and self.fit_r2 < 0.5:
            fitted += f" — not informative: a fit has R² {self.fit_r2:.2f}"
        rows = [
            ("measured curves, h within budget", self.coeff, nan),
            (fitted, self.coeff_fit, self.coeff_fit_ci or nan),
            (
                f"Corollary 1, B >= {self.target:g}, fitted Δλ",
                self.corollary,
                self.corollary_ci or nan,
            ),
            (f"Corollary 1, B >= {self.target:g}, geometric Δλ", self.corollary_geometric, nan),
        ]
        return pd.DataFrame(
            [
                {
                    "rule": name,
                    "coefficient": math.nan if v is None else v,
                    "ci_low": ci[0],
                    "ci_high": ci[1],
                }
                for name, v, ci in rows
            ]
        )


def _budget_coeff(
    a_b: float, a: float, b: float, floor: float, budget: float, limit: float
) -> tuple[float, bool]:
    """Fitted rule for one pair of parameter sets: (coefficient, capped)."""
    if a_b == 0:
        return 0.0, False
    h0 = floor + (1 - floor) / (1 + a)
    g = (1 - budget) * h0 - floor
    if g <= 0 or a == 0 or b == 0:
        r_max = math.inf
    else:
        x = ((1 - floor) / g - 1 - a) / a
        r_max = math.sqrt(2 * x) / b if x > 0 else 0.0
    return float(math.copysign(min(r_max, limit), a_b)), bool(r_max > limit)


def _corollary(target_z: float, start_z: float, delta_lambda: float) -> float | None:
    if delta_lambda == 0:
        return None
    r = (target_z - start_z) / delta_lambda
    return r if r * delta_lambda > 0 else 0.0


def _curve(name: str, values: Any, size: int) -> np.ndarray:
    y = check_array(name, values).ravel()
    if y.shape != (size,) or not np.isfinite(y).all():
        raise SteerlensError(
            f"{name}: expected {size} finite values (one per coefficient), got shape {y.shape}"
        )
    return y


def _fitted_rule(
    behaviour_fit: CurveFit, helpfulness_fit: CurveFit, budget: float, limit: float, level
) -> tuple[float, tuple[float, float] | None, bool, float]:
    """The fitted rule's coefficient, its CI over paired refits, capped, and the fits' R²."""
    if behaviour_fit.kind != "tanh" or helpfulness_fit.kind != "parabolic":
        raise SteerlensError("behaviour_fit, helpfulness_fit: expected a tanh and a parabolic fit")
    pb, ph, floor = behaviour_fit.params, helpfulness_fit.params, helpfulness_fit.floor
    coeff, capped = _budget_coeff(
        pb["delta_lambda"], ph["a"], ph["lambda_sigma_beta"], floor, budget, limit
    )
    n = min(len(behaviour_fit.replicates), len(helpfulness_fit.replicates))
    ci = None
    if n:
        pairs = zip(behaviour_fit.replicates[:n], helpfulness_fit.replicates[:n], strict=True)
        reps = [_budget_coeff(bb[0], hh[0], hh[1], floor, budget, limit)[0] for bb, hh in pairs]
        ci = _percentiles(np.array(reps), level)
    return coeff, ci, capped, float(min(behaviour_fit.r2, helpfulness_fit.r2))


def _fitted_corollary(
    behaviour_fit: CurveFit, target: float, level: float
) -> tuple[float | None, tuple[float, float] | None]:
    """Corollary 1 with the fitted Δλ and b0, and its CI over the bootstrap refits."""
    z = math.atanh(target)
    corollary = _corollary(z, behaviour_fit.params["b0"], behaviour_fit.params["delta_lambda"])
    reps = [_corollary(z, rep[1], rep[0]) for rep in behaviour_fit.replicates]
    reps = np.array([v for v in reps if v is not None])
    return corollary, _percentiles(reps, level) if reps.size else None


def recommend_coefficient(
    coeffs: Float[Tensor, " n_coeffs"] | np.ndarray,
    behaviour: Float[Tensor, " n_coeffs"] | np.ndarray,
    helpfulness: Float[Tensor, " n_coeffs"] | np.ndarray,
    *,
    budget: float = 0.05,
    behaviour_fit: CurveFit | None = None,
    helpfulness_fit: CurveFit | None = None,
    target: float = 0.5,
    delta_lambda_geometric: float | None = None,
    level: float = 0.95,
) -> Recommendation:
    """The coefficient with the largest behaviour gain whose helpfulness stays in budget.

    Args:
        coeffs: ``[n_coeffs]`` swept coefficients (must include 0).
        behaviour: ``[n_coeffs]`` mean ``B(r)``.
        helpfulness: ``[n_coeffs]`` mean ``h(r)``.
        budget: allowed relative drop of helpfulness, e.g. 0.05 for ``h >= 0.95·h(0)``.
        behaviour_fit: a tanh ``CurveFit`` (``fit_behaviour``) for the fitted rule.
        helpfulness_fit: a parabolic ``CurveFit`` (``fit_helpfulness``) for the fitted rule.
        target: the ``B`` that Corollary 1 aims at, in (-1, 1).
        delta_lambda_geometric: Δλ from ``estimate_margin`` for the geometric Corollary 1.
        level: confidence level of the intervals.

    Example:
        >>> rec = sl.tradeoff.recommend_coefficient(coeffs, b_mean, h_mean, budget=0.05)
        >>> rec.coeff, rec.table
    """
    r = check_array("coeffs", coeffs).ravel()
    if not np.isfinite(r).all() or r.size == 0:
        raise SteerlensError("coeffs: expected finite coefficients")
    b, h = _curve("behaviour", behaviour, r.size), _curve("helpfulness", helpfulness, r.size)
    budget = check_number("budget", budget, low=0.0, high=0.999999)
    target = check_number("target", target, low=-0.999999, high=0.999999)
    check_number("level", level, low=0.0, high=0.999999, open_low=True)
    check_number("delta_lambda_geometric", delta_lambda_geometric, none=True)
    for name, fit in (("behaviour_fit", behaviour_fit), ("helpfulness_fit", helpfulness_fit)):
        if fit is not None:
            check_instance(name, fit, CurveFit, "a CurveFit (fit_behaviour / fit_helpfulness)")
    zero = np.flatnonzero(r == 0)
    if zero.size == 0:
        raise SteerlensError(f"coeffs: must include 0 (the unsteered baseline), got {r.tolist()}")
    b0, h0 = b[zero[0]], h[zero[0]]
    if h0 <= 0:
        raise SteerlensError("helpfulness: h(0) is 0, so a relative budget means nothing")
    allowed = reachable_from_zero(r, h >= (1 - budget) * h0)
    order = sorted(np.flatnonzero(allowed), key=lambda i: (-b[i], abs(r[i])))
    best = order[0] if b[order[0]] > b0 else zero[0]
    coeff_fit = ci_fit = corollary = ci_cor = geometric = fit_r2 = None
    capped = False
    if behaviour_fit is not None and helpfulness_fit is not None:
        limit = float(np.abs(r).max())
        coeff_fit, ci_fit, capped, fit_r2 = _fitted_rule(
            behaviour_fit, helpfulness_fit, budget, limit, level
        )
    if behaviour_fit is not None:
        corollary, ci_cor = _fitted_corollary(behaviour_fit, target, level)
    if delta_lambda_geometric is not None:
        start = math.atanh(float(np.clip(b0, -1 + 1e-9, 1 - 1e-9)))
        geometric = _corollary(math.atanh(target), start, float(delta_lambda_geometric))
    return Recommendation(
        budget=float(budget),
        coeff=float(r[best]),
        gain=float(b[best] - b0),
        h_ratio=float(h[best] / h0),
        coeff_fit=coeff_fit,
        coeff_fit_ci=ci_fit,
        capped=capped,
        target=float(target),
        corollary=corollary,
        corollary_ci=ci_cor,
        corollary_geometric=geometric,
        fit_r2=fit_r2,
    )


def reachable_from_zero(r: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Coefficients reached from 0 on each side before the first one that is not ``ok``."""
    out = r == 0
    for side in (r > 0, r < 0):
        for i in sorted(np.flatnonzero(side), key=lambda i: abs(r[i])):
            if not ok[i]:
                break
            out[i] = True
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
