"""Coefficient sweeps: one prefix pass per batch of queries, then only the steered suffix.

Adding ``r · v`` at layer ``l`` leaves blocks ``0..l-1`` unchanged, so a sweep over many
coefficients computes the residual entering the first steered block once
(``core.suffix``) and re-runs blocks ``l..L-1`` per coefficient, several coefficients per
pass (the prefix is tiled along the batch). Later steered layers are added by hooks with
one coefficient per row. Only the final normalized residual ``h_L`` at each query's last
token is kept: any logit is ``W_U h_L + b_U`` and is computed when a readout asks for it.
Prompts that open with the same tokens (few-shot prompts) can instead share that opening
across prompts (``tradeoff.shared_opening``); ``sweep`` does when that saves enough.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.batching import PaddedBatch, padded_batches
from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.hookpoints import attached, check_site, d_model, edit_hooks
from ..core.linalg import unit
from ..core.positions import Positions, position_rule
from ..core.suffix import Prefix, compute_prefix, run_suffix
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import check_array, check_bool, check_int, check_model, check_texts, shown
from ..core.vector import SteeringVector, as_vector
from .shared_opening import shared_sweep, worth_sharing
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


def _directions(vector: SteeringVector, normalize: bool) -> dict[int, Tensor]:
    """Each layer's direction, scaled to unit norm if ``normalize``."""
    if not normalize:
        return dict(vector.directions)
    return {layer: unit(v, f"vector[{layer}]") for layer, v in vector.directions.items()}


class _RowCoefficients:
    """Hooks adding ``coeff_row · direction`` at the selected positions of each row, for the
    steered layers after the first (the first is added to the prefix residual directly)."""

    def __init__(self) -> None:
        self.rows: Tensor | None = None  # [rows] coefficient of each row
        self.select: Tensor | None = None  # [rows, pos] steered tokens

    def hook(self, direction: Tensor):
        def add(resid: Tensor, **_: Any) -> Tensor:
            if self.rows is None:  # the prefix pass: nothing is steered there
                return resid
            if resid.shape[:2] != self.select.shape:
                raise SteerlensError(
                    f"sweep: expected a residual of shape {tuple(self.select.shape)} + "
                    f"(d_model,), got {tuple(resid.shape)}; is another steer() active?"
                )
            scale = (self.rows[:, None] * self.select).to(resid.dtype)[..., None]
            return resid + scale * direction.to(resid.device, resid.dtype)

        return add

    def scaled(self, direction: Tensor, like: Tensor) -> Tensor:
        scale = (self.rows[:, None] * self.select).to(like.dtype)[..., None]
        return scale * direction.to(like.device, like.dtype)


