"""Addition: ``x <- x + c d``; norm-preserving: ``x <- (x + c d) |x| / |x + c d|``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ...core.validate import check_bool, check_number
from ...core.vector import SteeringVector
from .directions import DirectionEdit, chosen


class Add(DirectionEdit):
    """``x <- x + coeff * d`` (``d`` as given, not normalized); with ``preserve_norm``, the
    sum is rescaled to the norm ``x`` had (vllm-lens's ``norm_match``)."""

    def __init__(
        self, rows: dict[int, Tensor], coeff: float, preserve_norm: bool, **where: Any
    ) -> None:
        super().__init__(rows, **where)
        self.coeff = coeff
        self.preserve_norm = preserve_norm

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        moved = x + self.coeff * self.rows_on(layer, x.device)[0]
        if not self.preserve_norm:
            return moved
        scale = x.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        return moved * scale

    def basis_invariant(self) -> bool:
        return not self.preserve_norm  # |x| needs the mean a centred residual has lost

    def describe(self) -> str:
        norm = ", preserve_norm" if self.preserve_norm else ""
        return f"add(coeff={self.coeff:g}{norm})"


def add(
    vector: SteeringVector | Tensor,
    coeff: float = 1.0,
    *,
    preserve_norm: bool = False,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Add:
    """``x <- x + coeff * vector[l]`` at each layer ``l`` (the vector is not normalized).

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        coeff: the multiplier ``c``.
        preserve_norm: rescale the sum to ``x``'s norm: ``x <- (x + c d) |x| / |x + c d|``
            (only the direction of each residual changes).
        layers: a subset of the vector's layers (default: all of them).
        positions: ``"all"``, ``"prompt"``, ``"generated"``, a chat role (``"instruction"``,
            ``"post_instruction"``, ``"response"``), indices, or a boolean mask.
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).

    Example:
        >>> with sl.steer(model, sl.add(vec, 4.0, positions="generated")):
        ...     reply = sl.generate(model, "How do I bake bread?", max_new_tokens=8)
    """
    picked, site = chosen(vector, layers, site)
    rows = {layer: picked[layer][None, :] for layer in picked.layers}
    return Add(
        rows,
        check_number("coeff", coeff),
        check_bool("preserve_norm", preserve_norm),
        basis=picked.basis,
        site=site,
        positions=positions,
    )
