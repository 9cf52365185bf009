"""Clamping: ``x <- x - (x . u) u + a u`` (the projection on ``u`` set to ``a``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ...core.validate import check_number
from ...core.vector import SteeringVector
from .directions import DirectionEdit, chosen, unit_rows


class Clamp(DirectionEdit):
    """``x <- x - (x . u) u + value u`` with ``u = rows[layer][0]`` (unit norm)."""

    def __init__(self, rows: dict[int, Tensor], value: float, **where: Any) -> None:
        super().__init__(rows, **where)
        self.value = value

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        u = self.rows_on(layer, x.device)[0]
        return x + (self.value - x @ u)[..., None] * u

    def removes(self, layer: int) -> Float[Tensor, "k d_model"]:
        return self.rows[layer]

    def basis_invariant(self) -> bool:
        return self.centred()

    def describe(self) -> str:
        return f"clamp(value={self.value:g})"


def clamp(
    vector: SteeringVector | Tensor,
    value: float = 0.0,
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Clamp:
    """Set the projection on ``u = vector[l] / |vector[l]|`` to ``value`` at each layer.

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        value: the projection ``a`` after the edit (``x . u = a``).
        layers, positions, site: as for ``sl.add``.

    Example:
        >>> with sl.steer(model, sl.clamp(vec, value=2.0)):
        ...     reply = sl.generate(model, "How do I bake bread?", max_new_tokens=8)
    """
    picked, site = chosen(vector, layers, site)
    return Clamp(
        unit_rows(picked),
        check_number("value", value),
        basis=picked.basis,
        site=site,
        positions=positions,
    )
