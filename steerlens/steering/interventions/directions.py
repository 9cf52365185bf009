"""The shipped kinds' common part: per-layer direction rows read from a ``SteeringVector``."""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ...core.basis import is_centred
from ...core.errors import SteerlensError
from ...core.hookpoints import check_site
from ...core.linalg import unit
from ...core.vector import SteeringVector, as_vector
from .base import Intervention


class DirectionEdit(Intervention):
    """An edit defined by ``rows[layer]``: ``[k, d_model]`` directions read in ``basis``."""

    def __init__(self, rows: dict[int, Tensor], *, basis: str, site: str, positions: Any) -> None:
        super().__init__(layers=list(rows), site=site, positions=positions)
        self.rows = rows
        self.basis = basis

    @property
    def d_model(self) -> int:
        return next(iter(self.rows.values())).shape[-1]

    def touches(self, layer: int) -> Float[Tensor, "k d_model"]:
        return self.rows[layer]

    def rows_on(self, layer: int, device: torch.device) -> Float[Tensor, "k d_model"]:
        """``rows[layer]`` in float32 on ``device`` (copied there once)."""
        return self.on_device(layer, self.rows[layer], device)

    def centred(self) -> bool:
        """Every row has zero mean over ``d_model`` (``core.basis``)."""
        return all(is_centred(row) for rows in self.rows.values() for row in rows)


def chosen(vector: Any, layers: Any, site: str | None) -> tuple[SteeringVector, str]:
    """``(vector on the chosen layers, the site to edit)`` for a kind's factory."""
    picked = as_vector(vector, layers, site).select(layers)
    return picked, check_site(picked.site if site is None else site)


def unit_rows(vector: SteeringVector) -> dict[int, Tensor]:
    """Each layer's unit direction as a ``[1, d_model]`` row (zero vectors refused)."""
    return {layer: unit(vector[layer], f"vector[{layer}]")[None, :] for layer in vector.layers}


def span_rows(rows: list[Float[Tensor, " d_model"]], what: str) -> Float[Tensor, "k d_model"]:
    """An orthonormal basis ``[k, d_model]`` of ``rows``' span, in their order (Gram-Schmidt
    by QR); linearly dependent rows raise, naming ``what``."""
    units = torch.stack([unit(row, what) for row in rows])
    q, r = torch.linalg.qr(units.T.double())
    if bool((r.diagonal().abs() < 1e-6).any()):
        raise SteerlensError(f"{what}: the {len(rows)} directions are linearly dependent")
    signs = torch.sign(r.diagonal())  # keep each basis row on its direction's side
    return (q * signs).T.float()
