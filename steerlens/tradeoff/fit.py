"""Fits of Wolf et al.'s bounds to measured curves, with bootstrap CIs over queries.

- Theorem 1 (behaviour): ``B(r) = tanh(a·r + b0)``; ``a`` is the fitted Δλ and
  ``b0 = artanh(B0)``. This is the form of the theorem's statement and of the authors'
  code; their proof (App. B, eq. 27) ends with ``Δλ/2`` instead of ``Δλ``, so a fitted ``a``
  is Δλ by the statement and 2·``a`` by the proof.
- Theorem 2 (helpfulness): ``h(r) = f + (1 − f) / (1 + a + a·(b²/2)·r²)`` with
  ``b = λσβ`` and ``a = (1 − P0)α(1 − ε)/P0`` (α, β, ε are not separable, as in the
  authors' code). ``f = 0`` is the authors' form; ``f = 1/N`` adds Corollary 2's floor
  (chance with N choices, App. E eq. 45, where the bound tends to chance, not 0).

Each fit is made to the mean curve over queries (as the paper plots); the CIs are
percentiles of refits to mean curves of queries resampled with replacement (seeded).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float
from scipy.optimize import OptimizeWarning, curve_fit
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.validate import check_array, check_int, check_number
from .linefit import r_squared


def tanh_curve(r: np.ndarray | float, a: float, b0: float) -> np.ndarray | float:
    """Theorem 1's form: ``tanh(a·r + b0)``."""
    return np.tanh(a * np.asarray(r, dtype=float) + b0)


def parabolic_curve(
    r: np.ndarray | float, a: float, b: float, floor: float = 0.0
) -> np.ndarray | float:
    """Theorem 2's form: ``floor + (1 − floor) / (1 + a + a·(b²/2)·r²)``."""
    r = np.asarray(r, dtype=float)
    return floor + (1.0 - floor) / (1.0 + a + a * (b * b / 2.0) * r * r)


@dataclass(frozen=True, eq=False)
class CurveFit:
    """A fitted curve with bootstrap confidence intervals.

    Attributes:
        kind: ``"tanh"`` (Theorem 1) or ``"parabolic"`` (Theorem 2).
        params: the fitted parameters (``delta_lambda``, ``b0`` for tanh; ``a``,
            ``lambda_sigma_beta`` for parabolic) plus derived values (``B0``, ``h0``).
        ci: ``name -> (low, high)`` percentile intervals at level ``level``.
        r2: R² of the fit to the mean curve.
        floor: the fixed floor ``f`` of the parabolic form (0 for tanh).
        replicates: ``[n_ok, 2]`` the bootstrap refits of the two free parameters.
        n_failed: bootstrap replicates whose refit did not converge (left out).
    """

    kind: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    floor: float
    level: float
    replicates: np.ndarray = field(repr=False)
    n_failed: int = 0

    def predict(self, r: np.ndarray | float) -> np.ndarray | float:
        """The fitted curve at coefficients ``r``."""
        if self.kind == "tanh":
            return tanh_curve(r, self.params["delta_lambda"], self.params["b0"])
        return parabolic_curve(r, self.params["a"], self.params["lambda_sigma_beta"], self.floor)


