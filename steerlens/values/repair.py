"""Repair by ablating the morality direction: the ablated vectors and where they apply.

Two ablation directions per layer ``l`` (rank 1, all positions, ``resid_pre``):

- ``plain``: the moral direction ``m_l`` itself;
- ``selective``: only the part of ``m_l`` orthogonal to the span of the grammatical and
  economic directions, ``m_l - P_{span(g_l, e_l)} m_l``, so that the grammatical and economic
  directions are left intact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from ..core.basis import residual_basis
from ..core.errors import SteerlensError
from ..core.hookpoints import layer_list, model_name
from ..core.vector import SteeringVector
from .stimuli import TARGETS


def moral_vectors(
    directions: Mapping[str, Float[Tensor, "layer d_model"]],
    layers: Sequence[int],
    ablate_layers: Sequence[int],
    model: Any,
    data_hash: str | None = None,
    position: str = "mean",
) -> dict[str, SteeringVector]:
    """``{"plain": ..., "selective": ...}`` moral directions at ``ablate_layers``.

    Args:
        directions: from ``attribute_directions``; rows follow ``layers``.
        layers: the layer of each row.
        ablate_layers: where the vectors live (a subset of ``layers``).
        model: the model (for the name in the vectors' metadata).
        data_hash: hash of the stimuli, kept in the vectors.
        position: how the item residuals were pooled, kept in the vectors.
    """
    missing = [layer for layer in ablate_layers if layer not in layers]
    if missing or not ablate_layers:
        raise SteerlensError(
            f"ablate_layers: {list(ablate_layers)} must be a non-empty subset of the analysed "
            f"layers {list(layers)}"
        )
    others = [name for name in TARGETS if name in directions]
    plain, selective = {}, {}
    for layer in ablate_layers:
        row = list(layers).index(layer)
        moral = directions["moral"][row].double()
        basis, _ = torch.linalg.qr(torch.stack([directions[n][row].double() for n in others]).T)
        plain[layer] = moral.float()
        selective[layer] = (moral - basis @ (basis.T @ moral)).float()
    meta = {
        "model_name": model_name(model),
        "basis": residual_basis(model),
        "data_hash": data_hash,
        "position": str(position),
    }
    return {
        "plain": SteeringVector(
            plain, method="value_moral_direction", params={"variant": "plain"}, **meta
        ),
        "selective": SteeringVector(
            selective,
            method="value_moral_direction",
            params={"variant": "selective", "orthogonal_to": others},
            **meta,
        ),
    }


AUTO_AUROC = 0.75


def choose_ablate_layers(
    ablate_layers: Any, auroc: pd.DataFrame, layers: list[int]
) -> tuple[list[int], str]:
    """Resolve ``ablate_layers`` (``"auto"``, ``"all"`` or layer indices) and say why."""
    if isinstance(ablate_layers, str) and ablate_layers == "auto":
        score = auroc["moral→moral"]
        reached = [layer for layer in layers if score[layer] >= AUTO_AUROC]
        if reached:
            chosen = [layer for layer in layers if layer >= reached[0]]
            return chosen, (
                f"auto: every analysed layer from {reached[0]}, the first where the moral "
                f"direction scores held-out moral labels with AUROC >= {AUTO_AUROC}, to the last"
            )
        best = int(score.idxmax())
        return [best], (
            f"auto: no layer reaches held-out moral AUROC {AUTO_AUROC}; the best layer "
            f"({best}, AUROC {score[best]:.2f}) only"
        )
    if isinstance(ablate_layers, str) and ablate_layers == "all":
        return list(layers), "all analysed layers"
    if isinstance(ablate_layers, str):
        raise SteerlensError(
            f"ablate_layers: expected 'auto', 'all' or a list of layers, got {ablate_layers!r}"
        )
    chosen = layer_list(ablate_layers, "ablate_layers")
    outside = [layer for layer in chosen if layer not in layers]
    if not chosen or outside:
        raise SteerlensError(
            f"ablate_layers: {chosen} must be a non-empty subset of the analysed layers {layers}"
        )
    return sorted(set(chosen)), "chosen by the caller"
