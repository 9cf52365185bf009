"""``tradeoff_report``: sweep, curves, geometry, fits and a recommended coefficient in one go."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.study import Stopwatch
from ..core.types import HookedModel
from ..core.validate import check_instance
from ..core.vector import SteeringVector, as_vector
from ..measures.choices import ChoiceTask, qa_task
from ..steering.activations import collect_activations
from .behaviour import BehaviourSpec, refusal_behaviour
from .curves import BehaviourCurve, HelpfulnessCurve, behaviour_curve, helpfulness_curve
from .fit import CurveFit, fit_behaviour, fit_helpfulness
from .geometry import BETA, estimate_lambda, estimate_margin, estimate_noise
from .recommend import reachable_from_zero, recommend_coefficient
from .replies import completion_behaviour
from .result import TradeoffReport
from .settings import TradeoffSettings
from .sweeps import check_coeffs, sweep


def default_coeffs(
    model: Any, vector: SteeringVector, prompts: Sequence[str], *, span: float, n: int
) -> Tensor:
    """``n`` coefficients ``r = R·x·|x|`` for ``x`` evenly in ``[-1, 1]`` (0 included for odd
    ``n``), ``R = span ×`` the median (``torch.median``: the lower middle value) norm of the
    residual at the first steered layer (last token of ``prompts``): dense near 0, where λ's
    linear range lies, and reaching far enough for helpfulness to decay."""
    layer = vector.layers[0]
    acts = collect_activations(model, list(prompts), [layer], site=vector.site)[:, 0]
    reach = span * float(acts.norm(dim=-1).median())
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    digits = 3 - math.floor(math.log10(reach)) if reach > 0 else 0
    return (reach * x * x.abs()).round(decimals=digits) + 0.0  # 4 significant digits; no -0


def _inputs(model, vector, behaviour, helpfulness, layers, config: TradeoffSettings):
    """The validated vector (its chosen layers), behaviour spec and choice task."""
    vector = as_vector(vector, layers, None).select(layers)
    vector.check_model(model)
    vector = SteeringVector(
        dict(vector.directions),
        site=vector.site,
        method=vector.method,
        model_name=vector.model_name,
        basis=vector.basis,
    )
    if behaviour is not None:
        check_instance("behaviour", behaviour, BehaviourSpec, "a BehaviourSpec")
    if helpfulness is not None:
        check_instance("helpfulness", helpfulness, ChoiceTask, "a ChoiceTask (sl.measures.qa_task)")
    spec = behaviour if behaviour is not None else refusal_behaviour(model, n=config.n_behaviour)
    task = helpfulness if helpfulness is not None else qa_task(model, n=config.n_questions)
    return vector, spec, task


def _coefficients(model, vector, spec, coeffs, config: TradeoffSettings) -> Tensor:
    """The swept coefficients, 0 included, at least 3 on each side."""
    if coeffs is not None:
        values = check_coeffs(coeffs)
    else:
        values = default_coeffs(model, vector, spec.prompts, span=config.span, n=config.n_coeffs)
    if not bool((values == 0).any()):
        values = torch.cat([values, torch.zeros(1, dtype=values.dtype)]).sort().values
    if int((values > 0).sum()) < 3 or int((values < 0).sum()) < 3:
        raise SteerlensError(
            f"coeffs: need at least 3 positive and 3 negative coefficients, got {values.tolist()}"
        )
    return values


def _fits(b_curve: BehaviourCurve, h_curve: HelpfulnessCurve, config: TradeoffSettings):
    """Theorem 1 on the behaviour range, Theorem 2 with both floors; failures kept."""
    values = b_curve.coeffs
    chance = 1.0 / h_curve.n_choices
    primary = chance if config.floor == "chance" else float(config.floor)
    other = 0.0 if primary != 0 else chance
    boot = {"n_boot": config.n_boot, "seed": config.seed}
    failures: dict[str, str] = {}

    def attempt(name: str, fit: Callable[[], CurveFit]) -> CurveFit | None:
        try:
            return fit()
        except SteerlensError as error:  # kept: the rest of the report is still valid
            failures[name] = str(error)
            return None

    mass = (b_curve.aligned_mass + b_curve.misaligned_mass).mean(1).double().numpy()
    r = values.double().numpy()
    keep = torch.from_numpy(reachable_from_zero(r, mass >= config.min_mass * mass[r == 0][0]))
    b_fit = attempt(
        "theorem1", lambda: fit_behaviour(values[keep], b_curve.normalized[keep], **boot)
    )
    h_fits = [
        attempt(
            f"theorem2_floor_{f:g}",
            lambda f=f: fit_helpfulness(values, h_curve.p_correct, floor=f, **boot),
        )
        for f in (primary, other)
    ]
    return keep, b_fit, h_fits, primary, failures


def _record(config, vector, values, spec, task, h_curve, primary, kept) -> dict[str, Any]:
    """The report's settings, JSON-serializable."""
    options = {k: v for k, v in asdict(config).items() if k != "score"}
    return {
        **options,
        "layers": vector.layers,
        "site": vector.site,
        "normalized": True,
        "coeffs": [float(v) for v in values],
        "behaviour": spec.name,
        "n_behaviour": len(spec.prompts),
        "n_questions": len(task.prompts),
        "n_choices": h_curve.n_choices,
        "floor": float(primary),
        "behaviour_range": [float(kept.min()), float(kept.max())],
        "beta": BETA,
        "vector_norms": {str(k): v for k, v in vector.norms().items()},
    }


