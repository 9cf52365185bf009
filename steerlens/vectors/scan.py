"""The layer scan: how well a direction fit on train pairs separates held-out pairs, per layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from ..core.basis import residual_basis
from ..core.errors import SteerlensError
from ..core.hookpoints import model_name
from ..core.types import HookedModel
from ..core.validate import check_callable, check_choice
from ..core.vector import SteeringVector, data_hash
from .contrastive import check_pairs, paired_activations
from .evaluation import separation, split_pairs
from .strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class LayerScan:
    """Per-layer separation table and the vector fit on the train pairs.

    Attributes:
        table: one row per layer (see ``layer_scan``).
        vector: directions fit on the train pairs only.
        best_layer: the layer with the highest held-out AUROC (ties: larger Cohen's d).
    """

    table: pd.DataFrame
    vector: SteeringVector

    @property
    def best_layer(self) -> int:
        ranked = self.table.sort_values(["auroc", "cohens_d"], ascending=False)
        return int(ranked.index[0])

    def figure(self) -> go.Figure:
        """Held-out AUROC per layer, with the random-direction baseline."""
        traces = [
            go.Scatter(x=self.table.index, y=self.table["auroc"], name="direction"),
            go.Scatter(
                x=self.table.index,
                y=self.table["random_auroc"],
                name="random direction",
                line={"dash": "dot"},
            ),
        ]
        fig = go.Figure(traces)
        fig.update_traces(mode="lines+markers")
        fig.update_layout(
            title=f"Layer scan ({self.vector.method})",
            xaxis_title="layer",
            yaxis_title="held-out AUROC",
            yaxis_range=[0, 1.02],
        )
        return fig


def _strategy(method: Any) -> tuple[str, Strategy]:
    if isinstance(method, str):
        return check_choice("method", method, list(STRATEGIES)), STRATEGIES[method]
    check_callable("method", method)
    return getattr(method, "__name__", "custom"), method


def _scan_layer(strategy: Strategy, p, n, train, test, rng) -> tuple[dict, np.ndarray]:
    """One layer's row of the table and its direction."""
    direction = np.asarray(strategy(p[train], n[train]), dtype=np.float64)
    if direction.shape != (p.shape[1],) or not np.isfinite(direction).all():
        raise SteerlensError(
            f"method: returned {direction.shape} {'with NaN/inf ' if direction.size else ''}"
            f"instead of a finite direction of shape ({p.shape[1]},)"
        )
    random = rng.standard_normal(direction.shape)
    random *= np.linalg.norm(direction) / np.linalg.norm(random)  # 0 stays 0
    fit = separation(direction, (p[train], n[train]), (p[test], n[test]))
    baseline = separation(random, (p[train], n[train]), (p[test], n[test]))
    row = {
        **fit,
        **{f"random_{k}": v for k, v in baseline.items()},
        "norm": float(np.linalg.norm(direction)),
    }
    return row, direction


def layer_scan(
    model: HookedModel,
    positives: Sequence[str],
    negatives: Sequence[str],
    layers: int | Sequence[int] | str = "all",
    *,
    method: str | Strategy = "mean_difference",
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
    test_size: float = 0.25,
    seed: int = 0,
    batch_size: int = 16,
) -> LayerScan:
    """Fit a direction per layer on train pairs and measure held-out separation.

    Activations are collected once for all layers. Per layer the table has held-out
    ``accuracy``, ``auroc`` and ``cohens_d`` of projections on the direction (a zero
    direction, e.g. identical last tokens at the embedding, scores 0.5 / 0.5 / 0), the same
    for a random direction of equal norm (``random_*``, seeded), the direction's ``norm``,
    and its cosine with the previous and next scanned layer (``cos_prev``, ``cos_next``).

    Args:
        model: a TransformerLens model.
        positives: raw texts of the positive class.
        negatives: raw texts of the negative class, paired with ``positives`` by index.
        layers: layers to scan (default: all).
        method: ``"mean_difference"``, ``"contrastive_pca"``, ``"linear_probe"``, or a
            callable ``(pos [n, d], neg [n, d]) -> direction [d]`` on numpy arrays.
        position: token position rule, as for ``collect_activations``.
        site: residual site, as for ``collect_activations``.
        test_size: fraction of pairs held out.
        seed: seed of the split and of the random baseline.
        batch_size: texts per forward pass.

    Returns:
        A ``LayerScan`` (``.table``, ``.vector``, ``.best_layer``, ``.figure()``).
    """
    name, strategy = _strategy(method)
    positives, negatives = check_pairs(positives, negatives)
    train, test = split_pairs(len(positives), test_size, seed)
    pos, neg, layers = paired_activations(
        model, positives, negatives, layers, position, site, batch_size
    )
    pos, neg = pos.double().numpy(), neg.double().numpy()
    rng = np.random.default_rng(seed)
    rows, directions = {}, {}
    for column, layer in enumerate(layers):
        rows[layer], direction = _scan_layer(
            strategy, pos[:, column], neg[:, column], train, test, rng
        )
        directions[layer] = torch.from_numpy(direction).float()
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
    cosines = [
        float(torch.cosine_similarity(directions[a], directions[b], dim=0))
        for a, b in zip(layers, layers[1:], strict=False)
    ]
    table["cos_prev"] = [np.nan, *cosines]
    table["cos_next"] = [*cosines, np.nan]
    vector = SteeringVector(
        directions,
        site=site,
        method=name,
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(position),
        params={"test_size": test_size, "seed": seed, "n_pairs": len(positives)},
        data_hash=data_hash(positives, negatives),
    )
    return LayerScan(table=table, vector=vector)
