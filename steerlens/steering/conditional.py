"""Conditional steering (CAST): an intervention on the rows whose prompt meets a condition.

``sl.when(condition, threshold, intervention)`` reads ``x . u`` (``u`` the condition vector's
unit direction) on each row's prompt tokens at the condition layer, reduces it over the
prompt (mean, last token or max) and compares it with ``threshold``. Rows that meet it get
``intervention`` on the prompt and on every generated token; the others are untouched.
The decision is taken per row on the first pass over a prompt and kept for the stream (the
KV-cache steps and full reruns of ``generate``); it lives in the hooks of one ``sl.steer``
block, never in shared state.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.hookpoints import SITES
from ..core.linalg import unit
from ..core.positions import Positions
from ..core.tracker import PositionTracker
from ..core.validate import check_choice, check_instance, check_number
from ..core.vector import SteeringVector, single_layer
from .interventions import EXPECTED, Intervention

COMPARATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
REDUCTIONS = ("mean", "last", "max")


@dataclass(frozen=True, eq=False)
class Conditional:
    """``intervention`` on the rows where ``reduce(x . direction) <comparator> threshold``."""

    direction: Tensor  # [d_model], unit norm
    layer: int
    site: str
    threshold: float
    comparator: str
    reduce: str
    intervention: Intervention

    def __repr__(self) -> str:
        return (
            f"when({self.reduce} projection at blocks.{self.layer}.hook_{self.site} "
            f"{self.comparator} {self.threshold:g}: {self.intervention!r})"
        )

    def meets(
        self, resid: Float[Tensor, "batch pos d_model"], where: Positions
    ) -> Bool[Tensor, " batch"]:
        """Which rows meet the condition, read on their prompt tokens."""
        proj = resid.float() @ self.direction.to(resid.device)  # [batch, pos]
        prompt = (where.absolute >= 0) & (where.absolute < where.prompt_len[:, None])
        if self.reduce == "mean":
            value = (proj * prompt).sum(-1) / prompt.sum(-1).clamp(min=1)
        elif self.reduce == "max":
            value = proj.masked_fill(~prompt, float("-inf")).amax(-1)
        else:
            value = proj.masked_fill(where.absolute != where.prompt_len[:, None] - 1, 0).sum(-1)
        return COMPARATORS[self.comparator](value, self.threshold)


def when(
    condition: SteeringVector | Tensor,
    threshold: float,
    intervention: Intervention,
    *,
    layer: int | None = None,
    comparator: str = ">",
    reduce: str = "mean",
) -> Conditional:
    """Apply ``intervention`` only to the rows whose prompt meets a condition (CAST).

    Args:
        condition: the condition direction: a ``SteeringVector`` (read at its site), or a
            ``[d_model]`` tensor together with ``layer``.
        threshold: compared with the prompt's projection ``x . u`` on the unit direction.
        intervention: any ``Intervention`` (``sl.add``, ``sl.ablate``, ...); its layers must
            come at or after the condition layer (the condition is read first).
        layer: where to read (default: the condition vector's only layer).
        comparator: ``">"``, ``">="``, ``"<"`` or ``"<="`` (``projection > threshold``).
        reduce: over the prompt's tokens: ``"mean"``, ``"last"`` token or ``"max"``.

    Example:
        >>> with sl.steer(model, sl.when(cond_vec, 0.5, sl.add(vec, 4.0))):
        ...     replies = sl.generate(model, requests, max_new_tokens=30)
    """
    check_instance("intervention", intervention, Intervention, EXPECTED)
    threshold = check_number("threshold", threshold)
    check_choice("comparator", comparator, tuple(COMPARATORS))
    check_choice("reduce", reduce, REDUCTIONS)
    vector, chosen = single_layer(condition, layer, "condition")
    _check_order(chosen, vector.site, intervention)
    direction = unit(vector[chosen], f"condition[{chosen}]").float()
    return Conditional(direction, chosen, vector.site, threshold, comparator, reduce, intervention)


def _check_order(layer: int, site: str, intervention: Intervention) -> None:
    """The condition is read before any of the intervention's edits."""
    read_at = (layer, SITES.index(site))
    early = [
        each for each in intervention.layers if (each, SITES.index(intervention.site)) < read_at
    ]
    if early:
        raise SteerlensError(
            f"intervention: its layers {early} ({intervention.site}) come before the condition "
            f"read at layer {layer} ({site}); the condition must be read before rows are steered"
        )


class RowGate:
    """The per-row decision of one ``Conditional`` inside one ``sl.steer`` block."""

    def __init__(self, conditional: Conditional, tracker: PositionTracker) -> None:
        self.conditional = conditional
        self._tracker = tracker
        self._rows: Tensor | None = None

    def read_hook(self):
        """The hook reading the condition on each new prompt (it never edits)."""

        def hook(resid: Tensor, **_: Any) -> None:
            where = self._tracker.positions(resid.shape[0], resid.shape[1], resid.device)
            stale = self._rows is None or self._rows.shape[0] != resid.shape[0]
            if where.new_stream or stale:
                self._rows = self.conditional.meets(resid.detach(), where)

        return hook

    def rows(self, batch: int, device: torch.device) -> Bool[Tensor, " batch"]:
        if self._rows is None or self._rows.shape[0] != batch:
            raise SteerlensError("when: the condition was not read before the steered layer")
        return self._rows.to(device)
