"""How a direction is made from two classes of activations: the strategy callables.

A strategy maps ``(pos [n, d_model], neg [n, d_model])`` numpy arrays (rows paired by index)
to one direction ``[d_model]``; ``layer_scan`` accepts any such callable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def mean_difference_strategy(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``mean(pos) - mean(neg)`` (CAA / mean-centring)."""
    return pos.mean(0) - neg.mean(0)


def pca_components(
    pos: np.ndarray, neg: np.ndarray, centre: bool = False
) -> tuple[np.ndarray, float]:
    """First principal component (RepE) and its explained-variance ratio.

    ``centre=False``: the top right-singular vector of the paired differences ``pos - neg``
    (PCA of the differences and their negations, so no centring is needed).
    ``centre=True``: the first principal component of the pooled, centred activations.
    The sign makes the mean paired difference project positively.
    """
    data = np.concatenate([pos, neg]) if centre else pos - neg
    if centre:
        data = data - data.mean(0)
    _, singular, vh = np.linalg.svd(data, full_matrices=False)
    component = vh[0]
    if (pos - neg).mean(0) @ component < 0:
        component = -component
    energy = singular**2
    explained = float(energy[0] / energy.sum()) if energy.sum() > 0 else 0.0
    return component, explained


def pca_strategy(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Top right-singular vector of the paired differences, signed towards ``pos``."""
    return pca_components(pos, neg)[0]


def probe_strategy(pos: np.ndarray, neg: np.ndarray, C: float = 1.0) -> np.ndarray:
    """Weight vector of a logistic regression separating ``pos`` (1) from ``neg`` (0)."""
    return fit_probe(pos, neg, C).coef_[0]


def fit_probe(pos: np.ndarray, neg: np.ndarray, C: float = 1.0) -> LogisticRegression:
    """scikit-learn's logistic regression of ``pos`` (label 1) against ``neg`` (label 0)."""
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return LogisticRegression(C=C, max_iter=2000).fit(x, y)


STRATEGIES: dict[str, Strategy] = {
    "mean_difference": mean_difference_strategy,
    "contrastive_pca": pca_strategy,
    "linear_probe": probe_strategy,
}
