"""Report stage: the alignment-helpfulness tradeoff of the refusal direction (Wolf et al.).

Runs after the refusal stage and reuses its mean-difference vector (at the report's layer)
and its held-out harmless requests: refusal B(r) on those requests, helpfulness on the
shipped ``qa`` questions, λ/Δ/σ/β, the Theorem 1 and 2 fits and a recommended coefficient,
shown next to the coefficient of a KL budget on neutral text (``sl.calibrate``).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import SteerlensError
from ..core.vector import SteeringVector
from ..measures.calibration import Calibration, calibrate
from ..measures.kl import neutral_texts, token_kl
from ..steering.interventions import add
from ..tradeoff.behaviour import refusal_behaviour
from ..tradeoff.pipeline import tradeoff_report
from ..tradeoff.result import TradeoffReport
from .html import Section
from .settings import ReportContext, ReportSettings


def tradeoff_sections(rep: TradeoffReport) -> list[Section]:
    """The tradeoff report as page sections (text from the measured numbers)."""
    figs, s = rep.figures(), rep.summary
    setup = (
        f"Steering x ← x + r·v̂ at layers {rep.settings['layers']} ({rep.settings['site']}, "
        f"all positions, v̂ of unit norm per layer); {len(rep.settings['coeffs'])} "
        f"coefficients in [{min(rep.settings['coeffs']):g}, "
        f"{max(rep.settings['coeffs']):g}]; {rep.behaviour_sweep.n_queries} behaviour "
        f"queries ({rep.settings['behaviour']}), {rep.helpfulness_sweep.n_queries} "
        f"multiple-choice questions; {rep.seconds:.0f} s."
    )
    rec = rep.recommendation
    return [
        Section(
            "Tradeoff: behaviour and helpfulness",
            [
                setup,
                "B is fitted over r in [{:g}, {:g}], where the aligned and misaligned "
                "tokens keep at least {:g} of their unsteered probability mass.".format(
                    *rep.settings["behaviour_range"], rep.settings["min_mass"]
                ),
                f"Unsteered: B(0) = {s['B0']:.3f}, h(0) = {s['h0']:.3f}, accuracy "
                f"{s['accuracy0']:.3f}.",
            ],
            [rep.curves.round(4)],
            [figs["behaviour"], figs["helpfulness"]],
        ),
        Section(
            "Tradeoff: geometry (λ, Δ, σ, β) and fits",
            [
                *(f"Not fitted ({name}): {why}" for name, why in rep.failures.items()),
                "Geometric estimates from δr = h_L(r) − h_L(0) at the last token, the bounds "
                "of Theorems 1 and 2 fitted to the measured curves (95% bootstrap CIs over "
                "queries), and the paper's Llama-2-13B ranges for reference (its coefficients "
                "are on another scale).",
            ],
            [rep.geometry, rep.fits, rep.comparison],
            [figs["lambda"], figs["noise_histogram"], figs["noise_spread"]],
        ),
        Section(
            "Tradeoff: recommended coefficient",
            [
                f"Largest B gain with h ≥ {1 - rec.budget:g}·h(0): r = {rec.coeff:g} "
                f"(B gain {rec.gain:.3f}, h ratio {rec.h_ratio:.3f})."
            ],
            [rec.table],
        ),
    ]


def kl_budget(
    model: Any, settings: ReportSettings, unit: SteeringVector, recommended: float, start: float
) -> tuple[dict[str, Any], Section]:
    """``sl.calibrate`` of the unit vector, on the recommended coefficient's side, over a few
    neutral texts (cheap: few bisection steps), and the same KL quantile at ``recommended``."""
    texts = neutral_texts()[: settings.kl_texts]
    sign = -1.0 if recommended < 0 else 1.0
    cal: Calibration = calibrate(
        model, unit * sign, kl=settings.kl_budget, texts=texts, steps=6, rtol=0.05, start=start
    )
    kls = token_kl(model, {"r": add(unit, recommended)}, texts)["r"]
    at_recommended = float(kls.quantile(cal.quantile))
    numbers = {
        "kl": cal.kl,
        "quantile": cal.quantile,
        "coeff": sign * cal.coeff,
        "achieved": cal.achieved,
        "n_texts": len(texts),
        "n_tokens": cal.n_tokens,
        "kl_at_recommended": at_recommended,
        "curve": cal.curve.to_dict(orient="records"),
    }
    text = (
        f"KL budget (sl.calibrate): the {cal.quantile:g} quantile of per-token "
        f"KL(p ‖ p_steered) over {cal.n_tokens} tokens of {len(texts)} neutral texts reaches "
        f"{cal.kl:g} nat at r = {sign * cal.coeff:.4g} (measured {cal.achieved:.3f}); at the "
        f"recommended r = {recommended:g} it is {at_recommended:.3f} nat."
    )
    return numbers, Section("Tradeoff: KL budget", [text], [cal.curve.round(4)], [cal.figure()])


def tradeoff_stage(context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
    """``tradeoff_report`` (full or quick settings) on the refusal vector at the report's
    layer; needs the refusal stage's ``refusal_vector`` and ``refusal_held_out``."""
    model, settings = context.model, context.settings
    vector = context.found["refusal_vector"].select([settings.layer])
    behaviour = refusal_behaviour(model, context.found["refusal_held_out"])
    rep = tradeoff_report(model, vector, behaviour, settings=settings.tradeoff)
    context.found["tradeoff"] = rep
    start = max(abs(c) for c in rep.settings["coeffs"]) / 4
    try:
        numbers, budget = kl_budget(model, settings, vector.unit(), rep.recommendation.coeff, start)
    except SteerlensError as error:  # e.g. a budget the model never reaches: say so
        numbers = {"kl": settings.kl_budget, "error": str(error)}
        budget = Section("Tradeoff: KL budget", [f"Not calibrated: {error}"])
    return {**rep.to_dict(), "kl_budget": numbers}, [*tradeoff_sections(rep), budget]
