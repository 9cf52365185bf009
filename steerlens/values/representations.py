"""Representations: attribute directions per layer, their cosines, projections, cross-prediction.

Each item is read alone (BOS + text, no chat template) at ``blocks.{l}.hook_resid_pre`` for
every layer; layer 0 is the input embedding (TransformerLens models without positional
embeddings, such as Llama-style ones, have ``resid_pre`` of block 0 equal to the token
embedding). The attribute direction of a factor is a mean difference of good minus bad items,
balanced over the other factor of its set: the average over the other factor's two levels of
``mean(good) - mean(bad)``. The moral direction averages the moral directions of the sets.

Projections used for correlations and cross-prediction are cross-fitted: frames are split into
``k`` folds and an item is projected on unit directions estimated without its fold, so that a
direction never "predicts" the items it was fit on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from sklearn.metrics import roc_auc_score
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.linalg import unit
from ..core.tokens import encode, get_tokenizer
from ..steering.activations import collect_activations
from .stimuli import SETS

NAMES = ("moral", "grammar", "economic")


def item_activations(
    model: Any,
    items: pd.DataFrame,
    layers: Any = "all",
    *,
    position: Any = "mean",
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, "n layer d_model"]:
    """Residuals of every item text read alone, ``[n_items, n_layers, d_model]``.

    ``position="mean"`` averages the item's own tokens, **without** the BOS token: its
    residual is the same for every text but, in many models, orders of magnitude larger than
    the rest (an attention sink), so a mean that includes it varies with the item's length
    rather than its content. It is removed exactly: ``(n * mean_all - bos) / (n - 1)``, with
    ``bos`` read once (position 0 sees only itself, so it is identical in every text). Other
    values of ``position`` are passed to ``collect_activations`` unchanged.
    """
    texts = list(items["text"])
    acts = collect_activations(
        model, texts, layers, position=position, batch_size=batch_size, progress=progress
    )
    bos = getattr(get_tokenizer(model), "bos_token_id", None)
    encoded = [encode(model, text) for text in texts]
    if position != "mean" or bos is None or any(ids[0] != bos for ids in encoded):
        return acts
    lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.float64)
    if bool((lengths < 2).any()):
        raise SteerlensError("stimuli: an item text has no token besides BOS")
    first = collect_activations(model, texts[:1], layers, position=0, progress=False)[0]
    total = acts.double() * lengths[:, None, None] - first.double()
    return (total / (lengths[:, None, None] - 1)).float()


def _balanced_difference(
    acts: Tensor, factor: np.ndarray, other: np.ndarray
) -> Float[Tensor, "layer d_model"]:
    """Average over the other factor's levels of mean(factor +1) - mean(factor -1)."""
    parts = []
    for level in (1, -1):
        good = torch.from_numpy((factor == 1) & (other == level))
        bad = torch.from_numpy((factor == -1) & (other == level))
        if not bool(good.any()) or not bool(bad.any()):
            raise SteerlensError("stimuli: a cell is empty; directions need all four cells")
        parts.append(acts[good].double().mean(0) - acts[bad].double().mean(0))
    return ((parts[0] + parts[1]) / 2).float()


def attribute_directions(
    acts: Float[Tensor, "n layer d_model"], items: pd.DataFrame
) -> dict[str, Float[Tensor, "layer d_model"]]:
    """Mean-difference directions per layer.

    Returns ``moral`` (average of the sets' moral directions), ``grammar`` and/or
    ``economic`` (for the sets present), and ``moral_in_<set>`` for each set.
    """
    if acts.shape[0] != len(items):
        raise SteerlensError(f"acts: {acts.shape[0]} rows for {len(items)} items")
    out: dict[str, Tensor] = {}
    morals = []
    for set_name in dict.fromkeys(items["set"]):
        rows = (items["set"] == set_name).to_numpy()
        target = SETS[set_name]
        moral = items.loc[rows, "moral"].to_numpy()
        label = items.loc[rows, target].to_numpy()
        part = acts[torch.from_numpy(rows.copy())]
        out[f"moral_in_{set_name}"] = _balanced_difference(part, moral, label)
        out[target] = _balanced_difference(part, label, moral)
        morals.append(out[f"moral_in_{set_name}"])
    out["moral"] = torch.stack(morals).mean(0)
    return out


def _unit(direction: Tensor) -> Tensor:
    return unit(direction, "direction", allow_zero=True)


def cosine_table(directions: dict[str, Tensor], layers: list[int]) -> pd.DataFrame:
    """Cosine between directions per layer (rows: layers; columns: pairs ``a·b``)."""
    names = [n for n in NAMES if n in directions]
    sets = [n for n in directions if n.startswith("moral_in_")]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    if len(sets) == 2:
        pairs.append((sets[0], sets[1]))
    columns = {}
    for a, b in pairs:
        cos = (_unit(directions[a]) * _unit(directions[b])).sum(-1)
        columns[f"{a}·{b}"] = cos.double().numpy()
    return pd.DataFrame(columns, index=pd.Index(layers, name="layer"))


