"""After the tradeoff line: the coefficient of a KL budget on neutral text (``sl.calibrate``),
shown next to the tradeoff's recommended coefficient."""

from __future__ import annotations

from typing import Any

from ..core.errors import SteerlensError
from ..core.study import Study
from ..core.vector import SteeringVector
from ..measures.calibration import Calibration, calibrate
from ..measures.kl import neutral_texts, token_kl
from ..steering.interventions import add
from .html import Section
from .settings import ReportContext, ReportSettings


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
    return numbers, Section("Tradeoff: KL budget", [text], {"": cal.curve}, [cal.figure()])


def kl_budget_stage(
    context: ReportContext, study: Study, numbers: dict[str, Any]
) -> tuple[dict[str, Any], list[Section]]:
    """After the tradeoff line: ``kl_budget`` on the refusal stage's unit vector, on the side
    of the recommended coefficient, starting at a quarter of the largest swept one."""
    vector = context.findings().vector.select([context.settings.layer])
    start = max(abs(c) for c in numbers["settings"]["coeffs"]) / 4
    recommended = study.summary["recommended_coeff"]
    try:
        kl, section = kl_budget(context.model, context.settings, vector.unit(), recommended, start)
    except SteerlensError as error:  # e.g. a budget the model never reaches: say so
        kl = {"kl": context.settings.kl_budget, "error": str(error)}
        section = Section("Tradeoff: KL budget", [f"Not calibrated: {error}"])
    return {"kl_budget": kl}, [section]