def _matrix(coeffs: object, values: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    r = check_array("coeffs", coeffs).ravel()
    y = check_array("values", values)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != r.size:
        raise SteerlensError(
            f"{name}: expected shape [n_coeffs={r.size}] or [n_coeffs, n_queries], got "
            f"{tuple(y.shape)}"
        )
    if y.shape[1] == 0:
        raise SteerlensError(f"{name}: has no queries")
    if not (np.isfinite(r).all() and np.isfinite(y).all()):
        raise SteerlensError(f"{name}: coefficients and values must be finite (found NaN/inf)")
    if r.size < 3:
        raise SteerlensError(f"{name}: a two-parameter fit needs at least 3 coefficients")
    return r, y


def _curve_fit(func: Callable, r: np.ndarray, y: np.ndarray, p0: list[float], **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        params, _ = curve_fit(func, r, y, p0=p0, maxfev=20000, **kw)
    if not np.isfinite(params).all():
        raise RuntimeError("the optimizer returned non-finite parameters")
    return params


def _bootstrap(
    fit_one: Callable[[np.ndarray], np.ndarray], y: np.ndarray, n_boot: int, seed: int
) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    out, failed = [], 0
    for _ in range(n_boot):
        pick = rng.integers(0, y.shape[1], y.shape[1])
        try:
            out.append(fit_one(y[:, pick].mean(1)))
        except (RuntimeError, ValueError, OptimizeWarning):
            failed += 1
    if n_boot and len(out) < max(1, n_boot // 2):
        raise SteerlensError(
            f"n_boot: only {len(out)} of {n_boot} bootstrap refits converged; the curve is "
            "too flat or noisy for a confidence interval (use more queries or coefficients)"
        )
    return (np.array(out) if out else np.empty((0, 2))), failed


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    if samples.size == 0:
        return (math.nan, math.nan)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))


def _check_boot(n_boot: int, level: float, seed: int) -> None:
    check_int("n_boot", n_boot, low=0)
    check_int("seed", seed)
    if not 0 < check_number("level", level) < 1:
        raise SteerlensError(f"level: expected a number in (0, 1), got {level!r}")


def fit_behaviour(
    coeffs: Float[Tensor, " n_coeffs"] | np.ndarray,
    values: Float[Tensor, "n_coeffs n_queries"] | Float[Tensor, " n_coeffs"] | np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> CurveFit:
    """Fit Theorem 1's ``B(r) = tanh(Δλ·r + b0)`` to the mean of per-query curves.

    Args:
        coeffs: ``[n_coeffs]`` steering coefficients.
        values: ``[n_coeffs, n_queries]`` behaviour expectations in [-1, 1] (or a mean curve
            ``[n_coeffs]``, then without confidence intervals).
        n_boot: bootstrap resamples of the queries (0: none).
        seed: seed of the resampling.
        level: confidence level of the intervals.

    Returns:
        A ``CurveFit`` with ``params["delta_lambda"]``, ``params["b0"]``, ``params["B0"]``.
    """
    _check_boot(n_boot, level, seed)
    r, y = _matrix(coeffs, values, "values")
    if (np.abs(y) > 1 + 1e-6).any():
        raise SteerlensError("behaviour: values must lie in [-1, 1] (a behaviour expectation)")
    mean = y.mean(1)
    if np.ptp(mean) < 1e-9:
        raise SteerlensError(
            f"behaviour: B(r) does not change over the coefficients (all {mean[0]:.4g}); a "
            "tanh cannot be fitted to a flat curve. Use larger coefficients or another vector"
        )
    clipped = np.arctanh(np.clip(mean, -0.99, 0.99))
    slope0, intercept0 = np.polyfit(r, clipped, 1)

    def fit_one(curve: np.ndarray, p0: list[float]) -> np.ndarray:
        return _curve_fit(tanh_curve, r, curve, p0)

    try:
        a, b0 = fit_one(mean, [slope0, intercept0])
    except (RuntimeError, ValueError, OptimizeWarning) as error:
        raise SteerlensError(f"behaviour: the tanh fit did not converge ({error})") from error
    if abs(a) * float(np.abs(r).max()) < 1e-3:
        raise SteerlensError(
            f"behaviour: the fitted slope Δλ = {a:.2g} leaves tanh flat over the swept range; "
            "B(r) does not follow Theorem 1's tanh here"
        )
    reps, failed = _bootstrap(
        lambda c: fit_one(c, [a, b0]), y, n_boot if y.shape[1] > 1 else 0, seed
    )
    params = {"delta_lambda": float(a), "b0": float(b0), "B0": float(np.tanh(b0))}
    ci = {
        "delta_lambda": _interval(reps[:, 0], level),
        "b0": _interval(reps[:, 1], level),
        "B0": _interval(np.tanh(reps[:, 1]), level),
    }
    r2 = r_squared(mean, tanh_curve(r, a, b0))
    return CurveFit("tanh", params, ci, r2, 0.0, level, reps, failed)


def fit_helpfulness(
    coeffs: Float[Tensor, " n_coeffs"] | np.ndarray,
    values: Float[Tensor, "n_coeffs n_queries"] | Float[Tensor, " n_coeffs"] | np.ndarray,
    *,
    floor: float = 0.0,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> CurveFit:
    """Fit Theorem 2's ``h(r) = f + (1 − f)/(1 + a + a(b²/2)r²)``, ``b = λσβ``, ``a, b >= 0``.

    Args:
        coeffs: ``[n_coeffs]`` steering coefficients.
        values: ``[n_coeffs, n_queries]`` probabilities of the correct answer (or a mean
            curve ``[n_coeffs]``, then without confidence intervals).
        floor: ``f``: 0 for the authors' form, ``1/N`` for Corollary 2's chance floor.
        n_boot, seed, level: as for ``fit_behaviour``.

    Returns:
        A ``CurveFit`` with ``params["a"]``, ``params["lambda_sigma_beta"]``, ``params["h0"]``.
    """
    _check_boot(n_boot, level, seed)
    r, y = _matrix(coeffs, values, "values")
    if not 0 <= check_number("floor", floor) < 1:
        raise SteerlensError(f"floor: expected a number in [0, 1), got {floor!r}")
    if (y < -1e-6).any() or (y > 1 + 1e-6).any():
        raise SteerlensError("helpfulness: values must be probabilities in [0, 1]")
    mean = y.mean(1)
    if np.ptp(mean) < 1e-9:
        raise SteerlensError(
            f"helpfulness: h(r) does not change over the coefficients (all {mean[0]:.4g}); "
            "the parabolic bound cannot be fitted to a flat curve"
        )
    h0 = float(mean[np.argmin(np.abs(r))])
    if h0 <= floor:
        raise SteerlensError(
            f"helpfulness: h near r = 0 is {h0:.4g}, not above the floor {floor:.4g}; the "
            "model is at chance unsteered, so there is no decay to fit"
        )
    a0 = max((1 - floor) / (h0 - floor) - 1, 1e-3)
    guesses = [
        2 * ((1 - floor) / (v - floor) - 1 - a0) / (a0 * x * x)
        for x, v in zip(r, mean, strict=True)
        if x != 0 and v > floor and (1 - floor) / (v - floor) - 1 - a0 > 0
    ]
    b_start = math.sqrt(float(np.median(guesses))) if guesses else 1.0 / float(np.abs(r).max())

    def func(x: np.ndarray | float, a: float, b: float) -> np.ndarray | float:
        return parabolic_curve(x, a, b, floor)

    def fit_one(curve: np.ndarray, p0: list[float]) -> np.ndarray:
        return _curve_fit(func, r, curve, p0, bounds=([0.0, 0.0], [np.inf, np.inf]))

    try:
        a, b = fit_one(mean, [a0, b_start])
    except (RuntimeError, ValueError, OptimizeWarning) as error:
        raise SteerlensError(
            f"helpfulness: the parabolic fit did not converge ({error})"
        ) from error
    reach = float(np.abs(r).max())
    drop = float(func(0.0, a, b) - func(reach, a, b))
    if drop <= 1e-3 * (h0 - floor):
        ends = float(mean[np.abs(r) == reach].mean())
        raise SteerlensError(
            f"helpfulness: h(r) does not fall away from r = 0 (h = {h0:.3g} near 0, "
            f"{ends:.3g} at |r| = {reach:g}; fitted λσβ = {b:.2g}), so Theorem 2's bound "
            "cannot be fitted; sweep larger coefficients or check the task"
        )
    reps, failed = _bootstrap(
        lambda c: fit_one(c, [a, b]), y, n_boot if y.shape[1] > 1 else 0, seed
    )
    params = {"a": float(a), "lambda_sigma_beta": float(b), "h0": float(func(0.0, a, b))}
    ci = {
        "a": _interval(reps[:, 0], level),
        "lambda_sigma_beta": _interval(reps[:, 1], level),
        "h0": _interval(floor + (1 - floor) / (1 + reps[:, 0]), level),
    }
    r2 = r_squared(mean, func(r, a, b))
    return CurveFit("parabolic", params, ci, r2, float(floor), level, reps, failed)
