"""The settings of ``tradeoff_report``: one frozen, validated dataclass with a quick preset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..core.validate import check_callable, check_choice, check_int, check_number, is_number
from ..measures.refusal import is_refusal


@dataclass(frozen=True)
class TradeoffSettings:
    """How ``tradeoff_report`` samples, fits and recommends.

    Attributes:
        n_behaviour: default behaviour queries (the last harmless requests of the shipped
            ``refusal`` set) when no ``behaviour`` is given.
        n_questions: default multiple-choice questions (spread over the shipped ``qa`` set)
            when no ``helpfulness`` task is given.
        n_coeffs: default coefficients (odd includes 0), spaced quadratically.
        span: the default range relative to the median residual norm at the first steered
            layer (1.5: far enough for the default model's helpfulness to reach chance).
        budget: allowed relative helpfulness drop for the recommendation.
        target: the ``B`` Corollary 1 aims at.
        floor: Theorem 2's floor: ``"chance"`` (1/N, Corollary 2) or a number in [0, 1)
            (0: the authors' form); the other of the two is fitted too, for comparison.
        top_t: T, the unsteered top tokens used for σ.
        r2_min: the R² a linear range must keep (λ, Δλ, λσ).
        min_mass: the Theorem 1 fit and the recommendation use only the coefficients around
            0 where the aligned and misaligned tokens keep at least this fraction of their
            unsteered probability mass (beyond, the normalized B is noise).
        n_boot: bootstrap resamples of the fits.
        seed: bootstrap seed.
        completions: also score greedy replies of this many behaviour prompts at 5 of the
            coefficients with ``score`` (0: skip; slower).
        score: the reply scorer for ``completions`` (default: keyword refusal classifier).
        batch_size: prompts per prefix pass.
        max_rows: rows (prompts × coefficients) per suffix pass.
    """

    n_behaviour: int = 20
    n_questions: int = 100
    n_coeffs: int = 21
    span: float = 1.5
    budget: float = 0.05
    target: float = 0.5
    floor: float | str = "chance"
    top_t: int = 10
    r2_min: float = 0.95
    min_mass: float = 0.1
    n_boot: int = 200
    seed: int = 0
    completions: int = 0
    score: Callable[[str], Any] = is_refusal
    batch_size: int = 16
    max_rows: int = 64

    def __post_init__(self) -> None:
        for name, low in (("n_behaviour", 1), ("n_questions", 1), ("n_coeffs", 7), ("top_t", 2)):
            check_int(name, getattr(self, name), low=low)
        for name, low in (("n_boot", 0), ("seed", 0), ("completions", 0)):
            check_int(name, getattr(self, name), low=low)
        for name in ("batch_size", "max_rows"):
            check_int(name, getattr(self, name), low=1)
        check_number("span", self.span, low=0.0, open_low=True)
        check_number("budget", self.budget, low=0.0, high=0.999999)
        check_number("target", self.target, low=-0.999999, high=0.999999)
        if is_number(self.floor):
            check_number("floor", self.floor, low=0.0, high=0.999999)
        else:
            check_choice("floor", self.floor, ["chance"])
        check_number("r2_min", self.r2_min, low=0.0, high=1.0)
        check_number("min_mass", self.min_mass, low=0.0)
        check_callable("score", self.score)

    @classmethod
    def quick(cls, **changes: Any) -> TradeoffSettings:
        """Small settings for tests and ``steerlens report --quick``."""
        small = cls(n_behaviour=8, n_questions=12, n_coeffs=9, n_boot=50)
        return replace(small, **changes)
