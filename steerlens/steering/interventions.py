"""Residual-stream interventions: add, ablate, clamp (what to do, not yet where it is hooked).

With ``x`` the residual at one position and ``u = d / |d|``:

- add:    ``x <- x + c d``
- ablate: ``x <- x - (x . u) u``; rank-k: ``x <- x - Q Q^T x``, ``Q`` an orthonormal basis
- clamp:  ``x <- x - (x . u) u + a u``

``sl.steer`` (``steering.context``) hooks them into a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.hookpoints import check_site
from ..core.linalg import unit
from ..core.positions import PositionRule, position_rule
from ..core.validate import check_number
from ..core.vector import SteeringVector, as_vector

KINDS = ("add", "ablate", "clamp")


@dataclass(frozen=True, eq=False)
class Intervention:
    """Edit of the residual stream at ``site`` of ``layers``, at ``positions``.

    ``bases[layer]`` is ``[k, d_model]``: one row (the direction, as given) for add and clamp,
    an orthonormal basis for ablate; ``basis`` is the residual basis they were read in
    (``core.basis``).
    """

    kind: str
    bases: dict[int, Tensor]
    site: str
    positions: PositionRule
    coeff: float = 1.0
    value: float = 0.0
    basis: str = "plain"
    _on_device: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def layers(self) -> list[int]:
        return sorted(self.bases)

    @property
    def d_model(self) -> int:
        return next(iter(self.bases.values())).shape[-1]

    def __repr__(self) -> str:
        what = {"add": f"coeff={self.coeff:g}", "clamp": f"value={self.value:g}"}.get(
            self.kind, f"rank={next(iter(self.bases.values())).shape[0]}"
        )
        return (
            f"{self.kind}({what}) at blocks.{{{','.join(map(str, self.layers))}}}"
            f".hook_{self.site}, {self.positions}"
        )

    def directions_on(self, layer: int, device: torch.device) -> Float[Tensor, "k d_model"]:
        """``bases[layer]`` in float32 on ``device``, copied there once per device."""
        key = (layer, str(device))
        if key not in self._on_device:
            self._on_device[key] = self.bases[layer].to(device=device, dtype=torch.float32)
        return self._on_device[key]

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        """The edited residual (all positions; the hook keeps only the selected ones),
        computed in float32 and cast back to ``x``'s dtype (bf16 / fp16 models)."""
        basis = self.directions_on(layer, x.device)
        y = x.float()
        if self.kind == "add":
            return (y + self.coeff * basis[0]).to(x.dtype)
        removed = y - (y @ basis.T) @ basis  # coordinates [..., k] times the basis
        if self.kind == "clamp":
            removed = removed + self.value * basis[0]
        return removed.to(x.dtype)


def add(
    vector: SteeringVector | Tensor,
    coeff: float = 1.0,
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Intervention:
    """``x <- x + coeff * vector[l]`` at each layer ``l`` (the vector is not normalized).

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        coeff: the multiplier ``c``.
        layers: a subset of the vector's layers (default: all of them).
        positions: ``"all"``, ``"prompt"``, ``"generated"``, a chat role (``"instruction"``,
            ``"post_instruction"``, ``"response"``), indices, or a boolean mask.
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).
    """
    chosen = as_vector(vector, layers, site).select(layers)
    return Intervention(
        "add",
        {layer: chosen[layer][None, :] for layer in chosen.layers},
        check_site(chosen.site if site is None else site),
        position_rule(positions),
        coeff=check_number("coeff", coeff),
        basis=chosen.basis,
    )


def _vectors(vector: Any, layers: Any, site: str | None) -> list[SteeringVector]:
    """The directions ``ablate`` spans: one vector, a list of them, or tensor rows."""
    if isinstance(vector, Tensor) and vector.ndim == 2:
        vectors = [as_vector(row, layers, site) for row in vector]
    elif isinstance(vector, (list, tuple)):
        vectors = [as_vector(v, layers, site) for v in vector]
    else:
        vectors = [as_vector(vector, layers, site)]
    if not vectors:
        raise SteerlensError("vector: expected at least one direction to ablate")
    sizes = sorted({v.d_model for v in vectors})
    if len(sizes) > 1:
        raise SteerlensError(f"vector: the directions to ablate disagree on d_model: {sizes}")
    bases = sorted({v.basis for v in vectors})
    if len(bases) > 1:
        raise SteerlensError(
            f"vector: the directions to ablate disagree on residual basis: {bases}"
        )
    return [v.select(layers) for v in vectors]


def _orthonormal(vectors: list[SteeringVector], layer: int) -> Tensor:
    """``[k, d_model]`` orthonormal basis of the vectors' span at ``layer``."""
    missing = [i for i, v in enumerate(vectors) if layer not in v.directions]
    if missing:
        raise SteerlensError(f"vector: direction {missing[0]} has no layer {layer}")
    rows = torch.stack([unit(v[layer], f"vector[{layer}]") for v in vectors])
    q, r = torch.linalg.qr(rows.T.double())
    if bool((r.diagonal().abs() < 1e-6).any()):
        raise SteerlensError(
            f"vector: the {len(vectors)} directions at layer {layer} are linearly dependent"
        )
    return q.T.float()


def ablate(
    vector: SteeringVector | Tensor | Sequence[SteeringVector],
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Intervention:
    """Project out a direction (or the span of several: rank-k) at each layer.

    Args:
        vector: a ``SteeringVector``, a list of them (rank-k ablation of their span at each
            layer), a ``[d_model]`` tensor or a ``[k, d_model]`` tensor with ``layers``.
        layers, positions, site: as for ``add``.
    """
    vectors = _vectors(vector, layers, site)
    bases = {layer: _orthonormal(vectors, layer) for layer in vectors[0].layers}
    return Intervention(
        "ablate",
        bases,
        check_site(vectors[0].site if site is None else site),
        position_rule(positions),
        basis=vectors[0].basis,
    )


def clamp(
    vector: SteeringVector | Tensor,
    value: float = 0.0,
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Intervention:
    """Set the projection on ``u = vector[l] / |vector[l]|`` to ``value`` at each layer.

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        value: the projection ``a`` after the edit (``x . u = a``).
        layers, positions, site: as for ``add``.
    """
    chosen = as_vector(vector, layers, site).select(layers)
    return Intervention(
        "clamp",
        {layer: unit(chosen[layer], f"vector[{layer}]")[None, :] for layer in chosen.layers},
        check_site(chosen.site if site is None else site),
        position_rule(positions),
        value=check_number("value", value),
        basis=chosen.basis,
    )
