"""Angular steering (Vu & Nguyen, arXiv 2510.26243): turn the residual to an angle from ``u``.

In a plane ``P = span(u, b)``, the residual's component ``x_P`` keeps its norm and is turned
to angle ``θ`` from ``u``, towards ``b``: ``x <- x - x_P + |x_P| (cos θ u + sin θ b̂)``, with
``b̂`` the unit part of ``b`` orthogonal to ``u``. Without a fixed plane, ``b`` is each
residual's own component orthogonal to ``u``, so ``x_P = x``: the whole residual keeps its
norm and its angle to ``u`` becomes ``θ``, ``x <- |x| (cos θ u + sin θ x⊥ / |x⊥|)``.
``θ = 90°`` is then a norm-preserving ablation; ``θ = 0°`` turns every residual onto ``u``.
The paper rotates in a fixed plane (``u`` and a second direction from its data); both are
offered. A residual with no component off ``u`` (``x⊥ = 0``) has no plane: it becomes
``|x| cos θ u``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ...core.errors import SteerlensError
from ...core.validate import check_number
from ...core.vector import SteeringVector, as_vector
from .directions import DirectionEdit, chosen, span_rows, unit_rows


class Rotate(DirectionEdit):
    """Turn the residual (or its component in a fixed plane) to ``degrees`` from ``u``.

    ``rows[layer]`` is ``[u]`` (the plane follows each residual) or ``[u, b̂]`` (a fixed
    plane, orthonormal rows).
    """

    def __init__(self, rows: dict[int, Tensor], degrees: float, **where: Any) -> None:
        super().__init__(rows, **where)
        self.degrees = degrees

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        rows = self.rows_on(layer, x.device)
        u = rows[0]
        along = x @ u  # [...]
        if rows.shape[0] == 2:
            b = rows[1]
            in_plane = along[..., None] * u + (x @ b)[..., None] * b
        else:
            off = x - along[..., None] * u
            b = off / off.norm(dim=-1, keepdim=True).clamp_min(1e-30)
            in_plane = x
        radius = in_plane.norm(dim=-1, keepdim=True)
        theta = math.radians(self.degrees)
        return x - in_plane + radius * (math.cos(theta) * u + math.sin(theta) * b)

    def removes(self, layer: int) -> Float[Tensor, "k d_model"]:
        return self.rows[layer]  # the component along u (and b̂) is rewritten

    def basis_invariant(self) -> bool:
        # a fixed plane reads projections only; the residual's own plane reads |x|
        return self.rows[self.layers[0]].shape[0] == 2 and self.centred()

    def describe(self) -> str:
        plane = ", fixed plane" if self.rows[self.layers[0]].shape[0] == 2 else ""
        return f"rotate(degrees={self.degrees:g}{plane})"


def rotate(
    vector: SteeringVector | Tensor,
    degrees: float,
    *,
    plane: SteeringVector | Tensor | None = None,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Rotate:
    """Angular steering: set the residual's angle to ``u = vector[l] / |vector[l]|``.

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        degrees: the angle ``θ`` from ``u`` after the edit (``90``: a norm-preserving
            ablation; ``0``: onto ``u``; above 90: away from it).
        plane: a second direction ``b`` (``SteeringVector`` with the same layers, or a
            ``[d_model]`` tensor): rotate only the component in ``span(u, b)``, towards
            ``b``. Default: each residual's own plane with ``u`` (its norm is kept).
        layers, positions, site: as for ``sl.add``.

    Example:
        >>> with sl.steer(model, sl.steering.rotate(vec, 60.0)):
        ...     reply = sl.generate(model, "How do I bake bread?", max_new_tokens=8)
    """
    degrees = check_number("degrees", degrees, low=-360, high=360)
    picked, site = chosen(vector, layers, site)
    if plane is None:
        rows = unit_rows(picked)
    else:
        second = as_vector(plane, picked.layers, site, "plane").select(picked.layers)
        if second.d_model != picked.d_model:
            raise SteerlensError(
                f"plane: d_model {second.d_model} does not match the vector's {picked.d_model}"
            )
        if isinstance(plane, SteeringVector) and plane.basis != picked.basis:
            raise SteerlensError(
                f"plane: read in the {plane.basis!r} residual basis, the vector in {picked.basis!r}"
            )
        rows = {
            layer: span_rows([picked[layer], second[layer]], f"vector and plane at layer {layer}")
            for layer in picked.layers
        }
    return Rotate(rows, degrees, basis=picked.basis, site=site, positions=positions)
