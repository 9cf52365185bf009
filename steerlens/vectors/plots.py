"""Plotly figures of residual-stream projections (returned, never shown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.forward import run
from ..core.hookpoints import attached, check_site, hook_point, layer_list
from ..core.tokens import encode, get_tokenizer, left_pad
from ..core.types import HookedModel
from ..core.validate import check_choice, check_instance, check_sequence, check_tensor
from ..core.vector import SteeringVector


def plot_projections(
    projections: Float[Tensor, "n_texts n_layers"],
    labels: Sequence[str],
    layers: Sequence[int],
    *,
    kind: str = "violin",
) -> go.Figure:
    """Projections of many texts per layer, one colour per class.

    Args:
        projections: ``[n_texts, n_layers]``, e.g. from ``sl.project``.
        labels: the class of each text.
        layers: the layer of each column.
        kind: ``"violin"`` (distribution per layer and class) or ``"line"`` (class means
            with one standard deviation).
    """
    check_tensor("projections", projections, 2)
    labels = check_sequence("labels", labels)
    layers = layer_list(layers)
    if projections.shape != (len(labels), len(layers)):
        raise SteerlensError(
            f"projections: expected shape ({len(labels)}, {len(layers)}), "
            f"got {tuple(projections.shape)}"
        )
    check_choice("kind", kind, ("violin", "line"))
    fig = go.Figure()
    for label in dict.fromkeys(labels):
        rows = torch.tensor([lab == label for lab in labels])
        values = projections[rows]
        if kind == "violin":
            fig.add_trace(
                go.Violin(
                    x=[layer for layer in layers for _ in range(len(values))],
                    y=values.T.reshape(-1).tolist(),
                    name=str(label),
                    box_visible=True,
                )
            )
        else:
            std = values.std(0) if len(values) > 1 else torch.zeros(len(layers))
            fig.add_trace(
                go.Scatter(
                    x=list(layers),
                    y=values.mean(0).tolist(),
                    name=str(label),
                    error_y={"type": "data", "array": std.tolist()},
                    mode="lines+markers",
                )
            )
    if kind == "violin":
        fig.update_layout(violinmode="group")
    fig.update_layout(
        title="Projections on the steering direction",
        xaxis_title="layer",
        yaxis_title="projection x·u",
    )
    return fig


def token_projections(
    model: HookedModel, text: str, vector: SteeringVector, *, site: str | None = None
) -> Float[Tensor, "pos n_layers"]:
    """``x·u`` at every token of ``text`` and every layer of ``vector`` (one forward pass)."""
    check_instance("vector", vector, SteeringVector, "a SteeringVector")
    vector.check_model(model)
    site = check_site(vector.site if site is None else site)
    ids = encode(model, text)
    captured: dict[int, Tensor] = {}

    def capture(layer: int):
        def hook(resid: Tensor, **_: Any) -> None:
            captured[layer] = resid.detach()[0].float().cpu()

        return hook

    hooks = [(hook_point(model, layer, site), capture(layer)) for layer in vector.layers]
    with attached(hooks):
        run(model, *left_pad(model, [ids]))
    units = vector.unit()
    return torch.stack([captured[layer] @ units[layer] for layer in vector.layers], dim=1)


def plot_token_heatmap(model: HookedModel, text: str, vector: SteeringVector) -> go.Figure:
    """Token × layer heatmap of projections on ``vector`` for one text.

    The colour range ignores the first token, whose residual norm is typically far larger
    than the rest (an attention sink), so that the other tokens stay readable.
    """
    values = token_projections(model, text, vector)
    body = values[1:] if values.shape[0] > 1 else values
    limit = float(body.abs().max()) or 1.0
    tokenizer = get_tokenizer(model)
    tokens = [tokenizer.decode([i]) for i in encode(model, text)]
    labels = [f"{i}: {t!r}" for i, t in enumerate(tokens)]
    fig = go.Figure(
        go.Heatmap(
            z=values.T.tolist(),
            x=labels,
            y=[str(layer) for layer in vector.layers],
            colorscale="RdBu",
            zmin=-limit,
            zmax=limit,
            colorbar={"title": "x·u"},
            hovertemplate="token %{x}<br>layer %{y}<br>projection %{z:.3g}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Projection per token and layer", xaxis_title="token", yaxis_title="layer"
    )
    return fig
