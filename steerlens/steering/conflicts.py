"""Conflicts between interventions: a later edit discarding what an earlier one did.

At one hook point, interventions apply in the order given. Two additions always commute,
but an ablation, a clamp or a rotation discards the component of the residual along some
directions (``Intervention.removes``), including whatever an earlier intervention at the
same point did along them (``Intervention.touches``). ``find_conflicts`` reports each such
pair with how much of the earlier direction is removed (the norm of its unit vector
projected onto the later intervention's removed span, between 0 and 1); ``sl.steer`` warns
about them. A kind that does not say what it touches or removes is never reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..core.errors import SteerlensTypeError
from ..core.validate import check_instance
from .interventions import EXPECTED, Intervention

OVERLAP_TOLERANCE = 1e-3


class SteeringConflictWarning(UserWarning):
    """A later intervention at the same hook point undoes part of an earlier one."""


@dataclass(frozen=True)
class Conflict:
    """``later`` removes ``overlap`` of ``earlier``'s direction at ``layer``."""

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


def _overlap(earlier: torch.Tensor, removed: torch.Tensor) -> float:
    """Largest fraction of a unit row of ``earlier`` inside the span of orthonormal
    ``removed`` rows."""
    earlier, removed = earlier.float().cpu(), removed.float().cpu()
    units = earlier / earlier.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return float((units @ removed.T).norm(dim=-1).max())


def find_conflicts(interventions: Sequence[Intervention] | Intervention) -> list[Conflict]:
    """Pairs where a later intervention removes part of an earlier one's direction.

    Args:
        interventions: a list, in the order they would be passed to ``sl.steer``.

    Returns:
        One ``Conflict`` per (earlier, later, layer) with overlap above 1e-3.

    Example:
        >>> sl.steering.find_conflicts([sl.add(vec, 4.0), sl.ablate(vec)])[0].overlap
        1.0
    """
    if isinstance(interventions, Intervention):
        raise SteerlensTypeError(
            "interventions: expected a list, in the order given to sl.steer, got one "
            f"intervention ({interventions!r}); a conflict needs two: find_conflicts([a, b])"
        )
    interventions = check_interventions(interventions)
    found = []
    for j, later in enumerate(interventions):
        for layer in later.layers:
            removed = later.removes(layer)
            if removed is None:
                continue
            for i, earlier in enumerate(interventions[:j]):
                touched = earlier.touches(layer) if layer in earlier.layers else None
                if earlier.site != later.site or touched is None:
                    continue
                overlap = _overlap(touched, removed)
                if overlap > OVERLAP_TOLERANCE:
                    found.append(Conflict(i, j, layer, later.site, overlap))
    return sorted(found, key=lambda c: (c.later, c.earlier, c.layer))


def check_interventions(interventions: Any) -> list[Intervention]:
    """A list of ``Intervention`` objects (``sl.add``, ``sl.ablate``, ..., or your own)."""
    check_instance("interventions", interventions, (list, tuple), "a list of interventions")
    for index, intervention in enumerate(interventions):
        check_instance(
            f"interventions[{index}]",
            intervention,
            Intervention,
            EXPECTED,
        )
    return list(interventions)


def warn_conflicts(interventions: Sequence[Intervention]) -> None:
    for conflict in find_conflicts(interventions):
        warnings.warn(str(conflict), SteeringConflictWarning, stacklevel=4)
