"""Linear probes: a logistic regression per layer, its weights as the direction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from ..core.basis import residual_basis
from ..core.hookpoints import model_name
from ..core.types import HookedModel
from ..core.validate import check_number
from ..core.vector import SteeringVector, data_hash
from .contrastive import check_pairs, paired_activations
from .evaluation import split_pairs
from .strategies import fit_probe


def _probe_row(p: np.ndarray, n: np.ndarray, train, test, C: float) -> tuple[dict, np.ndarray]:
    """Held-out scores of one layer's probe, and its weight vector."""
    probe = fit_probe(p[train], n[train], C)
    x_train, x_test = np.concatenate([p[train], n[train]]), np.concatenate([p[test], n[test]])
    y_train = np.r_[np.ones(len(train)), np.zeros(len(train))]
    y_test = np.r_[np.ones(len(test)), np.zeros(len(test))]
    row = {
        "accuracy": float(probe.score(x_test, y_test)),
        "auroc": float(roc_auc_score(y_test, probe.decision_function(x_test))),
        "train_accuracy": float(probe.score(x_train, y_train)),
        "n_train": len(train),
        "n_test": len(test),
    }
    return row, probe.coef_[0]


def linear_probe(
    model: HookedModel,
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
    activations are not standardized). Pairs are split together.

    Args:
        model: a TransformerLens model.
        positives: raw texts of the positive class (label 1).
        negatives: raw texts of the negative class, paired with ``positives`` by index.
        layers: where to read.
        position: token position rule, as for ``collect_activations``.
        site: residual site, as for ``collect_activations``.
        test_size: fraction of pairs held out.
        C: inverse regularization strength of scikit-learn's ``LogisticRegression``.
        seed: seed of the split.
        batch_size: texts per forward pass.

    Returns:
        ``(vector, table)``: the weight directions fit on the train pairs, and per layer the
        probe's held-out ``accuracy`` and ``auroc``, ``train_accuracy``, ``n_train``, ``n_test``.
    """
    check_number("C", C, low=0.0, open_low=True)
    positives, negatives = check_pairs(positives, negatives)
    train, test = split_pairs(len(positives), test_size, seed)
    pos, neg, layers = paired_activations(
        model, positives, negatives, layers, position, site, batch_size
    )
    pos, neg = pos.double().numpy(), neg.double().numpy()
    rows, directions = {}, {}
    for column, layer in enumerate(layers):
        rows[layer], weights = _probe_row(pos[:, column], neg[:, column], train, test, C)
        directions[layer] = torch.from_numpy(weights).float()
    vector = SteeringVector(
        directions,
        site=site,
        method="linear_probe",
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(position),
        params={"C": C, "test_size": test_size, "seed": seed},
        data_hash=data_hash(positives, negatives),
    )
    return vector, pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
