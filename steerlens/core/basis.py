"""Residual bases: which coordinates a model's residual stream is in, and when a vector read
in one basis applies exactly in another.

TransformerLens's weight processing (a bridge's ``enable_compatibility_mode()``, a classic
``HookedTransformer.from_pretrained``) has four steps; only one changes the residual stream
that ``hook_resid_pre/mid/post`` see:

- ``fold_ln`` folds the norms' gains (and LayerNorm biases) into the weights that read them:
  the residual is unchanged, only the norm's output is.
- ``center_unembed`` and ``fold_value_biases`` change the logits by a constant per position
  and move a bias: the residual is unchanged.
- ``center_writing_weights`` (LayerNorm models only; TransformerLens skips it for RMSNorm)
  centres every weight that writes to the residual, so the residual becomes the plain one
  minus its mean over ``d_model``: ``r' = P r`` with ``P = I - 1 1^T / d_model``.

So there are two bases, ``"plain"`` (the Hugging Face residual) and ``"centred"``. Every
reader of a centred model's residual is a LayerNorm, which ignores the mean; hence

- adding ``c d`` is the same intervention in both bases, for any ``d``;
- ablating, clamping or projecting on a direction ``u`` is the same in both bases when ``u``
  has zero mean (``r . u = P r . u``), and cannot be converted otherwise: ``r . u`` needs the
  mean of ``r``, which a centred model does not carry. That case raises.

A vector read on a centred model has zero mean (up to rounding), so it works everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from .errors import SteerlensError
from .forward import is_bridge
from .validate import check_choice

BASES = ("plain", "centred")
#: |mean component| / |direction| below which a direction counts as centred
CENTRED_TOLERANCE = 1e-4
#: max over embedding rows of |row mean| / row RMS below which the writing weights are centred
_EMBED_TOLERANCE = 1e-3


def residual_basis(model: Any) -> str:
    """``"centred"`` if ``model``'s writing weights are centred (checked on the embedding
    matrix, which TransformerLens centres with the rest), else ``"plain"``."""
    if is_bridge(model) and not getattr(model, "_weights_processed", False):
        return "plain"
    weight = getattr(model, "W_E", None)
    if not isinstance(weight, Tensor) or weight.is_meta or weight.ndim != 2:
        return "plain"
    with torch.no_grad():
        rows = weight.detach().float()
        rms = rows.pow(2).mean(-1).sqrt().clamp(min=torch.finfo(torch.float32).tiny)
        ratio = (rows.mean(-1).abs() / rms).max()
    return "centred" if float(ratio) < _EMBED_TOLERANCE else "plain"


def is_centred(direction: Tensor) -> bool:
    """True if the mean component of ``[d_model]`` ``direction`` is negligible."""
    direction = direction.float()
    mean_part = direction.mean() * direction.numel() ** 0.5  # norm of the mean component
    return bool(mean_part.abs() <= CENTRED_TOLERANCE * direction.norm())


def all_centred(directions: Iterable[Tensor]) -> bool:
    """Whether every direction has zero mean over ``d_model`` (so projecting on it is the
    same in both bases)."""
    return all(is_centred(direction) for direction in directions)


def check_basis(basis: str | None, model: Any, *, exact_across_bases: bool, what: str) -> None:
    """Raise unless ``what`` (an edit or a reading), built from directions read in ``basis``,
    applies exactly to ``model``: the model's residual is in that basis, the caller knows its
    ``what`` is the same in both (``exact_across_bases``), or ``basis`` is ``None`` (not tied
    to a basis). See the module docstring."""
    if basis is None:
        return
    check_choice("basis", basis, BASES)
    target = residual_basis(model)
    if basis == target or exact_across_bases:
        return
    raise SteerlensError(
        f"vector: read in the {basis!r} residual basis, but this model's residual stream is "
        f"{target!r} ({_why(target)}). {what} depends on the residual's mean over d_model, "
        "which the centred residual has lost, so it cannot be converted. Exact across bases "
        "are: adding a vector, and ablating, clamping or projecting on zero-mean directions. "
        "Read the vector on this model (e.g. sl.mean_difference(model, ...)), or load both "
        "models the same way (sl.load_model(..., compatibility_mode=...))."
    )


def _why(basis: str) -> str:
    if basis == "centred":
        return "centred writing weights: the plain residual minus its mean over d_model"
    return "the plain Hugging Face residual"
