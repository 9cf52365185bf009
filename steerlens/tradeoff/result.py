"""``TradeoffReport``: the measured curves, estimates, fits and figures of a tradeoff run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch

from ..core.study import json_safe
from .curves import BehaviourCurve, HelpfulnessCurve
from .fit import CurveFit
from .geometry import LambdaEstimate, MarginEstimate, NoiseEstimate
from .linefit import LineFit
from .plots import (
    behaviour_figure,
    helpfulness_figure,
    lambda_figure,
    noise_histogram,
    spread_figure,
)
from .recommend import Recommendation
from .replies import CompletionBehaviour
from .sweep_result import SweepResult
from .tables import comparison_table, fits_table, geometry_table


def _slope(fit: LineFit | None) -> float:
    return math.nan if fit is None else fit.slope


def _param(fit: CurveFit | None, name: str) -> float:
    return math.nan if fit is None else fit.params[name]


@dataclass(frozen=True, eq=False, kw_only=True)
class TradeoffReport:
    """Everything ``tradeoff_report`` measured (a ``Study``); tables are DataFrames, figures
    plotly.

    Attributes:
        behaviour, helpfulness: the measured curves (per coefficient and query).
        behaviour_sweep, helpfulness_sweep: the underlying sweeps (``h_L`` per run).
        lam: λ on the helpfulness queries (``|δr|``); ``lam_logits`` from ``|W_U δr|``;
            ``lam_behaviour`` λ on the behaviour queries.
        margin: Δ and the geometric Δλ (behaviour queries).
        noise: σ, λσ and normality (helpfulness queries).
        behaviour_fit: Theorem 1's tanh; ``helpfulness_fit``: Theorem 2's bound with the
            floor ``settings["floor"]``; ``helpfulness_fit_other`` with the other floor
            (for comparison). A fit that failed is None and its reason is in ``failures``.
        recommendation: recommended coefficients.
        completions: completion-scored ``B(r)`` if requested, else None.
        failures: fit name -> why it could not be fitted (the summary has NaN there).
        settings: the run's settings (coefficients, sizes, layers, ...).
        seconds: wall time of the run; ``seconds_by_stage``: per stage.
    """

    behaviour: BehaviourCurve
    helpfulness: HelpfulnessCurve
    behaviour_sweep: SweepResult
    helpfulness_sweep: SweepResult
    lam: LambdaEstimate
    lam_logits: LambdaEstimate
    lam_behaviour: LambdaEstimate
    margin: MarginEstimate
    noise: NoiseEstimate
    behaviour_fit: CurveFit | None
    helpfulness_fit: CurveFit | None
    helpfulness_fit_other: CurveFit | None
    recommendation: Recommendation
    completions: CompletionBehaviour | None
    failures: dict[str, str]
    settings: dict[str, Any]
    seconds: float
    seconds_by_stage: dict[str, float] = field(default_factory=dict)
    _figures: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"TradeoffReport(layers={self.settings['layers']}, {len(self.settings['coeffs'])} "
            f"coefficients, {self.behaviour_sweep.n_queries} behaviour queries, "
            f"{self.helpfulness_sweep.n_queries} questions; λ={s['lambda']:.3g}, "
            f"Δ={s['delta']:.3g}, σ={s['sigma']:.3g}, Δλ fit={s['delta_lambda_fit']:.3g}, "
            f"λσβ fit={s['lambda_sigma_beta_fit']:.3g}, recommended r={s['recommended_coeff']:g}"
            f"{', failures: ' + ', '.join(self.failures) if self.failures else ''})"
        )

    @property
    def summary(self) -> dict[str, float]:
        """The headline numbers (floats): ``lambda``, ``delta``, ``sigma``,
        ``delta_lambda_fit``, ``lambda_sigma_beta_fit``, ``recommended_coeff`` and more."""
        reach = self.lam_behaviour.fits.positive
        delta = self.margin.summary(reach.x_max if reach is not None else math.inf)
        fit_b, fit_h = self.behaviour_fit, self.helpfulness_fit
        rec = self.recommendation
        sides = self.noise.lambda_sigma
        r = self.noise.coeffs
        sigma_rows = torch.zeros_like(r, dtype=torch.bool)
        for sign, fit in ((1, sides.positive), (-1, sides.negative)):
            if fit is not None:
                sigma_rows |= (torch.sign(r) == sign) & (r.abs() <= fit.x_max)
        return {
            "lambda": self.lam.slope,
            "lambda_pos": _slope(self.lam.fits.positive),
            "lambda_neg": _slope(self.lam.fits.negative),
            "lambda_logits": self.lam_logits.slope,
            "delta": delta["delta"],
            "delta_min": delta["delta_min"],
            "delta_lambda": self.margin.delta_lambda.slope,
            "sigma": float(self.noise.sigma[sigma_rows].mean()),
            "lambda_sigma": self.noise.lambda_sigma.slope,
            "lambda_sigma_beta": self.noise.lambda_sigma_beta,
            "delta_lambda_fit": _param(fit_b, "delta_lambda"),
            "delta_lambda_fit_r2": math.nan if fit_b is None else fit_b.r2,
            "lambda_sigma_beta_fit": _param(fit_h, "lambda_sigma_beta"),
            "lambda_sigma_beta_fit_r2": math.nan if fit_h is None else fit_h.r2,
            "B0": float(self.behaviour.normalized[self._zero].mean()),
            "h0": float(self.helpfulness.p_correct[self._zero].mean()),
            "accuracy0": float(self.helpfulness.correct[self._zero].mean()),
            "recommended_coeff": rec.coeff,
            "recommended_coeff_fit": math.nan if rec.coeff_fit is None else rec.coeff_fit,
            "corollary_coeff": math.nan if rec.corollary is None else rec.corollary,
        }

    @property
    def _zero(self) -> int:
        return self.behaviour_sweep.index(0.0)

    @property
    def curves(self) -> pd.DataFrame:
        """Per coefficient: B, h, accuracy (means and s.e.), fitted values, ``|δr|``, noise."""
        r = self.behaviour.coeffs.double().numpy()
        b, h = self.behaviour.table, self.helpfulness.table
        frame = pd.concat([b, h.drop(columns="coeff")], axis=1)
        for name, fit in (("B_fit", self.behaviour_fit), ("h_fit", self.helpfulness_fit)):
            frame[name] = fit.predict(r) if fit is not None else math.nan
        low, high = self.settings["behaviour_range"]
        frame.loc[(frame["coeff"] < low) | (frame["coeff"] > high), "B_fit"] = math.nan
        frame["mean |δr|"] = self.lam.norms.mean(1).tolist()
        frame["noise std"] = self.noise.spread.tolist()
        return frame

    @property
    def geometry(self) -> pd.DataFrame:
        """λ, Δ, σ, β estimates with their fit quality and the paper's Llama-2-13B ranges."""
        return geometry_table(self)

    @property
    def fits(self) -> pd.DataFrame:
        """Fitted parameters with bootstrap CIs and R²."""
        fits = (self.behaviour_fit, self.helpfulness_fit, self.helpfulness_fit_other)
        return fits_table([fit for fit in fits if fit is not None])

    @property
    def comparison(self) -> pd.DataFrame:
        """Geometric vs fitted Δλ and λσβ, next to the paper's ranges (its Tables/Figs.)."""
        return comparison_table(self)

    def describe(self) -> str:
        """What was swept, the unsteered point, the fits' failures and the recommendation."""
        s, settings, rec = self.summary, self.settings, self.recommendation
        coeffs = settings["coeffs"]
        return "\n\n".join(
            [
                f"Steering x ← x + r·v̂ at layers {settings['layers']} ({settings['site']}, "
                f"all positions, v̂ of unit norm per layer); {len(coeffs)} coefficients in "
                f"[{min(coeffs):g}, {max(coeffs):g}]; {self.behaviour_sweep.n_queries} "
                f"behaviour queries ({settings['behaviour']}), "
                f"{self.helpfulness_sweep.n_queries} multiple-choice questions; "
                f"{self.seconds:.0f} s.",
                "B is fitted over r in [{:g}, {:g}], where the aligned and misaligned "
                "tokens keep at least {:g} of their unsteered probability mass.".format(
                    *settings["behaviour_range"], settings["min_mass"]
                ),
                f"Unsteered: B(0) = {s['B0']:.3f}, h(0) = {s['h0']:.3f}, accuracy "
                f"{s['accuracy0']:.3f}.",
                *(f"Not fitted ({name}): {why}" for name, why in self.failures.items()),
                "Geometric estimates from δr = h_L(r) − h_L(0) at the last token, the bounds "
                "of Theorems 1 and 2 fitted to the measured curves (95% bootstrap CIs over "
                "queries), and the paper's Llama-2-13B ranges for reference (its coefficients "
                "are on another scale).",
                f"Largest B gain with h ≥ {1 - rec.budget:g}·h(0): r = {rec.coeff:g} "
                f"(B gain {rec.gain:.3f}, h ratio {rec.h_ratio:.3f}).",
            ]
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """``curves``, ``geometry``, ``fits``, ``comparison`` and ``recommendation``."""
        return {
            "curves": self.curves,
            "geometry": self.geometry,
            "fits": self.fits,
            "comparison": self.comparison,
            "recommendation": self.recommendation.table,
        }

    def figures(self) -> dict[str, go.Figure]:
        """``behaviour``, ``helpfulness``, ``lambda``, ``noise_histogram``, ``noise_spread``."""
        if not self._figures:
            r = self.behaviour.coeffs.double().numpy()
            done = None
            if self.completions is not None:
                done = (self.completions.table["coeff"], self.completions.table["B"])
            self._figures.update(
                behaviour=behaviour_figure(
                    self.behaviour, self.behaviour_fit, done, self.settings["behaviour_range"]
                ),
                helpfulness=helpfulness_figure(
                    self.helpfulness,
                    [f for f in (self.helpfulness_fit, self.helpfulness_fit_other) if f],
                ),
                **{"lambda": lambda_figure(self.lam, r)},
                noise_histogram=noise_histogram(self.noise),
                noise_spread=spread_figure(self.noise, r),
            )
        return dict(self._figures)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serializable (NaN becomes None)."""
        out = {
            "summary": self.summary,
            "settings": self.settings,
            "seconds": self.seconds,
            "seconds_by_stage": self.seconds_by_stage,
            "curves": self.curves.to_dict(orient="records"),
            "geometry": self.geometry.to_dict(orient="records"),
            "fits": self.fits.to_dict(orient="records"),
            "comparison": self.comparison.to_dict(orient="records"),
            "recommendation": self.recommendation.table.to_dict(orient="records"),
            "recommendation_detail": {
                "budget": self.recommendation.budget,
                "gain": self.recommendation.gain,
                "h_ratio": self.recommendation.h_ratio,
                "capped": self.recommendation.capped,
                "target": self.recommendation.target,
            },
            "normality": self.noise.normality,
            "failures": self.failures,
        }
        if self.completions is not None:
            out["completions"] = self.completions.table.to_dict(orient="records")
            out["completion_replies"] = self.completions.replies.to_dict(orient="records")
        return json_safe(out)