def tradeoff_report(
    model: HookedModel,
    vector: SteeringVector | Tensor,
    behaviour: BehaviourSpec | None = None,
    helpfulness: ChoiceTask | None = None,
    *,
    coeffs: Sequence[float] | Tensor | None = None,
    layers: int | Sequence[int] | None = None,
    settings: TradeoffSettings | None = None,
) -> TradeoffReport:
    """Measure the alignment-helpfulness tradeoff of a steering vector (Wolf et al.).

    Sweeps the coefficient ``r`` of the unit-normalized vector over the behaviour queries and
    the multiple-choice questions, reads ``B(r)`` and ``h(r)``, estimates λ, Δ, σ and β from
    the geometry of ``δr``, fits Theorems 1 and 2 with bootstrap CIs, and recommends a
    coefficient. Every argument is checked before any model work.

    Args:
        model: a TransformerLens model.
        vector: the steering vector (each layer's direction is normalized to unit norm, so
            ``r`` is the paper's ``r_e``: the length added to the residual).
        behaviour: a ``BehaviourSpec`` (default: refusal on the last
            ``settings.n_behaviour`` harmless requests of the shipped ``refusal`` set).
        helpfulness: a ``ChoiceTask`` (default: ``settings.n_questions`` questions of the
            shipped ``qa`` set).
        coeffs: the coefficients (default: ``settings.n_coeffs`` spaced quadratically over
            ``±settings.span ×`` the median residual norm at the first steered layer, 0
            included; see ``default_coeffs``).
        layers: a subset of the vector's layers.
        settings: a ``sl.tradeoff.TradeoffSettings`` (``TradeoffSettings.quick()`` for
            tests and the ``--quick`` report).

    Returns:
        A ``TradeoffReport``; ``rep.summary`` holds the headline numbers. A curve that
        cannot be fitted does not stop the report: its fit is None, its summary values NaN
        and the reason is in ``rep.failures`` (and on the report page).

    Example:
        >>> rep = sl.tradeoff_report(model, vec, settings=sl.tradeoff.TradeoffSettings.quick())
        >>> rep.summary["recommended_coeff"], rep.figures()["behaviour"]
    """
    watch = Stopwatch()
    config = TradeoffSettings() if settings is None else settings
    check_instance("settings", config, TradeoffSettings, "a TradeoffSettings")
    vector, spec, task = _inputs(model, vector, behaviour, helpfulness, layers, config)
    values = _coefficients(model, vector, spec, coeffs, config)
    run = {"batch_size": config.batch_size, "max_rows": config.max_rows}
    b_sweep = sweep(model, vector, values, spec.prompts, **run)
    h_sweep = sweep(model, vector, values, task.prompts, **run)
    watch.lap("sweeps")
    b_curve, h_curve = behaviour_curve(b_sweep, spec), helpfulness_curve(h_sweep, task)
    keep, b_fit, (h_fit, h_other), primary, failures = _fits(b_curve, h_curve, config)
    kept = values[keep]
    watch.lap("fits")
    margin = estimate_margin(
        b_sweep, torch.tensor(spec.aligned), torch.tensor(spec.misaligned), r2_min=config.r2_min
    )
    correct_ids = task.choice_ids[torch.arange(len(task.prompts)), task.correct]
    noise = estimate_noise(h_sweep, correct_ids, top_t=config.top_t, r2_min=config.r2_min)
    lam = estimate_lambda(h_sweep, r2_min=config.r2_min)
    lam_logits = estimate_lambda(h_sweep, space="logits", r2_min=config.r2_min)
    lam_behaviour = estimate_lambda(b_sweep, r2_min=config.r2_min)
    watch.lap("geometry")
    recommendation = recommend_coefficient(
        kept,
        b_curve.normalized[keep].mean(1),
        h_curve.p_correct[keep].mean(1),
        budget=config.budget,
        behaviour_fit=b_fit,
        helpfulness_fit=h_fit,
        target=config.target,
        delta_lambda_geometric=margin.delta_lambda.slope,
    )
    scored = None
    if config.completions:
        picks = np.unique(np.linspace(0, values.numel() - 1, 5).round().astype(int))
        prompts = spec.prompts[: config.completions]
        scored = completion_behaviour(model, vector, values[picks], prompts, score=config.score)
    watch.lap("recommendation")
    return TradeoffReport(
        behaviour=b_curve,
        helpfulness=h_curve,
        behaviour_sweep=b_sweep,
        helpfulness_sweep=h_sweep,
        lam=lam,
        lam_logits=lam_logits,
        lam_behaviour=lam_behaviour,
        margin=margin,
        noise=noise,
        behaviour_fit=b_fit,
        helpfulness_fit=h_fit,
        helpfulness_fit_other=h_other,
        recommendation=recommendation,
        completions=scored,
        failures=failures,
        settings=_record(config, vector, values, spec, task, h_curve, primary, kept),
        seconds=watch.elapsed(),
        seconds_by_stage=watch.laps,
    )
