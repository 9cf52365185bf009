"""``tradeoff_report``: sweep, curves, geometry, fits and a recommended coefficient in one go."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._activations import collect_activations
from ._behaviour import BehaviourSpec, completion_behaviour, refusal_behaviour
from ._errors import SteerlensError
from ._interventions import _select_layers
from ._refusal import is_refusal
from ._sweep import check_coeffs, sweep
from ._tradeoff_curves import behaviour_curve, helpfulness_curve
from ._tradeoff_fit import CurveFit, fit_behaviour, fit_helpfulness
from ._tradeoff_geometry import (
    BETA,
    estimate_lambda,
    estimate_margin,
    estimate_noise,
)
from ._tradeoff_recommend import reachable_from_zero, recommend_coefficient
from ._tradeoff_result import TradeoffReport
from ._vectors import SteeringVector, as_vector


def _default_helpfulness(model: Any, n: int | None) -> Any:
    try:
        from ._choices import qa_task
    except ImportError as error:
        raise SteerlensError(
            "helpfulness: the shipped 'qa' question set is not available in this version; "
            "pass a ChoiceTask (prompts, choice_ids, correct, probabilities)"
        ) from error
    return qa_task(model, n=n)


def default_coeffs(
    model: Any, vector: SteeringVector, prompts: Sequence[str], *, span: float, n: int
) -> Tensor:
    """``n`` coefficients ``r = R·x·|x|`` for ``x`` evenly in ``[-1, 1]`` (0 included for odd
    ``n``), ``R = span ×`` the median (``torch.median``: the lower middle value) norm of the
    residual at the first steered layer (last token of ``prompts``): dense near 0, where λ's
    linear range lies, and reaching far enough for helpfulness to decay."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 7:
        raise SteerlensError(f"n_coeffs: expected an int >= 7 (3 per side and 0), got {n!r}")
    if not isinstance(span, (int, float)) or isinstance(span, bool) or not span > 0:
        raise SteerlensError(f"span: expected a positive number, got {span!r}")
    layer = vector.layers[0]
    acts = collect_activations(model, list(prompts), [layer], site=vector.site)[:, 0]
    reach = span * float(acts.norm(dim=-1).median())
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    digits = 3 - math.floor(math.log10(reach)) if reach > 0 else 0
    return (reach * x * x.abs()).round(decimals=digits) + 0.0  # 4 significant digits; no -0


