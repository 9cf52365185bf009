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

import steerlens as sl

from ._html import Section
from ._refusal import is_refusal, refusal_pairs


def _split(frame: pd.DataFrame, n_eval: int, n_train: int | None):
    harmless = frame[~frame["harmful"]]
    held_out = harmless.iloc[-n_eval:]
    train = frame.drop(index=held_out.index)
    return (train if n_train is None else train.iloc[:n_train]), held_out


def refusal_stage(context: dict[str, Any]) -> tuple[dict[str, Any], list[Section]]:
    """Refusal direction, layer scan, projections and steered generations.

    Puts the mean-difference vector (``refusal_vector``) and the train/held-out split in
    ``context`` for later stages.
    """
    args, model = context["args"], context["model"]
    steps = tqdm(total=3, desc="refusal direction", unit="step", leave=False)
    frame = sl.datasets.load("refusal")
    train, held_out = _split(frame, 6 if args.quick else 20, 24 if args.quick else None)
    layers = sorted({args.layer - 4, args.layer - 2, args.layer, args.layer + 2})
    positives, negatives = refusal_pairs(model, train)
    vector = sl.mean_difference(model, positives, negatives, layers=layers)
    pca = sl.contrastive_pca(model, positives, negatives, layers=layers)
    vector_table = pd.DataFrame(
        {
            "layer": layers,
            "norm": [vector.norms()[layer] for layer in layers],
            "cosine(mean diff, PCA)": [vector.cosine(pca)[layer] for layer in layers],
            "PCA explained variance": [pca.params["explained_variance"][str(i)] for i in layers],
        }
    )
    scan_layers = [4, 10, 16, 22] if args.quick else "all"
    scan = sl.layer_scan(model, positives, negatives, layers=scan_layers)
    steps.update()

    test_pos, test_neg = refusal_pairs(model, held_out)
    proj = sl.project(model, test_pos + test_neg, vector)
    n = len(test_pos)
    projection_figure = go.Figure(
        [
            go.Box(
                x=[layers[j]] * n,
                y=proj[rows, j].tolist(),
                name=name,
                marker_color=color,
                showlegend=j == 0,
                legendgroup=name,
            )
            for name, rows, color in (
                ("refusal", slice(0, n), "#c0392b"),
                ("compliance", slice(n, None), "#2471a3"),
            )
            for j in range(len(layers))
        ]
    )
    projection_figure.update_layout(
        title="Held-out answers projected on the refusal direction",
        boxmode="group",
        xaxis_title="layer (resid_pre)",
        yaxis_title="projection x·u (last token)",
    )
    steps.update()

    requests = held_out["request"].tolist()
    steer_vector = sl.SteeringVector(
        {args.layer: vector[args.layer]}, method=vector.method, model_name=vector.model_name
    )
    scales = (0, 1) if args.quick else (-1, 0, 0.5, 1, 1.5)
    coeffs = [round(scale * args.coeff, 6) for scale in scales]
    replies = {}
    for coeff in tqdm(coeffs, desc="steered generation", leave=False):
        with sl.steer(model, sl.add(steer_vector, coeff=coeff)):
            replies[coeff] = sl.generate(model, requests, max_new_tokens=args.max_new_tokens)
    rates = {coeff: sum(map(is_refusal, out)) / len(out) for coeff, out in replies.items()}
    rate_figure = go.Figure(
        go.Scatter(x=coeffs, y=[rates[c] for c in coeffs], mode="lines+markers")
    )
    rate_figure.update_layout(
        title=f"Refusal rate on {len(requests)} held-out harmless requests",
        xaxis_title=f"coefficient (x ← x + c·d at layer {args.layer}, all positions)",
        yaxis_title="fraction refused (keyword classifier)",
        yaxis_range=[-0.05, 1.05],
    )
    steps.update()

    generations = pd.DataFrame(
        {"request": requests, "unsteered": replies[0.0], f"c = {args.coeff:g}": replies[args.coeff]}
    )
    result = {
        "model": vector.model_name,
        "vector": repr(vector),
        "layers": layers,
        "steer_layer": args.layer,
        "n_train_pairs": len(positives),
        "n_held_out": len(requests),
        "vector_table": vector_table.to_dict(orient="records"),
        "layer_scan": scan.table.reset_index().to_dict(orient="records"),
        "best_layer": scan.best_layer,
        "refusal_rate": {str(c): r for c, r in rates.items()},
        "generations": generations.to_dict(orient="records"),
    }
    steps.close()
    context.update(refusal_vector=vector, refusal_train=train, refusal_held_out=held_out)
    sections = [
        Section(
            "The refusal direction",
            [
                f"{len(positives)} training prompts (refusal vs compliance openings under the "
                f"same chat prompt), {len(requests)} held-out harmless requests.",
                repr(vector),
                "Mean difference per layer, its cosine with the contrastive-PCA direction, and "
                "a layer scan (held-out separation against a random direction of equal norm); "
                "the heatmap shows one held-out refusal answer token by token.",
            ],
            [vector_table, scan.table.round(3)],
            [
                projection_figure,
                scan.figure(),
                sl.plot_token_heatmap(model, test_pos[0], vector),
            ],
        ),
        Section(
            "Steering",
            [
                "Refusal rate of greedy replies as the coefficient grows "
                "(a reply counts as a refusal when a refusal phrase occurs in "
                "its first 80 characters)."
            ],
            [
                pd.DataFrame({"coefficient": coeffs, "refusal rate": [rates[c] for c in coeffs]}),
                generations,
            ],
            [rate_figure],
        ),
    ]
    return result, sections
