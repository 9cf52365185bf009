"""``value_entanglement``: ratings, leakage, representations and repair in one report object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..core.vector import SteeringVector
from .plots import auroc_figure, cosine_figure, leakage_figure, projection_figure
from .stimuli import SETS

VARIANTS = {"plain": "after", "selective": "after_selective"}


@dataclass(frozen=True, eq=False)
class ValueEntanglement:
    """Result of ``sl.value_entanglement``: tables, vectors and figures.

    Attributes:
        items: the stimuli used (one row per item).
        ratings: one row per (condition, item, rated dimension), from ``sl.value_ratings``;
            conditions ``before``, ``after`` (moral direction ablated) and
            ``after_selective`` (its part orthogonal to the other directions ablated).
        effects: every statistic of every rating and condition, from ``sl.value_leakage``.
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
        settings: every setting of the run; ``seconds``: time per stage.
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
    seconds: Mapping[str, float] = field(default_factory=dict)

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

    def summary(self) -> pd.DataFrame:
        """Leakage and target effect per dimension and condition, rounded for reading."""
        part = self.effects[
            (self.effects["dimension"] != "moral")
            & self.effects["statistic"].isin(["moral_effect", "target_effect", "moral_share"])
        ]
        return (
            part.pivot_table(
                index=["dimension", "statistic"], columns="condition", values="estimate"
            )
            .reindex(columns=list(dict.fromkeys(part["condition"])))
            .round(3)
        )

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
        return {
            "leakage": self.leakage_figure(),
            "cosines": self.cosine_figure(),
            "auroc": self.auroc_figure(),
            "projections": self.projection_figure(),
        }

    # --- export -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every reported number, JSON-serializable (per-item ratings and projections are
        left out; they are in ``ratings`` and ``projections``)."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            clean = frame.reset_index().replace({np.nan: None})
            return clean.to_dict(orient="records")

        return {
            "settings": dict(self.settings),
            "seconds": dict(self.seconds),
            "n_items": {s: int((self.items["set"] == s).sum()) for s in self.items["set"].unique()},
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
