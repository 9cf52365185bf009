"""Report stage: a refusal direction, its layer scan and projections, steered generations.

Mean difference and contrastive PCA of refusal vs compliance openings under the same chat
prompts, a layer scan, held-out projections, and greedy generations on held-out harmless
requests over a few coefficients.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from ..core import datasets
from ..core.vector import SteeringVector
from ..measures.refusal import is_refusal, refusal_pairs
from ..steering.activations import project
from ..steering.context import steer
from ..steering.generation import generate
from ..steering.interventions import add
from ..vectors.contrastive import contrastive_pca, mean_difference
from ..vectors.plots import plot_token_heatmap
from ..vectors.scan import layer_scan
from .html import Section
from .settings import RefusalFindings, ReportContext


def _split(frame: pd.DataFrame, n_eval: int, n_train: int | None):
    harmless = frame[~frame["harmful"]]
    held_out = harmless.iloc[-n_eval:]
    train = frame.drop(index=held_out.index)
    return (train if n_train is None else train.iloc[:n_train]), held_out


def _vector_table(vector: SteeringVector, pca: SteeringVector) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": vector.layers,
            "norm": [vector.norms()[layer] for layer in vector.layers],
            "cosine(mean diff, PCA)": [vector.cosine(pca)[layer] for layer in vector.layers],
            "PCA explained variance": [
                pca.params["explained_variance"][str(layer)] for layer in vector.layers
            ],
        }
    )


def _projection_figure(model: Any, held_out: pd.DataFrame, vector: SteeringVector):
    """Held-out refusal and compliance answers projected on the direction, per layer."""
    test_pos, test_neg = refusal_pairs(model, held_out)
    proj = project(model, test_pos + test_neg, vector)
    n = len(test_pos)
    figure = go.Figure(
        [
            go.Box(
                x=[layer] * n,
                y=proj[rows, j].tolist(),
                name=name,
                marker_color=colour,
                showlegend=j == 0,
                legendgroup=name,
            )
            for name, rows, colour in (
                ("refusal", slice(0, n), "#c0392b"),
                ("compliance", slice(n, None), "#2471a3"),
            )
            for j, layer in enumerate(vector.layers)
        ]
    )
    figure.update_layout(
        title="Held-out answers projected on the refusal direction",
        boxmode="group",
        xaxis_title="layer (resid_pre)",
        yaxis_title="projection x·u (last token)",
    )
    return figure, test_pos[0]


def _steered_replies(model: Any, vector: SteeringVector, requests: list[str], context):
    """Greedy replies under ``x <- x + c·d`` at the report's layer, per coefficient."""
    settings = context.settings
    steer_vector = vector.select([settings.layer])
    scales = (0, 1) if settings.quick else (-1, 0, 0.5, 1, 1.5)
    coeffs = [round(scale * settings.coeff, 6) for scale in scales]
    replies = {}
    for coeff in tqdm(coeffs, desc="steered generation", leave=False):
        with steer(model, add(steer_vector, coeff=coeff)):
            replies[coeff] = generate(model, requests, max_new_tokens=settings.max_new_tokens)
    return coeffs, replies


def _rate_figure(coeffs, rates, n_requests: int, layer: int) -> go.Figure:
    figure = go.Figure(go.Scatter(x=coeffs, y=[rates[c] for c in coeffs], mode="lines+markers"))
    figure.update_layout(
        title=f"Refusal rate on {n_requests} held-out harmless requests",
        xaxis_title=f"coefficient (x ← x + c·d at layer {layer}, all positions)",
        yaxis_title="fraction refused (keyword classifier)",
        yaxis_range=[-0.05, 1.05],
    )
    return figure


def _sections(vector, scan, tables, figures) -> list[Section]:
    vector_table, coefficient_table, generations = tables
    return [
        Section(
            "The refusal direction",
            [
                f"{vector.params['n_pairs']} training prompts (refusal vs compliance openings "
                f"under the same chat prompt), {len(generations)} held-out harmless requests.",
                vector.describe(),
                "Mean difference per layer, its cosine with the contrastive-PCA direction, and "
                "a layer scan (held-out separation against a random direction of equal norm); "
                "the heatmap shows one held-out refusal answer token by token.",
            ],
            {"direction per layer": vector_table, "layer scan": scan.table.round(3)},
            figures[:3],
        ),
        Section(
            "Steering",
            [
                "Refusal rate of greedy replies as the coefficient grows "
                "(a reply counts as a refusal when a refusal phrase occurs in "
                "its first 80 characters)."
            ],
            {"refusal rate": coefficient_table, "generations": generations},
            figures[3:],
        ),
    ]


def refusal_stage(context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
    """Refusal direction, layer scan, projections and steered generations.

    Hands the mean-difference vector and the held-out split to later stages
    (``context.refusal``).
    """
    model, settings = context.model, context.settings
    frame = datasets.load("refusal")
    train, held_out = _split(frame, 6 if settings.quick else 20, 24 if settings.quick else None)
    layers = sorted({settings.layer + step for step in (-4, -2, 0, 2)})
    positives, negatives = refusal_pairs(model, train)
    vector = mean_difference(model, positives, negatives, layers=layers)
    pca = contrastive_pca(model, positives, negatives, layers=layers)
    scan_layers = [4, 10, 16, 22] if settings.quick else "all"
    scan = layer_scan(model, positives, negatives, layers=scan_layers)
    projection_figure, example = _projection_figure(model, held_out, vector)
    requests = held_out["request"].tolist()
    coeffs, replies = _steered_replies(model, vector, requests, context)
    rates = {coeff: sum(map(is_refusal, out)) / len(out) for coeff, out in replies.items()}
    steered = f"c = {settings.coeff:g}"
    generations = pd.DataFrame(
        {"request": requests, "unsteered": replies[0.0], steered: replies[settings.coeff]}
    )
    vector_table = _vector_table(vector, pca)
    rate_table = pd.DataFrame({"coefficient": coeffs, "refusal rate": [rates[c] for c in coeffs]})
    result = {
        "model": vector.model_name,
        "vector": repr(vector),
        "layers": layers,
        "steer_layer": settings.layer,
        "n_train_pairs": len(positives),
        "n_held_out": len(requests),
        "vector_table": vector_table.to_dict(orient="records"),
        "layer_scan": scan.table.reset_index().to_dict(orient="records"),
        "best_layer": scan.best_layer,
        "refusal_rate": {str(c): r for c, r in rates.items()},
        "generations": generations.to_dict(orient="records"),
    }
    context.refusal = RefusalFindings(vector, held_out)
    figures = [
        projection_figure,
        scan.figure(),
        plot_token_heatmap(model, example, vector),
        _rate_figure(coeffs, rates, len(requests), settings.layer),
    ]
    return result, _sections(vector, scan, (vector_table, rate_table, generations), figures)
