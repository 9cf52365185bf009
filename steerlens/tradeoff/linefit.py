"""Lines through the origin with an automatic linear range (for λ, Δλ and λσ)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import SteerlensError


@dataclass(frozen=True)
class LineFit:
    """``y = slope · x`` fitted on the points with ``0 < |x| <= x_max``.

    ``linear`` is False when no range of at least ``min_points`` points reached the
    requested R²; the fit is then on the smallest such range and must be read with care.
    """

    slope: float
    r2: float
    x_max: float
    n_points: int
    linear: bool


def r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    """R² of ``fitted`` against ``y``; for a flat ``y``, 1 if the fit is exact, else -inf."""
    total = float(((y - y.mean()) ** 2).sum())
    resid = float(((y - fitted) ** 2).sum())
    if total == 0.0:
        return 1.0 if resid == 0.0 else -math.inf
    return 1.0 - resid / total


def fit_through_origin(
    x: np.ndarray, y: np.ndarray, *, r2_min: float = 0.95, min_points: int = 3
) -> LineFit:
    """Fit ``y = a·x`` on the largest range ``|x| <= t`` whose R² stays >= ``r2_min``.

    Points at ``x = 0`` are left out (every line through the origin fits them). R² is
    ``1 − SS_res / SS_tot`` with ``SS_tot`` about the mean of ``y``.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise SteerlensError(f"x, y: shapes differ: {x.shape} vs {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise SteerlensError("x, y: contain NaN or inf; cannot fit a line")
    keep = x != 0
    x, y = x[keep], y[keep]
    if x.size < min_points:
        raise SteerlensError(
            f"coeffs: a line fit needs at least {min_points} non-zero coefficients, got {x.size}"
        )
    thresholds = [t for t in np.unique(np.abs(x)) if (np.abs(x) <= t).sum() >= min_points]
    fits = []
    for t in thresholds:
        inside = np.abs(x) <= t
        xs, ys = x[inside], y[inside]
        slope = float((xs * ys).sum() / (xs * xs).sum())
        fits.append(LineFit(slope, r_squared(ys, slope * xs), float(t), int(inside.sum()), True))
    good = [fit for fit in fits if fit.r2 >= r2_min]
    if good:
        return good[-1]
    first = fits[0]
    return LineFit(first.slope, first.r2, first.x_max, first.n_points, False)


@dataclass(frozen=True)
class SideFits:
    """Lines through the origin fitted separately for ``r > 0`` and ``r < 0`` (as the authors
    fit ``[0, 5]`` and ``[-5, 0]``); ``slope`` is their mean (one side if only one exists)."""

    positive: LineFit | None
    negative: LineFit | None

    @property
    def slope(self) -> float:
        return float(np.mean([fit.slope for fit in self.fits]))

    @property
    def fits(self) -> list[LineFit]:
        return [fit for fit in (self.positive, self.negative) if fit is not None]


def fit_sides(
    r: np.ndarray, y: np.ndarray, *, absolute: bool, r2_min: float, min_points: int = 3
) -> SideFits:
    """``y`` against ``|r|`` (``absolute``) or ``r`` on each side of 0, with range selection."""
    r, y = np.asarray(r, dtype=float), np.asarray(y, dtype=float)
    fits = []
    for sign in (1, -1):
        side = np.sign(r) == sign
        if side.sum() < min_points:
            fits.append(None)
            continue
        x = np.abs(r[side]) if absolute else r[side]
        fits.append(fit_through_origin(x, y[side], r2_min=r2_min, min_points=min_points))
    if fits == [None, None]:
        raise SteerlensError(
            f"coeffs: a line fit needs at least {min_points} coefficients on one side of 0, "
            f"got {r.tolist()}"
        )
    return SideFits(*fits)
