"""Conflicts between interventions: a later ablate or clamp undoing an earlier edit.

At one hook point, interventions apply in the order given. Two additions always commute,
but an ablation or a clamp removes the component of the residual along its directions,
including whatever an earlier intervention at the same point put there. ``find_conflicts``
reports each such pair with how much of the earlier direction is removed (the norm of its
unit vector projected onto the later intervention's span, between 0 and 1); ``sl.steer``
warns about them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..core.validate import check_instance
from .interventions import Intervention

OVERLAP_TOLERANCE = 1e-3


class SteeringConflictWarning(UserWarning):
    """A later intervention at the same hook point undoes part of an earlier one."""


@dataclass(frozen=True)
class Conflict:
    """``later`` (an ablate or clamp) removes ``overlap`` of ``earlier``'s direction."""

    earlier: int
    later: int
    layer: int
    site: str
    overlap: float

    def __str__(self) -> str:
        return (
            f"intervention {self.later} ({self.site}, layer {self.layer}) removes "
            f"{self.overlap:.0%} of the direction of intervention {self.earlier}, which "
            "applies before it at the same hook point; reorder them or drop one"
        )


def _overlap(earlier: torch.Tensor, later_basis: torch.Tensor) -> float:
    """Largest fraction of a unit row of ``earlier`` inside the span of ``later_basis``."""
    units = earlier / earlier.norm(dim=-1, keepdim=True)
    return float((units @ later_basis.T).norm(dim=-1).max())


def find_conflicts(interventions: Sequence[Intervention]) -> list[Conflict]:
    """Pairs where a later ablate/clamp removes part of an earlier intervention's direction.

    Args:
        interventions: in the order they would be passed to ``sl.steer``.

    Returns:
        One ``Conflict`` per (earlier, later, layer) with overlap above 1e-3.
    """
    interventions = check_interventions(interventions)
    found = []
    for j, later in enumerate(interventions):
        if later.kind == "add":
            continue
        for i, earlier in enumerate(interventions[:j]):
            if earlier.site != later.site:
                continue
            for layer in sorted(set(earlier.layers) & set(later.layers)):
                overlap = _overlap(earlier.bases[layer], later.bases[layer])
                if overlap > OVERLAP_TOLERANCE:
                    found.append(Conflict(i, j, layer, later.site, overlap))
    return found


def check_interventions(interventions: Any) -> list[Intervention]:
    """A list of ``sl.add`` / ``sl.ablate`` / ``sl.clamp`` results."""
    if isinstance(interventions, Intervention):
        interventions = [interventions]
    check_instance("interventions", interventions, (list, tuple), "a list of interventions")
    for index, intervention in enumerate(interventions):
        check_instance(
            f"interventions[{index}]", intervention, Intervention, "an sl.add/ablate/clamp result"
        )
    return list(interventions)


def warn_conflicts(interventions: Sequence[Intervention]) -> None:
    for conflict in find_conflicts(interventions):
        warnings.warn(str(conflict), SteeringConflictWarning, stacklevel=4)
