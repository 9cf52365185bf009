"""Held-out evaluation of directions: pair splits and separation of projections."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from ..core.errors import SteerlensError
from ..core.validate import check_int, check_number


def split_pairs(n_pairs: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices ``(train, test)``; a pair's two texts always stay together."""
    check_number("test_size", test_size, low=0.0, high=1.0, open_low=True)
    check_int("seed", seed, low=0)
    n_test = int(round(n_pairs * test_size))
    if n_test < 2 or n_pairs - n_test < 2:
        raise SteerlensError(
            f"test_size: {test_size} of {n_pairs} pairs leaves {n_test} test and "
            f"{n_pairs - n_test} train pairs; both need at least 2"
        )
    order = np.random.default_rng(seed).permutation(n_pairs)
    return order[n_test:], order[:n_test]


def separation(
    direction: np.ndarray,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """Held-out separation of projections on ``direction``.

    The sign is oriented by the train class means (positives above). Accuracy uses the
    midpoint of the train class means as threshold; AUROC is sklearn's; Cohen's d uses the
    pooled standard deviation of the held-out projections. A zero direction (e.g. identical
    last tokens at the embedding) separates nothing: 0.5 / 0.5 / 0.
    """
    norm = np.linalg.norm(direction)
    if norm == 0:
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
