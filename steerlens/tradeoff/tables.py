"""Tables of the tradeoff report, next to the paper's Llama-2-13B ranges (Wolf et al.)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .fit import CurveFit
from .geometry import BETA
from .linefit import LineFit, SideFits

#: Ranges the paper reports on Llama-2-13B (chat and base), as text.
PAPER = {
    "lambda_logits": "40–60 (|U δr|, App. A.3)",
    "delta_lambda": "0.1–0.4 (Sec. 4; 0.1–0.3 in App. A.3)",
    "delta_lambda_fit": "0.5–3 (Sec. 4)",
    "lambda_sigma": "0.1–0.5 (App. A.3)",
    "lambda_sigma_beta": "0.1–0.4 (Sec. 4)",
    "lambda_sigma_beta_fit": "0.33–0.66 (Sec. 4, App. F.4)",
}


def _line_row(name: str, fit: LineFit, note: str, paper: str = "") -> dict[str, Any]:
    return {
        "quantity": name,
        "value": fit.slope,
        "R²": fit.r2,
        "fit range |r| ≤": fit.x_max,
        "points": fit.n_points,
        "linear (R² ≥ threshold)": fit.linear,
        "note": note,
        "Llama-2-13B (paper)": paper,
    }


def _value_row(name: str, value: float, note: str, paper: str = "") -> dict[str, Any]:
    return {
        "quantity": name,
        "value": value,
        "R²": math.nan,
        "fit range |r| ≤": math.nan,
        "points": math.nan,
        "linear (R² ≥ threshold)": None,
        "note": note,
        "Llama-2-13B (paper)": paper,
    }


def _side_rows(name: str, fits: SideFits, note: str, paper: str = "") -> list[dict[str, Any]]:
    rows = [_value_row(f"{name}", fits.slope, f"{note}; mean of the two sides", paper)]
    for sign, fit in ((">", fits.positive), ("<", fits.negative)):
        if fit is not None:
            rows.append(_line_row(f"{name}, r {sign} 0", fit, note))
    return rows


def geometry_table(rep: Any) -> pd.DataFrame:
    """λ, Δ, σ, β estimates of a ``TradeoffReport``."""
    s = rep.summary
    norm = rep.noise.normality
    rows = [
        *_side_rows("λ (|δr| vs |r|)", rep.lam.fits, "helpfulness queries"),
        *_side_rows(
            "λ (|W_U δr| vs |r|)",
            rep.lam_logits.fits,
            "helpfulness queries; what the authors' code measures",
            PAPER["lambda_logits"],
        ),
        *_side_rows("λ (|δr|, behaviour queries)", rep.lam_behaviour.fits, "behaviour queries"),
        _value_row(
            "Δ (mean margin)",
            s["delta"],
            "mean over pairs of <δr̂, u_a − u_m>, 0 < r ≤ λ's range (App. A.3)",
        ),
        _value_row(
            "Δ (min margin)",
            s["delta_min"],
            "min over pairs (Assumption 2); > 0: δr̂ separates the token sets",
        ),
        *_side_rows(
            "Δλ (slope of <δr, ū_A − ū_M>)",
            rep.margin.delta_lambda,
            "geometric Δλ, eq. 11 with the mean tokens",
            PAPER["delta_lambda"],
        ),
        _value_row(
            "σ (std of X_i)",
            s["sigma"],
            f"top-{rep.settings['top_t']} unsteered tokens vs the correct one, "
            "mean over r in λσ's range",
        ),
        *_side_rows(
            "λσ (slope of std <δr, u_i − u_c>)",
            rep.noise.lambda_sigma,
            "pooled over questions, as the authors' code",
            PAPER["lambda_sigma"],
        ),
        _value_row("β", BETA, "√(2/π), mean of a unit half-normal (App. A.3)"),
        _value_row(
            "λσβ (geometric)", rep.noise.lambda_sigma_beta, "β · λσ", PAPER["lambda_sigma_beta"]
        ),
        _value_row(
            "normality of X (Shapiro-Wilk p)",
            norm["shapiro_p"],
            f"r = {norm['coeff']:g}, n = {int(norm['n'])}, W = {norm['shapiro_w']:.3f}, "
            f"skew {norm['skew']:.2f}, excess kurtosis {norm['excess_kurtosis']:.2f}",
        ),
    ]
    return pd.DataFrame(rows)


def fits_table(fits: Sequence[CurveFit]) -> pd.DataFrame:
    """One row per fitted parameter: estimate, CI, R², bootstrap refits that failed."""
    rows = []
    for fit in fits:
        curve = (
            "B(r) = tanh(Δλ·r + b0)"
            if fit.kind == "tanh"
            else (f"h(r) = f + (1−f)/(1 + a + a(λσβ)²r²/2), f = {fit.floor:.3g}")
        )
        for name, value in fit.params.items():
            low, high = fit.ci.get(name, (math.nan, math.nan))
            rows.append(
                {
                    "curve": curve,
                    "parameter": name,
                    "estimate": value,
                    f"CI {fit.level:.0%} low": low,
                    f"CI {fit.level:.0%} high": high,
                    "R²": fit.r2,
                    "bootstrap refits": len(fit.replicates),
                    "failed refits": fit.n_failed,
                }
            )
    return pd.DataFrame(rows)


def comparison_table(rep: Any) -> pd.DataFrame:
    """Geometric vs fitted Δλ and λσβ, as the paper compares them."""
    nan = (math.nan, math.nan)
    fit_b, fit_h = rep.behaviour_fit, rep.helpfulness_fit
    summary = rep.summary
    rows = [
        (
            "Δλ",
            rep.margin.delta_lambda.slope,
            summary["delta_lambda_fit"],
            fit_b.ci["delta_lambda"] if fit_b is not None else nan,
            PAPER["delta_lambda"],
            PAPER["delta_lambda_fit"],
        ),
        (
            "λσβ",
            rep.noise.lambda_sigma_beta,
            summary["lambda_sigma_beta_fit"],
            fit_h.ci["lambda_sigma_beta"] if fit_h is not None else nan,
            PAPER["lambda_sigma_beta"],
            PAPER["lambda_sigma_beta_fit"],
        ),
    ]
    return pd.DataFrame(
        [
            {
                "quantity": q,
                "geometric": g,
                "fitted": f,
                "fitted CI low": ci[0],
                "fitted CI high": ci[1],
                "paper geometric": pg,
                "paper fitted": pf,
            }
            for q, g, f, ci, pg, pf in rows
        ]
    )
