"""Finding a condition for ``sl.when``: layer x threshold by F1 on labelled prompts (CAST)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..core.chat import format_chat
from ..core.types import HookedModel
from ..core.validate import check_bool, check_choice, check_instance, check_texts
from ..core.vector import SteeringVector
from ..steering.activations import project
from ..steering.conditional import Conditional, when
from ..steering.interventions import Intervention

COLUMNS = ["layer", "comparator", "threshold", "precision", "recall", "f1"]


@dataclass(frozen=True)
class ConditionSearch:
    """The grid of (layer, comparator, threshold) with precision, recall and F1.

    Attributes:
        table: one row per candidate (columns ``layer``, ``comparator``, ``threshold``,
            ``precision``, ``recall``, ``f1``), best F1 first.
        condition: the condition vector searched.
        reduce: how the prompt's projections were reduced (``"mean"`` or ``"last"``).
    """

    table: pd.DataFrame
    condition: SteeringVector
    reduce: str

    @property
    def best(self) -> dict[str, Any]:
        """The row with the highest F1 (ties: the earlier layer, then ``>``)."""
        return self.table.iloc[0].to_dict()

    def when(self, intervention: Intervention) -> Conditional:
        """``sl.when`` with the best layer, comparator and threshold."""
        best = self.best
        return when(
            self.condition,
            best["threshold"],
            intervention,
            layer=int(best["layer"]),
            comparator=best["comparator"],
            reduce=self.reduce,
        )


def _scores(
    proj: Float[Tensor, " n_texts"], labels: Bool[Tensor, " n_texts"], comparator: str
) -> list[tuple[float, float, float, float]]:
    """(threshold, precision, recall, F1) at every midpoint between sorted projections."""
    values = proj.unique(sorted=True)
    thresholds = (values[1:] + values[:-1]) / 2 if len(values) > 1 else values
    predicted = proj[None, :] > thresholds[:, None]  # [n_thresholds, n_texts]
    if comparator == "<":
        predicted = proj[None, :] < thresholds[:, None]
    tp = (predicted & labels).sum(-1).float()
    precision = tp / predicted.sum(-1).clamp(min=1)
    recall = tp / labels.sum()
    f1 = 2 * tp / (predicted.sum(-1) + labels.sum())
    return list(zip(*(t.tolist() for t in (thresholds, precision, recall, f1)), strict=True))


def find_condition(
    model: HookedModel,
    condition: SteeringVector,
    positives: Sequence[str],
    negatives: Sequence[str],
    *,
    layers: int | Sequence[int] | None = None,
    reduce: str = "mean",
    chat: bool = True,
    batch_size: int = 16,
) -> ConditionSearch:
    """Grid-search the layer, comparator and threshold of a condition by F1.

    Each prompt's projection on the condition's unit direction is read as ``sl.when`` reads
    it (over the prompt's tokens, ``reduce``); at each layer every midpoint between sorted
    projections is a candidate threshold, with ``>`` (positives above) and ``<``.

    Args:
        model: a TransformerLens model.
        condition: the condition vector (e.g. ``sl.mean_difference`` of the two sets).
        positives: prompts the condition should select (user messages, or raw text with
            ``chat=False``).
        negatives: prompts it should leave alone.
        layers: a subset of the condition's layers (default: all of them).
        reduce: ``"mean"`` over the prompt's tokens or its ``"last"`` token.
        chat: apply the chat template first, as ``sl.generate`` does.
        batch_size: texts per forward pass.

    Returns:
        A ``ConditionSearch``: ``.table`` (best first), ``.best``, ``.when(intervention)``.

    Example:
        >>> cond = sl.mean_difference(model, harmful, harmless, layers=[4, 6, 8])
        >>> search = sl.find_condition(model, cond, harmful, harmless)
        >>> with sl.steer(model, search.when(sl.add(refusal, 4.0))): ...
    """
    check_instance("condition", condition, SteeringVector, "a SteeringVector")
    positives, negatives = check_texts("positives", positives), check_texts("negatives", negatives)
    check_choice("reduce", reduce, ("mean", "last"))
    check_bool("chat", chat)
    chosen = condition.select(layers)
    texts = positives + negatives
    if chat:
        texts = [format_chat(model, text) for text in texts]
    proj = project(model, texts, chosen, position=reduce, batch_size=batch_size)
    labels = torch.arange(len(texts)) < len(positives)
    rows = [
        (layer, comparator, *scores)
        for column, layer in enumerate(chosen.layers)
        for comparator in (">", "<")
        for scores in _scores(proj[:, column], labels, comparator)
    ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values("f1", ascending=False, kind="stable").reset_index(drop=True)
    return ConditionSearch(table, chosen, reduce)
