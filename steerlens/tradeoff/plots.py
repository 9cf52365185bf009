"""Plotly figures of the tradeoff diagnostics (returned, never shown)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .curves import BehaviourCurve, HelpfulnessCurve
from .fit import CurveFit
from .geometry import LambdaEstimate, NoiseEstimate
from .linefit import SideFits

AXIS = "coefficient r (unit direction; length added to the residual)"


def _grid(coeffs: np.ndarray) -> np.ndarray:
    return np.linspace(float(coeffs.min()), float(coeffs.max()), 200)


def _points(x, y, sem, name: str, colour: str) -> go.Scatter:
    return go.Scatter(
        x=list(map(float, x)),
        y=list(map(float, y)),
        error_y={"type": "data", "array": [0.0 if math.isnan(s) else float(s) for s in sem]},
        mode="markers+lines",
        name=name,
        marker_color=colour,
        line={"width": 1},
    )


def behaviour_figure(
    curve: BehaviourCurve,
    fit: CurveFit | None,
    completions: tuple | None = None,
    fit_range: Sequence[float] | None = None,
) -> go.Figure:
    """Measured ``B(r)`` (mean ± s.e. over queries), its tanh fit over ``fit_range``, and
    optional completion-scored points."""
    table = curve.table
    r = table["coeff"].to_numpy()
    grid = _grid(np.asarray(fit_range if fit_range is not None else r, dtype=float))
    fig = go.Figure(_points(r, table["B"], table["B_sem"], "B(r), next token", "#c0392b"))
    if fit is not None:
        a, b0 = fit.params["delta_lambda"], fit.params["b0"]
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),
                y=fit.predict(grid).tolist(),
                mode="lines",
                name=f"tanh({a:.3g}·r {b0:+.3g}), R² {fit.r2:.3f}",
                line={"color": "#333", "dash": "dash"},
            )
        )
    if completions is not None:
        x, y = completions
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=list(y),
                mode="markers",
                name="B(r), replies",
                marker={"symbol": "diamond", "size": 9, "color": "#8e44ad"},
            )
        )
    fig.update_layout(
        title="Behaviour expectation and Theorem 1's tanh",
        xaxis_title=AXIS,
        yaxis_title="B(r)",
        yaxis_range=[-1.05, 1.05],
    )
    return fig


def helpfulness_figure(curve: HelpfulnessCurve, fits: list[CurveFit]) -> go.Figure:
    """Measured ``h(r)`` with the parabolic fits and the chance level ``1/N``."""
    table = curve.table
    r = table["coeff"].to_numpy()
    grid = _grid(r)
    fig = go.Figure([_points(r, table["h"], table["h_sem"], "h(r) = P(correct)", "#2471a3")])
    fig.add_trace(
        go.Scatter(
            x=r.tolist(),
            y=table["accuracy"].tolist(),
            mode="markers",
            name="accuracy",
            marker={"color": "#7fb3d5", "symbol": "x"},
        )
    )
    for fit, dash in zip(fits, ("dash", "dot"), strict=False):
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),
                y=fit.predict(grid).tolist(),
                mode="lines",
                name=f"Theorem 2, floor {fit.floor:.3g}: λσβ {fit.params['lambda_sigma_beta']:.3g}"
                f", R² {fit.r2:.3f}",
                line={"color": "#333", "dash": dash},
            )
        )
    fig.add_hline(
        y=1 / curve.n_choices, line={"color": "#999", "width": 1}, annotation_text="chance"
    )
    fig.update_layout(
        title="Helpfulness and Theorem 2's bound",
        xaxis_title=AXIS,
        yaxis_title="h(r)",
        yaxis_range=[0, 1.02],
    )
    return fig


def _side_lines(fits: SideFits, symbol: str) -> list[go.Scatter]:
    """The fitted ``slope·|r|`` on each side of 0, over its linear range."""
    lines = []
    for sign, fit in ((1, fits.positive), (-1, fits.negative)):
        if fit is None:
            continue
        x = np.linspace(0, sign * fit.x_max, 50)
        lines.append(
            go.Scatter(
                x=x.tolist(),
                y=(fit.slope * np.abs(x)).tolist(),
                mode="lines",
                line={"color": "#333", "dash": "dash" if sign > 0 else "dot"},
                name=f"{symbol} = {fit.slope:.3g} for r {'>' if sign > 0 else '<'} 0 "
                f"(R² {fit.r2:.3f}, |r| ≤ {fit.x_max:g})",
            )
        )
    return lines


def lambda_figure(lam: LambdaEstimate, coeffs: np.ndarray) -> go.Figure:
    """Mean ``|δr|`` against ``r`` with the fitted ``λ|r|`` over each side's linear range."""
    norms = lam.norms.double().numpy()
    n = norms.shape[1]
    sem = norms.std(1, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(len(coeffs))
    label = "|δr|" if lam.space == "resid" else "|W_U δr|"
    fig = go.Figure([_points(coeffs, norms.mean(1), sem, f"mean {label}", "#16a085")])
    fig.add_traces(_side_lines(lam.fits, "λ"))
    fig.update_layout(
        title=f"Assumption 1: {label} grows linearly with |r| (λ = {lam.slope:.3g})",
        xaxis_title=AXIS,
        yaxis_title=f"{label} at the last token",
    )
    return fig


def noise_histogram(noise: NoiseEstimate) -> go.Figure:
    """``X_i = <δr̂, u_i − u_correct>`` pooled over queries, with a fitted normal density."""
    coeff = noise.normality["coeff"]
    x = noise.x_at(coeff).double().numpy()
    mu, sd = float(x.mean()), float(x.std(ddof=1))
    grid = np.linspace(float(x.min()), float(x.max()), 200)
    pdf = np.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    fig = go.Figure(
        [
            go.Histogram(
                x=x.tolist(),
                histnorm="probability density",
                name="X_i",
                marker_color="#7fb3d5",
                nbinsx=40,
            ),
            go.Scatter(
                x=grid.tolist(),
                y=pdf.tolist(),
                mode="lines",
                name="normal fit",
                line={"color": "#333"},
            ),
        ]
    )
    fig.update_layout(
        title=f"Assumption 3 at r = {coeff:g}: Shapiro-Wilk p = "
        f"{noise.normality['shapiro_p']:.2g}, skew {noise.normality['skew']:.2f}",
        xaxis_title="X_i = <δr̂, u_i − u_correct> (top-T unsteered tokens)",
        yaxis_title="density",
    )
    return fig


def spread_figure(noise: NoiseEstimate, coeffs: np.ndarray) -> go.Figure:
    """Std of ``<δr, u_i − u_correct>`` against ``r`` with the fitted ``λσ|r|``."""
    fig = go.Figure(
        go.Scatter(
            x=list(map(float, coeffs)),
            y=noise.spread.tolist(),
            mode="markers+lines",
            name="std over questions and tokens",
            marker_color="#d35400",
            line={"width": 1},
        )
    )
    fig.add_traces(_side_lines(noise.lambda_sigma, "λσ"))
    fig.update_layout(
        title=f"Logit noise on unrelated queries (λσ = {noise.lambda_sigma.slope:.3g})",
        xaxis_title=AXIS,
        yaxis_title="std <δr, u_i − u_correct>",
    )
    return fig