def tradeoff_report(
    model: Any,
    vector: SteeringVector | Tensor,
    behaviour: BehaviourSpec | None = None,
    helpfulness: Any = None,
    *,
    coeffs: Sequence[float] | Tensor | None = None,
    layers: int | Sequence[int] | None = None,
    quick: bool = False,
    n_coeffs: int | None = None,
    span: float = 1.5,
    budget: float = 0.05,
    target: float = 0.5,
    floor: float | str = "chance",
    top_t: int = 10,
    r2_min: float = 0.95,
    min_mass: float = 0.1,
    n_boot: int | None = None,
    seed: int = 0,
    completions: int = 0,
    score: Callable[[str], Any] = is_refusal,
    batch_size: int = 16,
    max_rows: int = 64,
) -> TradeoffReport:
    """Measure the alignment-helpfulness tradeoff of a steering vector (Wolf et al.).

    Sweeps the coefficient ``r`` of the unit-normalised vector over the behaviour queries and
    the multiple-choice questions, reads ``B(r)`` and ``h(r)``, estimates λ, Δ, σ and β from
    the geometry of ``δr``, fits Theorems 1 and 2 with bootstrap CIs, and recommends a
    coefficient.

    Args:
        model: a TransformerLens model.
        vector: the steering vector (each layer's direction is normalised to unit norm, so
            ``r`` is the paper's ``r_e``: the length added to the residual).
        behaviour: a ``BehaviourSpec`` (default: refusal on 20 harmless requests of the
            shipped ``refusal`` set, 8 with ``quick``).
        helpfulness: a ``ChoiceTask`` (default: 100 questions of the shipped ``qa`` set, 12
            with ``quick``).
        coeffs: the coefficients (default: 21, or 9 with ``quick``, spaced quadratically
            over ``±span ×`` the median residual norm at the first steered layer, 0
            included; see ``default_coeffs``).
        layers: a subset of the vector's layers.
        quick: small settings for tests and the ``--quick`` report.
        n_coeffs: how many default coefficients (default 21, 9 with ``quick``).
        span: the default range relative to the residual norm (1.5: far enough for the
            default model's helpfulness to reach chance on one side).
        budget: allowed relative helpfulness drop for the recommendation.
        target: the ``B`` Corollary 1 aims at.
        floor: Theorem 2's floor: ``"chance"`` (1/N, Corollary 2) or a number (0: the
            authors' form); the other of the two is fitted too, for comparison.
        top_t: T, the unsteered top tokens used for σ.
        r2_min: the R² a linear range must keep (λ, Δλ, λσ).
        min_mass: the Theorem 1 fit and the recommendation use only the coefficients around
            0 where the aligned and misaligned tokens keep at least this fraction of their
            unsteered probability mass (beyond, the model says neither, and the normalised
            B is noise); the kept range is ``settings["behaviour_range"]``.
        n_boot: bootstrap resamples (default 200, 50 with ``quick``).
        seed: bootstrap seed.
        completions: also score greedy replies of this many behaviour prompts at 5 of the
            coefficients with ``score`` (0: skip; slower).
        score: the reply scorer for ``completions`` (default: keyword refusal classifier).
        batch_size: prompts per prefix pass; ``max_rows``: rows per suffix pass.

    Returns:
        A ``TradeoffReport``; ``rep.summary`` holds the headline numbers. A curve that
        cannot be fitted does not stop the report: its fit is None, its summary values NaN
        and the reason is in ``rep.failures`` (and on the report page).

    Example:
        >>> rep = sl.tradeoff_report(model, vec)
        >>> rep.summary["recommended_coeff"], rep.figures()["behaviour"]
    """
    started = time.perf_counter()
    vector = as_vector(vector, layers, None)
    vector.check_model(model)
    chosen = _select_layers(vector, layers)
    vector = SteeringVector(
        {k: vector[k] for k in chosen},
        site=vector.site,
        method=vector.method,
        model_name=vector.model_name,
    )
    spec = behaviour if behaviour is not None else refusal_behaviour(model, n=8 if quick else 20)
    if not isinstance(spec, BehaviourSpec):
        raise SteerlensError(f"behaviour: expected a BehaviourSpec, got {type(spec).__name__}")
    task = helpfulness
    if task is None:
        task = _default_helpfulness(model, 12 if quick else 100)
    values = (
        check_coeffs(coeffs)
        if coeffs is not None
        else default_coeffs(
            model,
            vector,
            spec.prompts,
            span=span,
            n=n_coeffs if n_coeffs is not None else (9 if quick else 21),
        )
    )
    if not bool((values == 0).any()):
        values = torch.cat([values, torch.zeros(1, dtype=values.dtype)]).sort().values
    if int((values > 0).sum()) < 3 or int((values < 0).sum()) < 3:
        raise SteerlensError(
            f"coeffs: need at least 3 positive and 3 negative coefficients, got {values.tolist()}"
        )
    n_boot = n_boot if n_boot is not None else (50 if quick else 200)
    run = {"batch_size": batch_size, "max_rows": max_rows}
    b_sweep = sweep(model, vector, values, spec.prompts, **run)
    h_sweep = sweep(model, vector, values, task.prompts, **run)
    b_curve, h_curve = behaviour_curve(b_sweep, spec), helpfulness_curve(h_sweep, task)
    chance = 1.0 / h_curve.n_choices
    primary = chance if floor == "chance" else floor
    if not isinstance(primary, (int, float)) or isinstance(primary, bool):
        raise SteerlensError(f"floor: expected 'chance' or a number, got {floor!r}")
    other = 0.0 if primary != 0 else chance
    boot = {"n_boot": n_boot, "seed": seed}
    failures: dict[str, str] = {}

    def attempt(name: str, fit: Callable[[], CurveFit]) -> CurveFit | None:
        try:
            return fit()
        except SteerlensError as error:  # kept: the rest of the report is still valid
            failures[name] = str(error)
            return None

    mass = (b_curve.aligned_mass + b_curve.misaligned_mass).mean(1).double().numpy()
    r = values.double().numpy()
    keep = torch.from_numpy(reachable_from_zero(r, mass >= min_mass * mass[r == 0][0]))
    kept = values[keep]
    b_fit = attempt("theorem1", lambda: fit_behaviour(kept, b_curve.normalized[keep], **boot))
    h_fit, h_other = (
        attempt(
            f"theorem2_floor_{f:g}",
            lambda f=f: fit_helpfulness(values, h_curve.p_correct, floor=f, **boot),
        )
        for f in (float(primary), other)
    )
    margin = estimate_margin(
        b_sweep, torch.tensor(spec.aligned), torch.tensor(spec.misaligned), r2_min=r2_min
    )
    correct_ids = task.choice_ids[torch.arange(len(task.prompts)), task.correct]
    noise = estimate_noise(h_sweep, correct_ids, top_t=top_t, r2_min=r2_min)
    recommendation = recommend_coefficient(
        kept,
        b_curve.normalized[keep].mean(1),
        h_curve.p_correct[keep].mean(1),
        budget=budget,
        behaviour_fit=b_fit,
        helpfulness_fit=h_fit,
        target=target,
        delta_lambda_geometric=margin.delta_lambda.slope,
    )
    scored = None
    if completions:
        picks = np.unique(np.linspace(0, values.numel() - 1, 5).round().astype(int))
        scored = completion_behaviour(
            model, vector, values[picks], spec.prompts[:completions], score=score
        )
    settings = {
        "layers": list(chosen),
        "site": vector.site,
        "normalized": True,
        "coeffs": [float(v) for v in values],
        "behaviour": spec.name,
        "n_behaviour": len(spec.prompts),
        "n_questions": len(task.prompts),
        "n_choices": h_curve.n_choices,
        "floor": float(primary),
        "budget": budget,
        "target": target,
        "top_t": top_t,
        "r2_min": r2_min,
        "min_mass": min_mass,
        "behaviour_range": [float(kept.min()), float(kept.max())],
        "n_boot": n_boot,
        "seed": seed,
        "quick": quick,
        "beta": BETA,
        "vector_norms": {str(k): v for k, v in vector.norms().items()},
    }
    return TradeoffReport(
        b_curve,
        h_curve,
        b_sweep,
        h_sweep,
        estimate_lambda(h_sweep, r2_min=r2_min),
        estimate_lambda(h_sweep, space="logits", r2_min=r2_min),
        estimate_lambda(b_sweep, r2_min=r2_min),
        margin,
        noise,
        b_fit,
        h_fit,
        h_other,
        recommendation,
        scored,
        failures,
        settings,
        time.perf_counter() - started,
    )
