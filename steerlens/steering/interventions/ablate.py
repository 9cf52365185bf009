"""Directional ablation: ``x <- x - (x . u) u``; rank-k: ``x <- x - Q Q^T x``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ...core.errors import SteerlensError
from ...core.vector import SteeringVector
from .directions import DirectionEdit, chosen, span_rows


class Ablate(DirectionEdit):
    """``x <- x - Q Q^T x`` with ``Q = rows[layer]`` an orthonormal ``[k, d_model]`` basis."""

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        q = self.rows_on(layer, x.device)
        return x - (x @ q.T) @ q  # coordinates [..., k] times the basis

    def removes(self, layer: int) -> Float[Tensor, "k d_model"]:
        return self.rows[layer]

    def basis_invariant(self) -> bool:
        return self.centred()

    def describe(self) -> str:
        return f"ablate(rank={next(iter(self.rows.values())).shape[0]})"


def _vectors(vector: Any, layers: Any, site: str | None) -> tuple[list[SteeringVector], str]:
    """The directions ``ablate`` spans (one vector, a list of them, or tensor rows), on the
    chosen layers, and the site."""
    if isinstance(vector, Tensor) and vector.ndim == 2:
        vector = list(vector)
    many = vector if isinstance(vector, (list, tuple)) else [vector]
    if not many:
        raise SteerlensError("vector: expected at least one direction to ablate")
    picked = [chosen(v, layers, site) for v in many]
    vectors = [v for v, _ in picked]
    for what, values in (
        ("d_model", {v.d_model for v in vectors}),
        ("residual basis", {v.basis for v in vectors}),
    ):
        if len(values) > 1:
            raise SteerlensError(
                f"vector: the directions to ablate disagree on {what}: {sorted(values)}"
            )
    return vectors, picked[0][1]


def ablate(
    vector: SteeringVector | Tensor | Sequence[SteeringVector],
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Ablate:
    """Project out a direction (or the span of several: rank-k) at each layer.

    Args:
        vector: a ``SteeringVector``, a list of them (rank-k ablation of their span at each
            layer), a ``[d_model]`` tensor or a ``[k, d_model]`` tensor with ``layers``.
        layers, positions, site: as for ``sl.add``.

    Example:
        >>> with sl.steer(model, sl.ablate(vec)):
        ...     reply = sl.generate(model, "How do I bake bread?", max_new_tokens=8)
    """
    vectors, site = _vectors(vector, layers, site)
    rows = {}
    for layer in vectors[0].layers:
        missing = [i for i, v in enumerate(vectors) if layer not in v.directions]
        if missing:
            raise SteerlensError(f"vector: direction {missing[0]} has no layer {layer}")
        rows[layer] = span_rows([v[layer] for v in vectors], f"vector[{layer}]")
    return Ablate(rows, basis=vectors[0].basis, site=site, positions=positions)
