"""Linear probes and the layer scan: how well a direction separates held-out pairs, per layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ._contrastive import paired_activations
from ._errors import SteerlensError
from ._hooks import model_name
from ._vectors import SteeringVector, data_hash

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def mean_difference_strategy(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``mean(pos) - mean(neg)`` of ``[n, d_model]`` activations."""
    return pos.mean(0) - neg.mean(0)


def pca_strategy(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Top right-singular vector of the paired differences, signed towards ``pos``."""
    diff = pos - neg
    component = np.linalg.svd(diff, full_matrices=False)[2][0]
    return component if diff.mean(0) @ component >= 0 else -component


def probe_strategy(pos: np.ndarray, neg: np.ndarray, C: float = 1.0) -> np.ndarray:
    """Weight vector of a logistic regression separating ``pos`` (1) from ``neg`` (0)."""
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return LogisticRegression(C=C, max_iter=2000).fit(x, y).coef_[0]


STRATEGIES: dict[str, Strategy] = {
    "mean_difference": mean_difference_strategy,
    "contrastive_pca": pca_strategy,
    "linear_probe": probe_strategy,
}


def separation(
    direction: np.ndarray,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """Held-out separation of projections on ``direction``.

    The sign is oriented by the train class means (positives above). Accuracy uses the
    midpoint of the train class means as threshold; AUROC is sklearn's; Cohen's d uses the
    pooled standard deviation of the held-out projections.
    """
    norm = np.linalg.norm(direction)
    if norm == 0:  # e.g. identical last tokens at the embedding: nothing separates
        return {"accuracy": 0.5, "auroc": 0.5, "cohens_d": 0.0}
    unit = direction / norm
    train_pos, train_neg = train[0] @ unit, train[1] @ unit
    pos, neg = test[0] @ unit, test[1] @ unit
    threshold = (train_pos.mean() + train_neg.mean()) / 2
    sign = 1.0 if train_pos.mean() >= train_neg.mean() else -1.0
    pos, neg, threshold = sign * pos, sign * neg, sign * threshold
    correct = np.r_[pos > threshold, neg < threshold]
    pooled = np.sqrt((pos.var(ddof=1) + neg.var(ddof=1)) / 2) if len(pos) > 1 else np.nan
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return {
        "accuracy": float(correct.mean()),
        "auroc": float(roc_auc_score(labels, np.r_[pos, neg])),
        "cohens_d": float((pos.mean() - neg.mean()) / pooled) if pooled > 0 else float("nan"),
    }


def _split(n_pairs: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices for train and test; a pair's two texts always stay together."""
    if not 0 < test_size < 1:
        raise SteerlensError(f"test_size: expected a fraction in (0, 1), got {test_size!r}")
    n_test = int(round(n_pairs * test_size))
    if n_test < 2 or n_pairs - n_test < 2:
        raise SteerlensError(
            f"test_size: {test_size} of {n_pairs} pairs leaves {n_test} test and "
            f"{n_pairs - n_test} train pairs; both need at least 2"
        )
    order = np.random.default_rng(seed).permutation(n_pairs)
    return order[n_test:], order[:n_test]


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
        fig = go.Figure(
            [
                go.Scatter(
                    x=self.table.index,
                    y=self.table["auroc"],
                    name="direction",
                    mode="lines+markers",
                ),
                go.Scatter(
                    x=self.table.index,
                    y=self.table["random_auroc"],
                    name="random direction",
                    mode="lines+markers",
                    line={"dash": "dot"},
                ),
            ]
        )
        fig.update_layout(
            title=f"Layer scan ({self.vector.method})",
            xaxis_title="layer",
            yaxis_title="held-out AUROC",
            yaxis_range=[0, 1.02],
        )
        return fig


def _activations(model, positives, negatives, layers, position, site, batch_size):
    pos, neg, layers = paired_activations(
        model, positives, negatives, layers, position, site, batch_size
    )
    return pos.double().numpy(), neg.double().numpy(), layers


def layer_scan(
    model: Any,
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
    if isinstance(method, str):
        if method not in STRATEGIES:
            raise SteerlensError(f"method: expected one of {list(STRATEGIES)}, got {method!r}")
        name, strategy = method, STRATEGIES[method]
    elif callable(method):
        name, strategy = getattr(method, "__name__", "custom"), method
    else:
        raise SteerlensError(f"method: expected a name or a callable, got {method!r}")
    pos, neg, layers = _activations(model, positives, negatives, layers, position, site, batch_size)
    train, test = _split(len(pos), test_size, seed)
    rng = np.random.default_rng(seed)
    rows, directions = {}, {}
    for column, layer in enumerate(layers):
        p, n = pos[:, column], neg[:, column]
        direction = np.asarray(strategy(p[train], n[train]), dtype=np.float64)
        if direction.shape != (p.shape[1],) or not np.isfinite(direction).all():
            raise SteerlensError(f"method: returned an invalid direction at layer {layer}")
        random = rng.standard_normal(direction.shape)
        random *= np.linalg.norm(direction) / np.linalg.norm(random)  # 0 stays 0
        fit = separation(direction, (p[train], n[train]), (p[test], n[test]))
        baseline = separation(random, (p[train], n[train]), (p[test], n[test]))
        rows[layer] = {
            **fit,
            **{f"random_{k}": v for k, v in baseline.items()},
            "norm": float(np.linalg.norm(direction)),
        }
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
        position=str(position),
        params={"test_size": test_size, "seed": seed, "n_pairs": len(positives)},
        data_hash=data_hash(positives, negatives),
    )
    return LayerScan(table=table, vector=vector)


def linear_probe(
    model: Any,
    positives: Sequence[str],
    negatives: Sequence[str],
    layers: int | Sequence[int] | str,
    *,
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
    test_size: float = 0.25,
    C: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> tuple[SteeringVector, pd.DataFrame]:
    """Logistic-regression probe per layer on raw residual activations.

    The direction is the probe's weight vector (it lives in residual space because the
    activations are not standardised). Pairs are split together.

    Args:
        model: a TransformerLens model.
        positives: raw texts of the positive class (label 1).
        negatives: raw texts of the negative class, paired with ``positives`` by index.
        layers: where to read.
        position: token position rule, as for ``collect_activations``.
        site: residual site, as for ``collect_activations``.
        test_size: fraction of pairs held out.
        C: inverse regularisation strength of scikit-learn's ``LogisticRegression``.
        seed: seed of the split.
        batch_size: texts per forward pass.

    Returns:
        ``(vector, table)``: the weight directions fit on the train pairs, and per layer the
        probe's held-out ``accuracy`` and ``auroc``, ``train_accuracy``, ``n_train``, ``n_test``.
    """
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not 0 < C < float("inf"):
        raise SteerlensError(f"C: expected a positive finite number, got {C!r}")
    pos, neg, layers = _activations(model, positives, negatives, layers, position, site, batch_size)
    train, test = _split(len(pos), test_size, seed)
    rows, directions = {}, {}
    for column, layer in enumerate(layers):
        p, n = pos[:, column], neg[:, column]
        x_train = np.concatenate([p[train], n[train]])
        y_train = np.r_[np.ones(len(train)), np.zeros(len(train))]
        x_test = np.concatenate([p[test], n[test]])
        y_test = np.r_[np.ones(len(test)), np.zeros(len(test))]
        probe = LogisticRegression(C=C, max_iter=2000).fit(x_train, y_train)
        rows[layer] = {
            "accuracy": float(probe.score(x_test, y_test)),
            "auroc": float(roc_auc_score(y_test, probe.decision_function(x_test))),
            "train_accuracy": float(probe.score(x_train, y_train)),
            "n_train": len(train),
            "n_test": len(test),
        }
        directions[layer] = torch.from_numpy(probe.coef_[0]).float()
    vector = SteeringVector(
        directions,
        site=site,
        method="linear_probe",
        model_name=model_name(model),
        position=str(position),
        params={"C": C, "test_size": test_size, "seed": seed},
        data_hash=data_hash(positives, negatives),
    )
    return vector, pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
