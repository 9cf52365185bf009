"""Residual-stream interventions (add, ablate, clamp) and the ``steer`` context manager.

With ``x`` the residual at one position and ``u = d / |d|`` (DESIGN section 3):

- add:    ``x <- x + c d``
- ablate: ``x <- x - (x . u) u``; rank-k: ``x <- x - Q Q^T x``, ``Q`` an orthonormal basis
- clamp:  ``x <- x - (x . u) u + a u``
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ._errors import SteerlensError
from ._hooks import check_model, check_site, hook_point
from ._positions import PositionRule, PositionTracker, position_rule
from ._vectors import SteeringVector, as_vector


@dataclass(frozen=True, eq=False)
class Intervention:
    """Edit of the residual stream at ``site`` of ``layers``, at ``positions``.

    ``bases[layer]`` is ``[k, d_model]``: one row (the direction, as given) for add and clamp,
    an orthonormal basis for ablate.
    """

    kind: str
    bases: dict[int, Tensor]
    site: str
    positions: PositionRule
    coeff: float = 1.0
    value: float = 0.0

    @property
    def layers(self) -> list[int]:
        return sorted(self.bases)

    def __repr__(self) -> str:
        what = {"add": f"coeff={self.coeff:g}", "clamp": f"value={self.value:g}"}.get(
            self.kind, f"rank={next(iter(self.bases.values())).shape[0]}"
        )
        return (
            f"{self.kind}({what}) at blocks.{{{','.join(map(str, self.layers))}}}"
            f".hook_{self.site}, {self.positions}"
        )

    def edit(self, x: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        """The edited residual (all positions; the hook keeps only the selected ones)."""
        basis = self.bases[layer].to(device=x.device, dtype=x.dtype)
        if self.kind == "add":
            return x + self.coeff * basis[0]
        coords = x @ basis.T  # [..., k]
        removed = x - coords @ basis
        if self.kind == "ablate":
            return removed
        return removed + self.value * basis[0]


def _check_number(name: str, number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise SteerlensError(f"{name}: expected a number, got {number!r}")
    if not math.isfinite(number):
        raise SteerlensError(f"{name}: expected a finite number, got {number!r}")
    return float(number)


def _select_layers(vector: SteeringVector, layers: Any) -> list[int]:
    if layers is None:
        return vector.layers
    layers = [layers] if isinstance(layers, int) else list(layers)
    missing = [layer for layer in layers if layer not in vector.directions]
    if missing or not layers:
        raise SteerlensError(f"layers: {layers} must be a non-empty subset of {vector.layers}")
    return sorted(set(layers))


def _unit_rows(vector: SteeringVector, layers: list[int]) -> dict[int, Tensor]:
    zero = [layer for layer in layers if float(vector[layer].norm()) == 0.0]
    if zero:
        raise SteerlensError(f"vector: zero at layers {zero}; a zero vector has no direction")
    return {layer: (vector[layer] / vector[layer].norm())[None, :] for layer in layers}


def add(
    vector: SteeringVector | Tensor,
    coeff: float = 1.0,
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
) -> Intervention:
    """``x <- x + coeff * vector[l]`` at each layer ``l`` (the vector is not normalised).

    Args:
        vector: a ``SteeringVector``, or a ``[d_model]`` tensor together with ``layers``.
        coeff: the multiplier ``c``.
        layers: a subset of the vector's layers (default: all of them).
        positions: ``"all"``, ``"prompt"``, ``"generated"``, indices, or a boolean mask.
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).
    """
    vector = as_vector(vector, layers, site)
    chosen = _select_layers(vector, layers)
    return Intervention(
        "add",
        {layer: vector[layer][None, :] for layer in chosen},
        check_site(site or vector.site),
        position_rule(positions),
        coeff=_check_number("coeff", coeff),
    )


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
        layers: a subset of the vector's layers (default: all of them).
        positions: ``"all"``, ``"prompt"``, ``"generated"``, indices, or a boolean mask.
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).
    """
    if isinstance(vector, Tensor) and vector.ndim == 2:
        vectors = [as_vector(row, layers, site) for row in vector]
    elif isinstance(vector, (list, tuple)):
        vectors = [as_vector(v, layers, site) for v in vector]
    else:
        vectors = [as_vector(vector, layers, site)]
    if not vectors:
        raise SteerlensError("vector: expected at least one direction to ablate")
    chosen = _select_layers(vectors[0], layers)
    bases = {}
    for layer in chosen:
        rows = torch.stack([_unit_rows(v, [layer])[layer][0] for v in vectors])
        q, r = torch.linalg.qr(rows.T.double())
        if bool((r.diagonal().abs() < 1e-6).any()):
            raise SteerlensError(
                f"vector: the {len(vectors)} directions at layer {layer} are linearly dependent"
            )
        bases[layer] = q.T.float()
    return Intervention(
        "ablate", bases, check_site(site or vectors[0].site), position_rule(positions)
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
        layers: a subset of the vector's layers (default: all of them).
        positions: ``"all"``, ``"prompt"``, ``"generated"``, indices, or a boolean mask.
        site: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (default: the vector's site).
    """
    vector = as_vector(vector, layers, site)
    chosen = _select_layers(vector, layers)
    return Intervention(
        "clamp",
        _unit_rows(vector, chosen),
        check_site(site or vector.site),
        position_rule(positions),
        value=_check_number("value", value),
    )


def _make_hook(intervention: Intervention, layer: int, tracker: PositionTracker):
    def hook(_module: Any, _inputs: Any, output: Tensor) -> Tensor:
        if not isinstance(output, Tensor) or output.ndim != 3:
            raise SteerlensError(
                f"steer: expected a [batch, pos, d_model] residual at layer {layer}, got "
                f"{getattr(output, 'shape', type(output))}"
            )
        where = tracker.positions(output.shape[0], output.shape[1], output.device)
        selected = intervention.positions.select(where)
        if not bool(selected.any()):
            return output
        edited = intervention.edit(output, layer)
        if bool(selected.all()):
            return edited
        return torch.where(selected[..., None], edited, output)

    return hook


def check_intervention(model: Any, intervention: Intervention) -> None:
    """Raise unless every layer/site exists and the directions fit ``d_model``."""
    if not isinstance(intervention, Intervention):
        raise SteerlensError(
            f"interventions: expected sl.add/sl.ablate/sl.clamp results, got {intervention!r}"
        )
    for layer, basis in intervention.bases.items():
        hook_point(model, layer, intervention.site)
        if basis.shape[-1] != model.cfg.d_model:
            raise SteerlensError(
                f"vector: d_model {basis.shape[-1]} does not match the model's {model.cfg.d_model}"
            )


@contextmanager
def steer(model: Any, *interventions: Intervention) -> Iterator[list[Intervention]]:
    """Apply interventions inside a ``with`` block; hooks are removed on exit, always.

    Works for forward passes, ``run_with_cache`` (the cache sees the steered residual) and
    ``generate`` (positions are absolute, so the KV cache and left padding do not change
    which tokens are steered). Several interventions at one site apply in the order given;
    a ``SteeringConflictWarning`` says when a later ablate or clamp removes part of an
    earlier intervention's direction (``sl.find_conflicts`` lists them).

    Example:
        >>> with sl.steer(model, sl.add(vec, coeff=4.0)):
        ...     out = sl.generate(model, "How do I bake bread?", max_new_tokens=30)
    """
    check_model(model)
    if not interventions:
        raise SteerlensError("interventions: expected at least one (sl.add/ablate/clamp)")
    for intervention in interventions:
        check_intervention(model, intervention)
    from ._conflicts import warn_conflicts

    warn_conflicts(interventions)
    tracker = PositionTracker(model)
    handles = []
    try:
        for intervention in interventions:
            for layer in intervention.layers:
                point = hook_point(model, layer, intervention.site)
                handles.append(
                    point.register_forward_hook(_make_hook(intervention, layer, tracker))
                )
        yield list(interventions)
    finally:
        for handle in handles:
            handle.remove()
        tracker.remove()
