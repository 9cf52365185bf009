"""Coefficient sweeps: ``sweep`` runs prompts under ``x <- x + r · v[l]`` (or any family of
interventions ``r -> Intervention``) for many coefficients ``r``, through the sweep engine
(``steering.sweep``: the suffix replay, or the shared opening of few-shot prompts).

Only the final normalized residual ``h_L`` at each query's last token is kept: any logit is
``W_U h_L + b_U`` and is computed when a readout asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.hookpoints import check_site
from ..core.linalg import unit
from ..core.positions import position_rule
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import (
    check_array,
    check_bool,
    check_callable,
    check_model,
    check_texts,
    shown,
)
from ..core.vector import SteeringVector, as_vector
from ..steering.interventions import Intervention, add
from ..steering.sweep import SweepPlan, Variant, run_sweep
from .sweep_result import SweepResult


def check_coeffs(coeffs: Any, name: str = "coeffs") -> Float[Tensor, " n_coeffs"]:
    """A non-empty 1-D float64 tensor of distinct finite coefficients, in the order given."""
    if isinstance(coeffs, bool):
        raise SteerlensTypeError(f"{name}: expected a list of numbers, got {shown(coeffs)}")
    values = torch.from_numpy(check_array(name, coeffs))
    if values.ndim != 1:
        raise SteerlensError(
            f"{name}: expected a 1-D list of numbers, got shape {tuple(values.shape)}"
        )
    if values.numel() == 0:
        raise SteerlensError(f"{name}: expected at least one coefficient, got none")
    bad = values[~torch.isfinite(values)]
    if bad.numel():
        raise SteerlensError(f"{name}: every coefficient must be finite, got {bad.tolist()}")
    if values.unique().numel() != values.numel():
        raise SteerlensError(f"{name}: coefficients must be distinct, got {values.tolist()}")
    return values


def _unit_family(
    vector: SteeringVector, normalize: bool, positions: Any, site: str
) -> Callable[[float], Variant]:
    """``r -> sl.add(v, r)`` with each layer's direction scaled to unit norm if
    ``normalize``; ``r = 0`` is the unsteered model (``None``)."""
    if normalize:
        directions = {layer: unit(v, f"vector[{layer}]") for layer, v in vector.directions.items()}
        vector = SteeringVector(directions, site=vector.site, basis=vector.basis)

    def family(r: float) -> Variant:
        return None if r == 0 else add(vector, r, positions=positions, site=site)

    return family


def sweep(
    model: HookedModel,
    vector: SteeringVector | Tensor,
    coeffs: Sequence[float] | Tensor,
    prompts: Sequence[str],
    *,
    layers: int | Sequence[int] | None = None,
    positions: Any = "all",
    site: str | None = None,
    normalize: bool = True,
    batch_size: int = 16,
    max_rows: int = 64,
    share_opening: bool | None = None,
    progress: bool | None = None,
    family: Callable[[float], Intervention | None] | None = None,
) -> SweepResult:
    """Run ``prompts`` under ``x <- x + r · v[l]`` for every coefficient ``r`` in ``coeffs``
    (or under ``family(r)``, any intervention per coefficient).

    The residual before the first steered layer is computed once per batch of prompts; only
    the later blocks run per coefficient, ``max_rows // batch`` coefficients per pass (the
    sweep engine, ``steering.sweep``). The numbers equal a full forward under
    ``sl.steer(model, family(r))`` for each ``r``. Do not call it inside ``sl.steer``: it
    applies its own edits.

    Args:
        model: a TransformerLens model.
        vector: a ``SteeringVector`` or a ``[d_model]`` tensor (then give ``layers``).
        coeffs: distinct finite coefficients; 0 need not be included (the unsteered
            output, for ``delta``, comes free with the prefix pass).
        prompts: raw texts (chat-format them first); the readout is their next token.
        layers: a subset of the vector's layers (default: all of them).
        positions: which tokens are steered, as for ``sl.add`` (``"all"``, ``"prompt"`` or
            indices; nothing is generated, so ``"generated"`` selects nothing).
        site: residual site (default: the vector's).
        normalize: scale each layer's direction to unit norm (the paper's convention, so a
            coefficient is a length in the residual stream); ``False`` adds ``r · v[l]``.
        batch_size: prompts per prefix pass.
        max_rows: the most rows (prompts × coefficients) in one suffix pass (memory bound).
        share_opening: run the tokens all prompts open with once per coefficient, through the
            KV cache (``steering.sweep.shared_opening``; bridges, every token steered).
            ``None``: when that saves a quarter of the suffix replay's token-blocks;
            ``False``: never; ``True``: whenever possible (else a ``SteerlensError``).
        progress: show a progress bar (default: when there is more than one pass).
        family: ``r -> Intervention`` (``None``: unsteered) to sweep instead of adding the
            vector, e.g. ``lambda a: sl.clamp(vec, a)`` or ``lambda t: sl.steering.rotate(vec,
            t)``; ``layers``, ``positions``, ``site`` and ``normalize`` then do not apply.
            Default: ``sl.add`` of the (unit) vector, ``r = 0`` unsteered.

    Returns:
        A ``SweepResult`` with ``final``: ``[n_coeffs, n_prompts, d_model]``.

    Example:
        >>> res = sl.tradeoff.sweep(model, vec, torch.linspace(-80, 80, 17), prompts)
        >>> logits = res.logits(res.index(40.0))   # [n_prompts, d_vocab]
    """
    check_model(model)
    check_bool("progress", progress, none=True)
    vector = as_vector(vector, layers, site).select(layers)
    vector.check_model(model, additive=True)
    site = check_site(vector.site if site is None else site)
    values = check_coeffs(coeffs)
    prompts = check_texts("prompts", prompts)
    rule = position_rule(positions)
    check_bool("normalize", normalize)
    custom = family is not None
    if family is None:
        family = _unit_family(vector, normalize, rule, site)
    else:
        check_callable("family", family)
    variants = [_variant(family, float(r)) for r in values]
    plan = SweepPlan(tuple(variants), batch_size, max_rows, share_opening, progress)
    out = run_sweep(model, [encode(model, t, "prompts") for t in prompts], plan)
    if not bool(torch.isfinite(out.steered).all()):
        raise SteerlensError("model: produced NaN or inf residuals under steering")
    steered = [v for v in variants if v is not None]
    b_u = getattr(model, "b_U", None)
    return SweepResult(
        coeffs=values,
        final=out.steered,
        base=out.base,
        prompts=tuple(prompts),
        layers=tuple(steered[0].layers if steered else vector.layers),
        site=steered[0].site if steered else site,
        normalized=bool(normalize) and not custom,
        W_U=model.W_U.detach(),
        b_U=None if b_u is None else b_u.detach(),
    )


def _variant(family: Callable[[float], Variant], r: float) -> Variant:
    """``family(r)``, checked: an intervention, or ``None`` for the unsteered model."""
    variant = family(r)
    if variant is not None and not isinstance(variant, Intervention):
        raise SteerlensTypeError(
            f"family: expected family({r:g}) to return an Intervention or None, got "
            f"{shown(variant)}"
        )
    return variant