def _sweep_batch(model, batch: PaddedBatch, runs: Tensor, plan: dict, state: _RowCoefficients):
    """Final residuals of one batch: ``(base [batch, d], steered [n_runs, batch, d])``."""
    prefix: Prefix = compute_prefix(model, batch.tokens, batch.mask, plan["first"])
    where = Positions(prefix.absolute, prefix.mask.sum(-1), True)
    select = plan["rule"].select(where).to(prefix.resid.device)
    if not bool(select.any(-1).all()):
        raise SteerlensError(
            f"positions: {plan['rule']} selects no token of some prompts in a single forward "
            "pass; use 'all', 'prompt' or indices"
        )
    n, per_pass = len(batch.rows), max(1, plan["max_rows"] // len(batch.rows))
    steered = torch.empty(runs.numel(), n, prefix.resid.shape[-1])
    for start in range(0, runs.numel(), per_pass):
        chunk = runs[start : start + per_pass]
        tiled = prefix.tile(chunk.numel()) if chunk.numel() > 1 else prefix
        state.rows = chunk.to(prefix.resid.dtype).repeat_interleave(n).to(prefix.resid.device)
        state.select = select.repeat(chunk.numel(), 1)
        resid = tiled.resid
        if plan["direct"] is not None:
            resid = resid + state.scaled(plan["direct"], resid)
        with torch.no_grad():
            out = run_suffix(model, tiled, resid)[:, -1].float().cpu()
        state.rows = state.select = None
        steered[start : start + chunk.numel()] = out.view(chunk.numel(), n, -1)
        plan["bar"].update()
    return prefix.final[:, -1].float().cpu(), steered


def _replayed(
    model: Any,
    sequences: list[list[int]],
    values: Tensor,
    plan: dict,
    state: _RowCoefficients,
    batch_size: int,
    progress: bool | None,
) -> tuple[Tensor, Tensor]:
    """``(final [n_coeffs, n, d_model], base [n, d_model])`` by the suffix replay: one prefix
    pass per batch of prompts, then blocks from the first steered layer per coefficient."""
    nonzero = (values != 0).nonzero().flatten()  # r = 0 is the prefix pass's own output
    runs = values[nonzero]
    batches = padded_batches(model, sequences, batch_size)
    per_pass = [max(1, plan["max_rows"] // len(b.rows)) for b in batches]
    passes = sum(math.ceil(runs.numel() / p) for p in per_pass)
    show = progress if progress is not None else passes > 1
    final = torch.empty(values.numel(), len(sequences), d_model(model))
    base = torch.empty(len(sequences), d_model(model))
    with tqdm(total=passes, desc="sweep", disable=not show) as bar:
        for batch in batches:
            base[batch.rows], steered = _sweep_batch(
                model, batch, runs, {**plan, "bar": bar}, state
            )
            final[nonzero[:, None], torch.tensor(batch.rows)[None, :]] = steered
    final[values == 0] = base
    return final, base


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
) -> SweepResult:
    """Run ``prompts`` under ``x <- x + r · v[l]`` for every coefficient ``r`` in ``coeffs``.

    The residual before the first steered layer is computed once per batch of prompts; only
    the later blocks run per coefficient, ``max_rows // batch`` coefficients per pass. The
    numbers equal a full forward under ``sl.steer(model, sl.add(v, r))`` for each ``r``.
    Do not call it inside ``sl.steer``: it applies its own additions.

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
            KV cache (``tradeoff.shared_opening``; bridges, every token steered). ``None``:
            when that saves a quarter of the suffix replay's token-blocks; ``False``: never;
            ``True``: whenever possible (else a ``SteerlensError``).
        progress: show a progress bar (default: when there is more than one pass).

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
    check_int("max_rows", max_rows, low=1)
    check_int("batch_size", batch_size, low=1)
    check_bool("share_opening", share_opening, none=True)
    directions = _directions(vector, normalize)
    first = vector.layers[0]
    sequences = [encode(model, t, "prompts") for t in prompts]
    opening = worth_sharing(model, sequences, first, rule, share_opening)
    direct = directions[first] if site == "resid_pre" and not opening else None
    state = _RowCoefficients()
    edits, reads = [], []
    for layer, d in directions.items():
        if direct is None or layer != first:
            layer_edits, layer_reads = edit_hooks(model, layer, site, state.hook(d))
            edits, reads = edits + layer_edits, reads + layer_reads
    with attached(edits + reads):
        if opening:
            final, base = shared_sweep(model, sequences, opening, values, state, max_rows, progress)
        else:
            plan = {"first": first, "rule": rule, "direct": direct, "max_rows": max_rows}
            final, base = _replayed(model, sequences, values, plan, state, batch_size, progress)
    if not bool(torch.isfinite(final).all()):
        raise SteerlensError("model: produced NaN or inf residuals under steering")
    b_u = getattr(model, "b_U", None)
    return SweepResult(
        coeffs=values,
        final=final,
        base=base,
        prompts=tuple(prompts),
        layers=tuple(vector.layers),
        site=site,
        normalized=bool(normalize),
        W_U=model.W_U.detach(),
        b_U=None if b_u is None else b_u.detach(),
    )
