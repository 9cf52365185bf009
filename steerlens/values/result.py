"""``value_entanglement``: ratings, leakage, representations and repair in one report object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..core.study import json_safe
from ..core.vector import SteeringVector
from .plots import auroc_figure, cosine_figure, leakage_figure, projection_figure
from .stimuli import SETS


@dataclass(frozen=True, eq=False, kw_only=True)
class ValueEntanglement:
    """Result of ``sl.value_entanglement`` (a ``Study``): tables, vectors and figures.

    Attributes:
        items: the stimuli used (one row per item).
        ratings: one row per (condition, item, rated dimension), from
            ``sl.values.value_ratings``;
            conditions ``before``, ``after`` (moral direction ablated) and
            ``after_selective`` (its part orthogonal to the other directions ablated).
        effects: every statistic of every rating and condition, from
            ``sl.values.value_leakage``.
        cosines: ``layer x pair`` cosines between the attribute directions.
        auroc: ``layer x direction→label`` held-out AUROC (cross-fitted by frame).
        correlations: ``layer x moral~target`` correlation of held-out projections.
        projections: per item, projections on the moral and the target direction at
            ``figure_layer``, before and after the plain ablation.
        side_effects: ``measure x condition`` costs of the ablation, with CIs where the
            measure has one.
        vectors: ``moral``, ``grammar``, ``economic`` directions at every analysed layer and
            the ablated ``plain`` and ``selective`` vectors (``SteeringVector``).
        ablate_layers: where the moral direction was ablated, and why (``settings``).
        figure_layer: the layer shown in the projection figure.
        settings: every setting of the run.
        seconds: wall time; ``seconds_by_stage``: per stage.
    """

    items: pd.DataFrame
    ratings: pd.DataFrame
    effects: pd.DataFrame
    cosines: pd.DataFrame
    auroc: pd.DataFrame
    correlations: pd.DataFrame
    projections: pd.DataFrame
    side_effects: pd.DataFrame
    vectors: Mapping[str, SteeringVector]
    ablate_layers: list[int]
    figure_layer: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_by_stage: dict[str, float] = field(default_factory=dict)

    @property
    def leakage(self) -> pd.DataFrame:
        """One row per target dimension: the moral effect on its rating (leakage) before and
        after each ablation, with CIs, and the paired change with its CI."""
        rows = {}
        for set_name in dict.fromkeys(self.effects["set"]):
            target = SETS[set_name]
            part = self.effects[
                (self.effects["set"] == set_name)
                & (self.effects["dimension"] == target)
                & (self.effects["statistic"] == "moral_effect")
            ]
            row: dict[str, float] = {}
            for record in part.to_dict("records"):
                name = record["condition"]
                row[name] = record["estimate"]
                row[f"{name}_low"] = record["ci_low"]
                row[f"{name}_high"] = record["ci_high"]
                if not np.isnan(record["change"]):
                    row[f"{name}_change"] = record["change"]
                    row[f"{name}_change_low"] = record["change_low"]
                    row[f"{name}_change_high"] = record["change_high"]
            rows[target] = row
        order = [d for d in self.settings.get("dimensions", []) if d in rows] or list(rows)
        return pd.DataFrame.from_dict(rows, orient="index").loc[order].rename_axis("dimension")

    @property
    def summary(self) -> dict[str, float]:
        """The leakage of every target dimension before and after each ablation, with CIs:
        ``leakage_{dimension}_{column}`` for each column of ``leakage`` (e.g.
        ``leakage_grammar_before``, ``leakage_grammar_after_high``)."""
        return {
            f"leakage_{dimension}_{column}": float(value)
            for dimension, row in self.leakage.iterrows()
            for column, value in row.items()
        }

    def effect_table(self) -> pd.DataFrame:
        """Leakage, target effect and moral share per dimension and condition."""
        part = self.effects[
            (self.effects["dimension"] != "moral")
            & self.effects["statistic"].isin(["moral_effect", "target_effect", "moral_share"])
        ]
        return part.pivot_table(
            index=["dimension", "statistic"], columns="condition", values="estimate"
        ).reindex(columns=list(dict.fromkeys(part["condition"])))

    def tables(self) -> dict[str, pd.DataFrame]:
        """``effects`` (``effect_table``), ``side effects`` (without CIs) and ``cosines``
        (about ten layers)."""
        side = self.side_effects
        return {
            "effects": self.effect_table().reset_index(),
            "side effects": side[
                [c for c in side if not c.endswith(("_low", "_high"))]
            ].reset_index(),
            "cosines": self.cosines.iloc[:: max(1, len(self.cosines) // 10)].reset_index(),
        }

    def describe(self) -> str:
        """The stimuli, the measure, the ablation, and each dimension's leakage before and
        after it."""

        def interval(row: pd.Series, name: str) -> str:
            return f"{row[name]:+.3f} [{row[name + '_low']:+.3f}, {row[name + '_high']:+.3f}]"

        n_items = ", ".join(
            f"{s}: {n}" for s, n in self.items["set"].value_counts(sort=False).items()
        )
        lines = [
            f"Items {n_items}; ratings are (P(good) - P(bad)) / (P(good) + P(bad)) of the "
            "next token after a pre-filled answer under the chat template; leakage is the "
            "moral main effect (good minus bad) on a grammar or economic rating with the "
            "target label controlled, and 0 is the normative value.",
            f"Moral direction ablated (rank 1, all positions) at layers {self.ablate_layers} "
            f"({self.settings.get('ablate_rule', '')}).",
        ]
        for dimension, row in self.leakage.iterrows():
            target = self.effects[
                (self.effects["dimension"] == dimension)
                & (self.effects["statistic"] == "target_effect")
                & (self.effects["condition"] == "before")
            ].iloc[0]
            lines.append(
                f"{dimension}: leakage (moral effect on the {dimension} rating) "
                f"{interval(row, 'before')} before, {interval(row, 'after')} after ablating "
                f"the moral direction, {interval(row, 'after_selective')} after the selective "
                f"ablation; the rating's own {dimension} effect is {target['estimate']:+.3f} "
                f"[{target['ci_low']:+.3f}, {target['ci_high']:+.3f}] (95% frame-bootstrap "
                "CIs)."
            )
        lines += [
            "Side effects: moral discrimination should fall under a moral ablation; grammar "
            "and economic discrimination and helpfulness should stay; KL is measured on "
            "neutral text (nats per token).",
            "Representations: attribute directions (good minus bad, balanced over the other "
            "factor) at every layer; held-out projections (frames cross-fitted).",
        ]
        return "\n\n".join(lines)

    # --- figures ------------------------------------------------------------------------
    def leakage_figure(self) -> go.Figure:
        """Leakage and target effect per dimension and condition, with CIs."""
        return leakage_figure(self.effects)

    def cosine_figure(self) -> go.Figure:
        """Heatmap of cosines between attribute directions over layers."""
        return cosine_figure(self.cosines)

    def auroc_figure(self) -> go.Figure:
        """Held-out AUROC of each direction for each label, and projection correlations."""
        return auroc_figure(self.auroc, self.correlations)

    def projection_figure(self) -> go.Figure:
        """Items on the moral and target directions at ``figure_layer``, before/after."""
        return projection_figure(self.projections, self.figure_layer)

    def figures(self) -> dict[str, go.Figure]:
        """``leakage``, ``cosines``, ``auroc`` and ``projections``."""
        return {
            "leakage": self.leakage_figure(),
            "cosines": self.cosine_figure(),
            "auroc": self.auroc_figure(),
            "projections": self.projection_figure(),
        }

    # --- export -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every reported number, JSON-ready (per-item ratings and projections are left out;
        they are in ``ratings`` and ``projections``)."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return frame.reset_index().to_dict(orient="records")

        return json_safe(
            {
                "summary": self.summary,
                "settings": dict(self.settings),
                "seconds": self.seconds,
                "seconds_by_stage": dict(self.seconds_by_stage),
                "n_items": {
                    s: int((self.items["set"] == s).sum()) for s in self.items["set"].unique()
                },
                "ablate_layers": list(self.ablate_layers),
                "figure_layer": self.figure_layer,
                "leakage": records(self.leakage),
                "effects": records(self.effects),
                "side_effects": records(self.side_effects),
                "cosines": records(self.cosines),
                "auroc": records(self.auroc),
                "correlations": records(self.correlations),
                "vector_norms": {
                    name: {str(k): v for k, v in vector.norms().items()}
                    for name, vector in self.vectors.items()
                },
            }
        )
