"""Report stage: the alignment-helpfulness tradeoff of the refusal direction (Wolf et al.).

Runs after the refusal stage and reuses its mean-difference vector (at the report's layer)
and its held-out harmless requests: refusal B(r) on those requests, helpfulness on the
shipped ``qa`` questions, λ/Δ/σ/β, the Theorem 1 and 2 fits and a recommended coefficient.
"""

from __future__ import annotations

from typing import Any

from ..tradeoff.behaviour import refusal_behaviour
from ..tradeoff.pipeline import tradeoff_report
from ..tradeoff.result import TradeoffReport
from .html import Section
from .settings import ReportContext


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


def tradeoff_stage(context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
    """``tradeoff_report`` (full or quick settings) on the refusal vector at the report's
    layer; needs the refusal stage's ``refusal_vector`` and ``refusal_held_out``."""
    model, settings = context.model, context.settings
    vector = context.found["refusal_vector"].select([settings.layer])
    behaviour = refusal_behaviour(model, context.found["refusal_held_out"])
    rep = tradeoff_report(model, vector, behaviour, settings=settings.tradeoff)
    context.found["tradeoff"] = rep
    return rep.to_dict(), tradeoff_sections(rep)
