"""Report stage: value entanglement before and after ablating the morality direction."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..values.pipeline import value_entanglement
from ..values.result import ValueEntanglement
from .html import Section
from .settings import ReportContext


def values_sections(ent: ValueEntanglement) -> list[Section]:
    """The value-entanglement study as page sections (text from the measured numbers)."""

    def interval(row: pd.Series, name: str) -> str:
        return f"{row[name]:+.3f} [{row[name + '_low']:+.3f}, {row[name + '_high']:+.3f}]"

    lines = []
    for dimension, row in ent.leakage.iterrows():
        target = ent.effects[
            (ent.effects["dimension"] == dimension)
            & (ent.effects["statistic"] == "target_effect")
            & (ent.effects["condition"] == "before")
        ].iloc[0]
        lines.append(
            f"{dimension}: leakage (moral effect on the {dimension} rating) "
            f"{interval(row, 'before')} before, {interval(row, 'after')} after ablating "
            f"the moral direction, {interval(row, 'after_selective')} after the selective "
            f"ablation; the rating's own {dimension} effect is {target['estimate']:+.3f} "
            f"[{target['ci_low']:+.3f}, {target['ci_high']:+.3f}] (95% frame-bootstrap CIs)."
        )
    n_items = ", ".join(f"{s}: {n}" for s, n in ent.items["set"].value_counts(sort=False).items())
    setup = [
        f"Items {n_items}; ratings are (P(good) - P(bad)) / (P(good) + P(bad)) of the "
        "next token after a pre-filled answer under the chat template; leakage is the "
        "moral main effect (good minus bad) on a grammar or economic rating with the target "
        "label controlled, and 0 is the normative value.",
        f"Moral direction ablated (rank 1, all positions) at layers {ent.ablate_layers} "
        f"({ent.settings.get('ablate_rule', '')}).",
    ]
    side = ent.side_effects[[c for c in ent.side_effects if not c.endswith(("_low", "_high"))]]
    return [
        Section("Value entanglement: setup", setup),
        Section(
            "Leakage before and after the repair",
            lines,
            [ent.summary().reset_index()],
            [ent.leakage_figure()],
        ),
        Section(
            "Side effects of the ablation",
            [
                "Moral discrimination should fall under a moral ablation; grammar and "
                "economic discrimination and helpfulness should stay; KL is measured on "
                "neutral text (nats per token)."
            ],
            [side.reset_index()],
        ),
        Section(
            "Representations",
            [
                "Attribute directions (good minus bad, balanced over the other factor) at "
                "every layer; held-out projections (frames cross-fitted)."
            ],
            [ent.cosines.iloc[:: max(1, len(ent.cosines) // 10)].round(3).reset_index()],
            [ent.cosine_figure(), ent.auroc_figure(), ent.projection_figure()],
        ),
    ]


def values_stage(context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
    """``value_entanglement`` with the report's (or the quick) settings."""
    study = value_entanglement(context.model, settings=context.settings.values)
    return study.to_dict(), values_sections(study)
