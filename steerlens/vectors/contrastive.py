"""Steering vectors from contrasting activations: mean difference and contrastive PCA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.basis import residual_basis
from ..core.errors import SteerlensError
from ..core.hookpoints import model_name, normalise_layers
from ..core.types import HookedModel
from ..core.validate import check_bool, check_texts
from ..core.vector import SteeringVector, data_hash
from ..steering.activations import collect_activations
from .strategies import pca_components

Activations = Float[Tensor, "n_texts n_layers d_model"]


def check_pairs(positives: Any, negatives: Any) -> tuple[list[str], list[str]]:
    """Two lists of texts, paired by index."""
    positives = check_texts("positives", positives)
    negatives = check_texts("negatives", negatives)
    if len(positives) != len(negatives):
        raise SteerlensError(
            f"negatives: expected as many texts as positives ({len(positives)}, paired by "
            f"index), got {len(negatives)}"
        )
    return positives, negatives


def paired_activations(
    model: Any,
    positives: Sequence[str],
    negatives: Sequence[str],
    layers: Any,
    position: Any,
    site: str,
    batch_size: int,
) -> tuple[
    Float[Tensor, "n_texts n_layers d_model"], Float[Tensor, "n_texts n_layers d_model"], list[int]
]:
    """Activations of paired texts in one pass: (positives, negatives, sorted layers)."""
    positives, negatives = check_pairs(positives, negatives)
    both = collect_activations(
        model, positives + negatives, layers, position=position, site=site, batch_size=batch_size
    )
    return both[: len(positives)], both[len(positives) :], normalise_layers(model, layers)


def mean_difference(
    model: HookedModel,
    positives: Sequence[str],
    negatives: Sequence[str],
    layers: int | Sequence[int] | str,
    *,
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
    batch_size: int = 16,
) -> SteeringVector:
    """``d_l = mean(h+_l) - mean(h-_l)`` (CAA / mean-centring), one direction per layer.

    Args:
        model: a TransformerLens model.
        positives: raw texts of the positive class.
        negatives: raw texts of the negative class, paired with ``positives`` by index.
        layers: where to read (ints, negative from the end, or ``"all"``).
        position: token position rule, as for ``collect_activations``.
        site: residual site, as for ``collect_activations``.
        batch_size: texts per forward pass.

    Returns:
        A ``SteeringVector``; its norm is the mean separation (not normalized).

    Example:
        >>> vec = sl.mean_difference(model, positives, negatives, layers=[8, 12])
    """
    pos, neg, layers = paired_activations(
        model, positives, negatives, layers, position, site, batch_size
    )
    diff = pos.mean(0) - neg.mean(0)  # [layer, d_model]
    return SteeringVector(
        {layer: diff[i] for i, layer in enumerate(layers)},
        site=site,
        method="mean_difference",
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(position),
        params={"n_pairs": len(positives), "batch_size": batch_size},
        data_hash=data_hash(positives, negatives),
    )


def contrastive_pca(
    model: HookedModel,
    positives: Sequence[str],
    negatives: Sequence[str],
    layers: int | Sequence[int] | str,
    *,
    centre: bool = False,
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
    batch_size: int = 16,
) -> SteeringVector:
    """First principal component per layer (RepE), as a unit vector.

    ``centre=False``: the top singular vector of the paired differences ``h+_i - h-_i``
    (PCA of the differences and their negations, so no centring is needed).
    ``centre=True``: the first principal component of the pooled, centred activations.
    The sign is chosen so that positives project higher than negatives on average; the
    explained-variance ratio per layer is kept in ``params["explained_variance"]``.

    Args:
        model: a TransformerLens model.
        positives: raw texts of the positive class.
        negatives: raw texts of the negative class, paired with ``positives`` by index.
        layers: where to read (ints, negative from the end, or ``"all"``).
        centre: which variant (see above).
        position: token position rule, as for ``collect_activations``.
        site: residual site, as for ``collect_activations``.
        batch_size: texts per forward pass.

    Returns:
        A ``SteeringVector`` of unit-norm directions.
    """
    check_bool("centre", centre)
    positives, negatives = check_pairs(positives, negatives)
    if len(positives) < 2 and centre:
        raise SteerlensError("positives: centred PCA needs at least 2 pairs")
    pos, neg, layers = paired_activations(
        model, positives, negatives, layers, position, site, batch_size
    )
    directions, explained = {}, {}
    for i, layer in enumerate(layers):
        component, ratio = pca_components(
            pos[:, i].double().numpy(), neg[:, i].double().numpy(), centre
        )
        directions[layer] = torch.from_numpy(component).float()
        explained[str(layer)] = ratio
    return SteeringVector(
        directions,
        site=site,
        method="contrastive_pca" + ("_centred" if centre else ""),
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(position),
        params={"n_pairs": len(positives), "centre": centre, "explained_variance": explained},
        data_hash=data_hash(positives, negatives),
    )
