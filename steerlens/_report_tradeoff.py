"""Report stage: the alignment-helpfulness tradeoff of the refusal direction (Wolf et al.).

Runs after the refusal stage and reuses its mean-difference vector (at ``--layer``) and its
held-out harmless requests: refusal B(r) on those requests, helpfulness on the shipped
``qa`` questions, λ/Δ/σ/β, the Theorem 1 and 2 fits and a recommended coefficient.
"""

from __future__ import annotations

from typing import Any

import steerlens as sl

from ._html import Section


def tradeoff_stage(context: dict[str, Any]) -> tuple[dict[str, Any], list[Section]]:
    """``tradeoff_report`` with the default settings (or ``quick``) on the refusal vector.

    Needs ``context["refusal_vector"]`` and ``context["refusal_held_out"]`` (the refusal
    stage puts them there); puts the ``TradeoffReport`` in ``context["tradeoff"]``.
    """
    args, model = context["args"], context["model"]
    full = context["refusal_vector"]
    vector = sl.SteeringVector(
        {args.layer: full[args.layer]}, method=full.method, model_name=full.model_name
    )
    behaviour = sl.refusal_behaviour(model, context["refusal_held_out"])
    rep = sl.tradeoff_report(model, vector, behaviour, quick=args.quick)
    context["tradeoff"] = rep
    return rep.to_dict(), rep.sections()
