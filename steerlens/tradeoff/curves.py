"""Behaviour and helpfulness curves read from a sweep (next-token probabilities).

- ``behaviour_curve``: ``B(q, r) = Σ_{a∈A} P(a|q) − Σ_{a∈M} P(a|q)`` (Wolf et al., eq. 3) and
  its normalized form ``(P_A − P_M) / (P_A + P_M)`` (the form their proof of Theorem 1 works
  with, eq. 12, which reaches ±1 and is the one fitted by default).
- ``helpfulness_curve``: ``h(q, r) = P(correct | q)`` normalized over the choices of a
  multiple-choice task (``ChoiceTask.probabilities``), and accuracy (argmax = correct).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError
from .behaviour import BehaviourSpec
from .sweep_result import SweepResult


def _check_same_prompts(sweep: SweepResult, prompts: Any, what: str) -> None:
    if not isinstance(sweep, SweepResult):
        raise SteerlensError(f"sweep: expected a SweepResult, got {type(sweep).__name__}")
    if tuple(prompts) != sweep.prompts:
        raise SteerlensError(
            f"sweep: was run on other prompts than the {what}'s ({sweep.n_queries} vs "
            f"{len(tuple(prompts))}); sweep the {what}'s prompts"
        )


def _mean_table(coeffs: Tensor, columns: dict[str, Tensor]) -> pd.DataFrame:
    """Per coefficient: mean over queries and its standard error, for each column."""
    table = {"coeff": coeffs.tolist()}
    for name, values in columns.items():
        n = values.shape[1]
        table[name] = values.mean(1).tolist()
        sem = values.std(1) / n**0.5 if n > 1 else torch.full((values.shape[0],), float("nan"))
        table[f"{name}_sem"] = sem.tolist()
    return pd.DataFrame(table)


@dataclass(frozen=True, eq=False)
class BehaviourCurve:
    """Behaviour expectation per coefficient and query.

    Attributes:
        coeffs: ``[n_coeffs]``.
        normalized: ``[n_coeffs, n_queries]``, ``(P_A − P_M) / (P_A + P_M)``.
        raw: ``[n_coeffs, n_queries]``, ``P_A − P_M`` (eq. 3).
        aligned_mass: ``[n_coeffs, n_queries]``, ``P_A``; ``misaligned_mass`` likewise.
    """

    coeffs: Float[Tensor, " n_coeffs"]
    normalized: Float[Tensor, "n_coeffs n_queries"]
    raw: Float[Tensor, "n_coeffs n_queries"]
    aligned_mass: Float[Tensor, "n_coeffs n_queries"]
    misaligned_mass: Float[Tensor, "n_coeffs n_queries"]

    @property
    def table(self) -> pd.DataFrame:
        """Means over queries (and standard errors) per coefficient."""
        return _mean_table(
            self.coeffs,
            {
                "B": self.normalized,
                "B_raw": self.raw,
                "P_aligned": self.aligned_mass,
                "P_misaligned": self.misaligned_mass,
            },
        )


def behaviour_curve(sweep: SweepResult, spec: BehaviourSpec) -> BehaviourCurve:
    """Read ``B(r)`` for every query of ``spec`` from a sweep of ``spec.prompts``.

    Example:
        >>> res = sl.tradeoff.sweep(model, vec, coeffs, spec.prompts)
        >>> sl.tradeoff.behaviour_curve(res, spec).table
    """
    if not isinstance(spec, BehaviourSpec):
        raise SteerlensError(f"spec: expected a BehaviourSpec, got {type(spec).__name__}")
    _check_same_prompts(sweep, spec.prompts, "behaviour spec")
    lse = sweep.log_normalizer()[..., None]
    masses = [
        (sweep.token_logits(torch.tensor(ids)) - lse).exp().sum(-1)
        for ids in (spec.aligned, spec.misaligned)
    ]
    p_a, p_m = masses
    total = p_a + p_m
    if bool((total <= 0).any()):
        raise SteerlensError(
            "spec: the aligned and misaligned tokens have zero probability for some query "
            "(underflow); choose tokens the model can produce"
        )
    return BehaviourCurve(sweep.coeffs, (p_a - p_m) / total, p_a - p_m, p_a, p_m)


@dataclass(frozen=True, eq=False)
class HelpfulnessCurve:
    """Probability of the correct choice per coefficient and question.

    Attributes:
        coeffs: ``[n_coeffs]``.
        p_correct: ``[n_coeffs, n_questions]``, normalized over the choices.
        correct: ``[n_coeffs, n_questions]``, 1.0 where the most likely choice is right.
        n_choices: choices per question (``1/n_choices`` is chance).
    """

    coeffs: Float[Tensor, " n_coeffs"]
    p_correct: Float[Tensor, "n_coeffs n_questions"]
    correct: Float[Tensor, "n_coeffs n_questions"]
    n_choices: int

    @property
    def table(self) -> pd.DataFrame:
        """Means over questions (``h``, ``accuracy``) and standard errors per coefficient."""
        return _mean_table(self.coeffs, {"h": self.p_correct, "accuracy": self.correct})


def helpfulness_curve(sweep: SweepResult, task: Any) -> HelpfulnessCurve:
    """Read ``h(r)`` from a sweep of ``task.prompts``: mean ``P(correct)`` over the choices.

    ``task`` is a ``ChoiceTask`` (``prompts``, ``choice_ids: [n, n_choices]``,
    ``correct: [n]``, ``probabilities(logits [n, d_vocab]) -> [n, n_choices]``), or any
    object with those members.

    Example:
        >>> res = sl.tradeoff.sweep(model, vec, coeffs, task.prompts)
        >>> sl.tradeoff.helpfulness_curve(res, task).table
    """
    for attr in ("prompts", "choice_ids", "correct", "probabilities"):
        if not hasattr(task, attr):
            raise SteerlensError(f"task: expected a ChoiceTask (lacks {attr!r}), got {task!r}")
    _check_same_prompts(sweep, task.prompts, "task")
    probs = sweep.map_logits(task.probabilities)  # [n_coeffs, n, n_choices]
    correct = torch.as_tensor(task.correct).long()
    n, n_choices = task.choice_ids.shape
    if probs.shape != (sweep.n_coeffs, n, n_choices) or correct.shape != (n,):
        raise SteerlensError(
            f"task: probabilities of shape {tuple(probs.shape[1:])} and correct of shape "
            f"{tuple(correct.shape)} do not match {n} questions x {n_choices} choices"
        )
    if not bool(torch.isfinite(probs).all()):
        raise SteerlensError("task: probabilities contain NaN or inf")
    index = correct[None, :, None].expand(sweep.n_coeffs, -1, 1)
    p_correct = probs.gather(2, index)[..., 0].float()
    hits = (probs.argmax(-1) == correct[None]).float()
    return HelpfulnessCurve(sweep.coeffs, p_correct, hits, int(n_choices))
