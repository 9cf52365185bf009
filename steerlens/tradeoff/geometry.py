"""Geometric estimators of Wolf et al.'s λ, Δ, σ and β, from a sweep.

With ``δr(q, r) = h_L(q, r) − h_L(q, 0)`` at the last token and ``u_i`` column ``i`` of
``W_U`` (so ``<δr, u_i>`` is the change of token ``i``'s logit):

- λ (Assumption 1, ``|δr| = λ|r|``): slope of a line through the origin fitted to the mean
  over queries of ``|δr|`` against ``|r|`` (``space="resid"``, the theory's λ) or of
  ``|W_U δr|`` (``space="logits"``, what the authors' code and Figs. 6-8 measure), on the
  largest range ``|r| <= r_max`` where the fit keeps ``R² >= r2_min``; also per sign and per
  query.
- Δ (Assumption 2): ``min_{i∈A, j∈M} <δr̂, u_i − u_j>`` (the theorem's margin) and the mean
  over pairs (the paper's practical estimate, App. A.3); Δλ as the slope of the mean
  ``<δr, u_A − u_M>`` against ``r`` (eq. 11).
- σ (Assumption 3): on queries unrelated to the behaviour, the top-``T`` unsteered tokens
  other than the correct one, ``X_i = <δr̂, u_i − u_correct>`` pooled over queries; σ(r)
  their standard deviation, λσ the slope of ``std <δr, u_i − u_correct>`` against ``|r|``
  (App. A.3, Figs. 9-10, as the authors' code); a Shapiro-Wilk check of normality.
- β ≈ √(2/π) ≈ 0.80, the mean of a unit half-normal (App. A.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from scipy import stats
from torch import Tensor

from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.validate import check_choice, check_instance, is_number, shown
from .linefit import SideFits, fit_sides
from .sweep_result import SweepResult

BETA = math.sqrt(2 / math.pi)


def _unembed_norms(sweep: SweepResult) -> Tensor:
    w_u = sweep.W_U.to(sweep.final.dtype)
    return torch.stack([(d @ w_u).norm(dim=-1) for d in sweep.delta])


@dataclass(frozen=True, eq=False)
class LambdaEstimate:
    """λ from ``|δr|`` (or ``|W_U δr|``) against ``|r|``.

    Attributes:
        space: ``"resid"`` (``|δr|``) or ``"logits"`` (``|W_U δr|``).
        norms: ``[n_coeffs, n_queries]`` the measured norms.
        fits: slopes of the mean over queries on each side of 0; ``fits.slope`` is λ.
        per_query: ``[n_queries]`` λ of each query (same ranges, mean of the two sides).
    """

    space: str
    norms: Float[Tensor, "n_coeffs n_queries"]
    fits: SideFits
    per_query: Float[Tensor, " n_queries"]

    @property
    def slope(self) -> float:
        return self.fits.slope


def check_r2(r2_min: float) -> None:
    """``r2_min`` is a number ``<= 1`` (``-inf`` accepts any linear range)."""
    if not is_number(r2_min):
        raise SteerlensTypeError(f"r2_min: expected a number <= 1, got {shown(r2_min)}")
    if math.isnan(r2_min) or r2_min > 1:
        raise SteerlensError(f"r2_min: expected a number <= 1, got {r2_min!r}")


def estimate_lambda(
    sweep: SweepResult, *, space: str = "resid", r2_min: float = 0.95
) -> LambdaEstimate:
    """λ: slope of the mean ``|δr|`` (``space="resid"``) or ``|W_U δr|`` against ``|r|``.

    Example:
        >>> res = sl.tradeoff.sweep(model, vec, torch.linspace(-8, 8, 9), prompts)
        >>> sl.tradeoff.estimate_lambda(res).slope
    """
    check_instance("sweep", sweep, SweepResult, "a SweepResult (sl.tradeoff.sweep)")
    check_choice("space", space, ("resid", "logits"))
    check_r2(r2_min)
    norms = sweep.delta.norm(dim=-1) if space == "resid" else _unembed_norms(sweep)
    r = sweep.coeffs.double().numpy()
    fits = fit_sides(r, norms.mean(1).double().numpy(), absolute=True, r2_min=r2_min)
    per_query = torch.zeros(sweep.n_queries, dtype=torch.float64)
    for sign, fit in ((1, fits.positive), (-1, fits.negative)):
        if fit is None:
            continue
        inside = (np.sign(r) == sign) & (np.abs(r) <= fit.x_max)
        x = torch.tensor(np.abs(r[inside]))
        y = norms[torch.tensor(inside)].double()  # [points, n_queries]
        per_query += (x[:, None] * y).sum(0) / (x * x).sum() / len(fits.fits)
    return LambdaEstimate(space, norms, fits, per_query.float())


def _unit_delta(sweep: SweepResult) -> tuple[Tensor, Tensor]:
    """``δr̂`` for the non-zero coefficients, and which coefficients those are."""
    nonzero = sweep.coeffs != 0
    delta = sweep.delta[nonzero]
    norms = delta.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise SteerlensError(
            "sweep: steering left h_L unchanged for some query and coefficient, so δr has "
            "no direction; use larger coefficients"
        )
    return delta / norms, nonzero


@dataclass(frozen=True, eq=False)
class MarginEstimate:
    """Δ and Δλ for a behaviour's aligned (A) and misaligned (M) tokens.

    Attributes:
        coeffs: ``[n_nonzero]`` the non-zero coefficients the margins are for.
        min_margin: ``[n_nonzero, n_queries]``, ``min_{i∈A, j∈M} <δr̂, u_i − u_j>``.
        mean_margin: ``[n_nonzero, n_queries]``, the mean over pairs.
        separation: ``[n_coeffs, n_queries]``, ``<δr, mean u_A − mean u_M>`` (all coeffs).
        delta_lambda: the slope of the mean separation against ``r`` on each side.
    """

    coeffs: Float[Tensor, " n_nonzero"]
    min_margin: Float[Tensor, "n_nonzero n_queries"]
    mean_margin: Float[Tensor, "n_nonzero n_queries"]
    separation: Float[Tensor, "n_coeffs n_queries"]
    delta_lambda: SideFits

    def summary(self, r_max: float) -> dict[str, float]:
        """Δ (mean- and min-margin) averaged over queries and ``0 < r <= r_max``."""
        rows = (self.coeffs > 0) & (self.coeffs <= r_max)
        if not bool(rows.any()):
            rows = self.coeffs > 0
        if not bool(rows.any()):
            raise SteerlensError("coeffs: Δ needs at least one positive coefficient")
        return {
            "delta": float(self.mean_margin[rows].mean()),
            "delta_min": float(self.min_margin[rows].mean()),
        }


def estimate_margin(
    sweep: SweepResult,
    aligned: Int[Tensor, " a"],
    misaligned: Int[Tensor, " m"],
    *,
    r2_min: float = 0.95,
) -> MarginEstimate:
    """Δ (min and mean margin of ``δr̂`` between aligned and misaligned unembeddings), Δλ."""
    check_instance("sweep", sweep, SweepResult, "a SweepResult (sl.tradeoff.sweep)")
    check_r2(r2_min)
    for name, ids in (("aligned", aligned), ("misaligned", misaligned)):
        if not isinstance(ids, Tensor) or ids.numel() == 0:
            raise SteerlensError(f"{name}: expected a non-empty tensor of token ids, got {ids!r}")
    unit, nonzero = _unit_delta(sweep)
    u_a, u_m = sweep.unembedding_rows(aligned), sweep.unembedding_rows(misaligned)
    proj_a = torch.einsum("cqd,qkd->cqk", unit, u_a)
    proj_m = torch.einsum("cqd,qkd->cqk", unit, u_m)
    min_margin = proj_a.min(-1).values - proj_m.max(-1).values
    mean_margin = proj_a.mean(-1) - proj_m.mean(-1)
    separation = torch.einsum("cqd,qd->cq", sweep.delta, u_a.mean(1) - u_m.mean(1))
    r = sweep.coeffs.double().numpy()
    fit = fit_sides(r, separation.mean(1).double().numpy(), absolute=False, r2_min=r2_min)
    return MarginEstimate(sweep.coeffs[nonzero], min_margin, mean_margin, separation, fit)


@dataclass(frozen=True, eq=False)
class NoiseEstimate:
    """σ, λσ and the normality of the logit noise on unrelated queries.

    Attributes:
        coeffs: ``[n_nonzero]``.
        tokens: ``[n_queries, T]`` the top-T unsteered tokens other than the correct one.
        x: ``[n_nonzero, n_queries, T]``, ``X_i = <δr̂, u_i − u_correct>``.
        sigma: ``[n_nonzero]`` the pooled standard deviation of ``X`` per coefficient.
        spread: ``[n_coeffs]`` the pooled std of ``<δr, u_i − u_correct>`` (0 at r = 0).
        lambda_sigma: its slope against ``|r|`` on each side; ``.slope`` is λσ.
        normality: Shapiro-Wilk W and p, skewness and excess kurtosis of ``X`` at
            ``normality["coeff"]``.
    """

    coeffs: Float[Tensor, " n_nonzero"]
    tokens: Int[Tensor, "n_queries T"]
    x: Float[Tensor, "n_nonzero n_queries T"]
    sigma: Float[Tensor, " n_nonzero"]
    spread: Float[Tensor, " n_coeffs"]
    lambda_sigma: SideFits
    normality: dict[str, float]

    @property
    def lambda_sigma_beta(self) -> float:
        """``β · λσ`` with β = √(2/π)."""
        return BETA * self.lambda_sigma.slope

    def x_at(self, coeff: float) -> Float[Tensor, " n"]:
        """All ``X_i`` (pooled over queries and tokens) at one non-zero coefficient."""
        hits = (self.coeffs == float(coeff)).nonzero().flatten()
        if hits.numel() == 0:
            raise SteerlensError(f"coeff: {coeff!r} is not among {self.coeffs.tolist()}")
        return self.x[int(hits[0])].flatten()


def estimate_noise(
    sweep: SweepResult,
    correct: Int[Tensor, " n_queries"],
    *,
    top_t: int = 10,
    r2_min: float = 0.95,
) -> NoiseEstimate:
    """σ and λσ from the top-``top_t`` unsteered tokens of unrelated queries."""
    check_instance("sweep", sweep, SweepResult, "a SweepResult (sl.tradeoff.sweep)")
    check_r2(r2_min)
    if isinstance(top_t, bool) or not isinstance(top_t, int) or top_t < 2:
        raise SteerlensError(f"top_t: expected an int >= 2, got {top_t!r}")
    correct = torch.as_tensor(correct).long()
    if correct.shape != (sweep.n_queries,):
        raise SteerlensError(
            f"correct: expected shape ({sweep.n_queries},), got {tuple(correct.shape)}"
        )
    ranked = sweep.base_logits().topk(top_t + 1, dim=-1).indices
    tokens = torch.stack([row[row != c][:top_t] for row, c in zip(ranked, correct, strict=True)])
    diff = sweep.token_delta_logits(tokens) - sweep.token_delta_logits(correct[:, None])
    spread = diff.flatten(1).std(1)
    unit, nonzero = _unit_delta(sweep)
    u_diff = sweep.unembedding_rows(tokens) - sweep.unembedding_rows(correct[:, None])
    x = torch.einsum("cqd,qkd->cqk", unit, u_diff)
    sigma = x.flatten(1).std(1)
    r = sweep.coeffs.double().numpy()
    fit = fit_sides(r, spread.double().numpy(), absolute=True, r2_min=r2_min)
    coeffs = sweep.coeffs[nonzero]
    reach = (fit.positive or fit.negative).x_max
    positive = (coeffs > 0) & (coeffs <= reach)
    where = int(positive.nonzero().flatten()[-1]) if bool(positive.any()) else 0
    sample = x[where].flatten().double().numpy()
    shapiro = stats.shapiro(sample) if sample.size >= 3 else (math.nan, math.nan)
    normality = {
        "coeff": float(coeffs[where]),
        "shapiro_w": float(shapiro[0]),
        "shapiro_p": float(shapiro[1]),
        "skew": float(stats.skew(sample)),
        "excess_kurtosis": float(stats.kurtosis(sample)),
        "n": float(sample.size),
    }
    return NoiseEstimate(coeffs, tokens, x, sigma, spread, fit, normality)
