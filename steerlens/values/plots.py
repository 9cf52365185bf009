"""Figures of the value-entanglement study (plotly figures, returned, never shown)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLOURS = {"before": "#555555", "after": "#c0392b", "after_selective": "#2471a3"}
CELL_COLOURS = {(1, 1): "#1e8449", (1, -1): "#82e0aa", (-1, 1): "#a93226", (-1, -1): "#f1948a"}


def leakage_figure(effects: pd.DataFrame) -> go.Figure:
    """Leakage (moral effect on the grammar / economic rating) and the target effect, per
    condition, with bootstrap CIs."""
    targets = effects[effects["dimension"] != "moral"]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "leakage: moral effect on the rating",
            "discrimination: target effect on the rating",
        ),
    )
    for condition in dict.fromkeys(targets["condition"]):
        for col, statistic in ((1, "moral_effect"), (2, "target_effect")):
            part = targets[
                (targets["condition"] == condition) & (targets["statistic"] == statistic)
            ]
            fig.add_trace(
                go.Scatter(
                    x=part["dimension"],
                    y=part["estimate"],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": part["ci_high"] - part["estimate"],
                        "arrayminus": part["estimate"] - part["ci_low"],
                    },
                    mode="markers",
                    marker={"size": 10, "color": COLOURS.get(condition)},
                    name=condition,
                    legendgroup=condition,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.add_hline(y=0, line_dash="dot", line_color="#888888")
    fig.update_layout(
        title="Moral leakage into grammar and economic ratings (0 is the normative target)",
        scattermode="group",
        yaxis_title="rating difference (good − bad), rating in [−1, 1]",
    )
    return fig


def cosine_figure(cosines: pd.DataFrame) -> go.Figure:
    """Heatmap of the cosines between attribute directions over layers."""
    fig = go.Figure(
        go.Heatmap(
            z=cosines.T.to_numpy(),
            x=list(cosines.index),
            y=list(cosines.columns),
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            colorbar={"title": "cosine"},
            hovertemplate="layer %{x}<br>%{y}<br>cosine %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Cosine between attribute directions (mean differences) per layer",
        xaxis_title="layer (resid_pre; 0 = embeddings)",
    )
    return fig


def auroc_figure(auroc: pd.DataFrame, correlations: pd.DataFrame) -> go.Figure:
    """Cross-fitted AUROC of each direction for each label, and projection correlations."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("held-out AUROC: direction → label", "correlation of projections"),
    )
    for column in auroc.columns:
        direction, label = column.split("→")
        fig.add_trace(
            go.Scatter(
                x=list(auroc.index),
                y=auroc[column],
                name=column,
                mode="lines",
                line={"dash": "solid" if direction == label else "dot"},
            ),
            row=1,
            col=1,
        )
    for column in correlations.columns:
        fig.add_trace(
            go.Scatter(x=list(correlations.index), y=correlations[column], name=column),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="layer")
    fig.update_layout(title="What each direction predicts (frames held out)")
    return fig


def projection_figure(projections: pd.DataFrame, layer: int) -> go.Figure:
    """Items projected on the moral and the target direction at ``layer``, per set, before
    and after ablating the moral direction."""
    sets = list(dict.fromkeys(projections["set"]))
    fig = make_subplots(rows=1, cols=len(sets), subplot_titles=sets)
    for col, set_name in enumerate(sets, 1):
        part = projections[projections["set"] == set_name]
        for condition in dict.fromkeys(part["condition"]):
            for (moral, target), colour in CELL_COLOURS.items():
                cell = part[
                    (part["condition"] == condition)
                    & (part["moral"] == moral)
                    & (part["target"] == target)
                ]
                name = f"moral {moral:+d}, target {target:+d} ({condition})"
                fig.add_trace(
                    go.Scatter(
                        x=cell["moral_projection"],
                        y=cell["target_projection"],
                        mode="markers",
                        marker={
                            "color": colour,
                            "symbol": "circle" if condition == "before" else "x",
                            "size": 7,
                        },
                        name=name,
                        legendgroup=name,
                        showlegend=col == 1,
                        text=cell["id"],
                    ),
                    row=1,
                    col=col,
                )
        fig.update_xaxes(title_text="projection on the moral direction", row=1, col=col)
        fig.update_yaxes(title_text="projection on the target direction", row=1, col=col)
    fig.update_layout(title=f"Items projected on attribute directions at layer {layer}")
    return fig