def fold_ids(items: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Fold of every item: frames of each set shuffled (seeded) and dealt into ``k`` folds."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(items), dtype=int)
    for set_name in dict.fromkeys(items["set"]):
        rows = (items["set"] == set_name).to_numpy()
        frames = list(dict.fromkeys(items.loc[rows, "frame"]))
        if len(frames) < 2 * k:
            raise SteerlensError(
                f"k_folds: set {set_name!r} has {len(frames)} frames, fewer than 2 x {k} folds"
            )
        order = rng.permutation(len(frames))
        fold_of = {frames[j]: i % k for i, j in enumerate(order)}
        folds[rows] = items.loc[rows, "frame"].map(fold_of).to_numpy()
    return folds


def cross_fitted_projections(
    acts: Float[Tensor, "n layer d_model"], items: pd.DataFrame, *, k: int = 4, seed: int = 0
) -> dict[str, np.ndarray]:
    """Projection of each item on unit directions fit without its fold: name -> ``[n, layer]``."""
    folds = fold_ids(items, k, seed)
    out: dict[str, np.ndarray] = {}
    for fold in range(k):
        test = folds == fold
        train_items = items[~test].reset_index(drop=True)
        directions = attribute_directions(acts[torch.from_numpy(~test)], train_items)
        for name in NAMES:
            if name not in directions:
                continue
            values = torch.einsum(
                "nld,ld->nl", acts[torch.from_numpy(test)], _unit(directions[name])
            )
            out.setdefault(name, np.zeros(acts.shape[:2]))[test] = values.double().numpy()
    return out


def prediction_tables(
    projections: dict[str, np.ndarray], items: pd.DataFrame, layers: list[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-prediction AUROC and projection correlations per layer.

    Returns:
        ``(auroc, correlation)``. ``auroc`` columns ``direction→label``: the AUROC of the
        held-out projection on the direction for the label (+1 as the positive class; 0.5 =
        no information, below 0.5 = anti-aligned). ``moral→moral`` pools all items; the others
        use the items of the set that carries the target (``moral→grammar``,
        ``grammar→moral``, ``grammar→grammar``, the same for ``economic``). ``correlation``
        columns ``moral~grammar`` / ``moral~economic``: Pearson r of the two held-out
        projections over that set's items.
    """

    def scores(direction: str, labels: np.ndarray, rows: np.ndarray) -> list[float]:
        return [
            float(roc_auc_score(labels == 1, projections[direction][rows, j]))
            for j in range(len(layers))
        ]

    everything = np.ones(len(items), dtype=bool)
    auroc = {"moral→moral": scores("moral", items["moral"].to_numpy(), everything)}
    corr = {}
    for set_name in dict.fromkeys(items["set"]):
        rows = (items["set"] == set_name).to_numpy().copy()
        target = SETS[set_name]
        moral, label = items.loc[rows, "moral"].to_numpy(), items.loc[rows, target].to_numpy()
        auroc[f"moral→{target}"] = scores("moral", label, rows)
        auroc[f"{target}→moral"] = scores(target, moral, rows)
        auroc[f"{target}→{target}"] = scores(target, label, rows)
        corr[f"moral~{target}"] = [
            _pearson(projections["moral"][rows, j], projections[target][rows, j])
            for j in range(len(layers))
        ]
    index = pd.Index(layers, name="layer")
    return pd.DataFrame(auroc, index=index), pd.DataFrame(corr, index=index)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN when either side is constant (e.g. identical tokens at layer 0)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def in_sample_projections(
    acts: Float[Tensor, "n layer d_model"], directions: dict[str, Tensor]
) -> dict[str, np.ndarray]:
    """Projection of each item on the full-data unit directions: name -> ``[n, layer]``."""
    return {
        name: torch.einsum("nld,ld->nl", acts, _unit(directions[name])).double().numpy()
        for name in NAMES
        if name in directions
    }


def projection_table(
    items: pd.DataFrame,
    directions: Mapping[str, Any],
    row: int,
    before: Any,
    after: Any,
) -> pd.DataFrame:
    """Projections on the full-data moral and target directions (row ``row`` of
    ``directions``), from ``[n, 1, d_model]`` activations before and after the ablation."""
    at_layer = {name: value[row : row + 1] for name, value in directions.items()}
    targets = [SETS[s] for s in items["set"]]
    label = [items.loc[i, t] for i, t in zip(items.index, targets, strict=True)]
    tables = []
    for condition, acts in (("before", before), ("after", after)):
        projected = in_sample_projections(acts, at_layer)
        tables.append(
            pd.DataFrame(
                {
                    "condition": condition,
                    "id": items["id"].to_numpy(),
                    "set": items["set"].to_numpy(),
                    "moral": items["moral"].to_numpy(),
                    "target": label,
                    "moral_projection": projected["moral"][:, 0],
                    "target_projection": [projected[t][i, 0] for i, t in enumerate(targets)],
                }
            )
        )
    return pd.concat(tables, ignore_index=True)
