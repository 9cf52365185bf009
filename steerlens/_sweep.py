"""Coefficient sweeps: one prefix pass per batch of queries, then only the steered suffix.

Adding ``r · v`` at layer ``l`` leaves blocks ``0..l-1`` unchanged, so a sweep over many
coefficients computes the residual entering the first steered block once (``_suffix``) and
re-runs blocks ``l..L-1`` per coefficient, several coefficients per pass (the prefix is tiled
along the batch). Later steered layers are added by hooks with one coefficient per row.
Only the final normalised residual ``h_L`` at each query's last token is kept: any logit is
``W_U h_L + b_U`` and is computed when a readout asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ._errors import SteerlensError
from ._hooks import check_model, check_site, hook_point
from ._interventions import _select_layers
from ._positions import Positions, position_rule
from ._suffix import compute_prefix, run_suffix
from ._sweep_result import SweepResult
from ._tokens import check_texts, encode, left_pad
from ._vectors import SteeringVector, as_vector


def check_coeffs(coeffs: Any, name: str = "coeffs") -> Float[Tensor, " n"]:
    """A non-empty 1-D float64 tensor of distinct finite coefficients, in the order given."""
    try:
        values = torch.as_tensor(coeffs, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise SteerlensError(f"{name}: expected a list of numbers, got {coeffs!r}") from error
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


def _suffix_hooks(
    model: Any, directions: dict[int, Tensor], site: str, state: dict[str, Tensor]
) -> list:
    """Hooks adding ``coeff_row · direction`` at the selected positions of each row."""

    def make(direction: Tensor):
        def hook(_module: Any, _inputs: Any, output: Tensor) -> Tensor:
            if not state:  # the prefix pass: nothing is steered there
                return output
            rows, sel = state["rows"], state["select"]
            if output.shape[:2] != sel.shape:
                raise SteerlensError(
                    f"sweep: expected a residual of shape {tuple(sel.shape)} + (d_model,), "
                    f"got {tuple(output.shape)}; is another steer() active?"
                )
            scale = (rows[:, None] * sel).to(output.dtype)[..., None]
            return output + scale * direction.to(output.device, output.dtype)

        return hook

    return [
        hook_point(model, layer, site).register_forward_hook(make(direction))
        for layer, direction in directions.items()
    ]


def sweep(
    model: Any,
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
        progress: show a progress bar (default: when there is more than one pass).

    Returns:
        A ``SweepResult`` with ``final``: ``[n_coeffs, n_prompts, d_model]``.

    Example:
        >>> res = sl.sweep(model, vec, torch.linspace(-80, 80, 17), prompts)
        >>> logits = res.logits(res.index(40.0))   # [n_prompts, d_vocab]
    """
    check_model(model)
    vector = as_vector(vector, layers, site)
    vector.check_model(model)
    chosen = _select_layers(vector, layers)
    site = check_site(site or vector.site)
    values = check_coeffs(coeffs)
    prompts = check_texts(prompts, "prompts")
    rule = position_rule(positions)
    for name, number in (("batch_size", batch_size), ("max_rows", max_rows)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise SteerlensError(f"{name}: expected an int >= 1, got {number!r}")
    directions = {}
    for layer in chosen:
        norm = float(vector[layer].norm())
        if normalize and norm == 0.0:
            raise SteerlensError(f"vector: zero at layer {layer}; it has no direction to scale")
        directions[layer] = vector[layer] / norm if normalize else vector[layer]
    first = chosen[0]
    direct = directions[first] if site == "resid_pre" else None
    hooked = {k: v for k, v in directions.items() if direct is None or k != first}

    nonzero = (values != 0).nonzero().flatten()  # r = 0 is the prefix pass's own output
    runs = values[nonzero]
    encoded = [encode(model, text) for text in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    d_model = int(model.cfg.d_model)
    final = torch.empty(values.numel(), len(prompts), d_model)
    base = torch.empty(len(prompts), d_model)
    passes = sum(math.ceil(runs.numel() / max(1, max_rows // len(b))) for b in batches)
    show = progress if progress is not None else passes > 1
    bar = tqdm(total=passes, desc="sweep", disable=not show)
    state: dict[str, Tensor] = {}
    handles = _suffix_hooks(model, hooked, site, state)
    try:
        for batch in batches:
            tokens, mask = left_pad(model, [encoded[i] for i in batch])
            prefix = compute_prefix(model, tokens, mask, first)
            where = Positions(prefix.absolute, prefix.mask.sum(-1), True)
            select = rule.select(where).to(prefix.resid.device)
            if not bool(select.any(-1).all()):
                raise SteerlensError(
                    f"positions: {rule} selects no token of some prompts in a single forward "
                    "pass; use 'all', 'prompt' or indices"
                )
            base[batch] = prefix.final[:, -1].float().cpu()
            per_pass = max(1, max_rows // len(batch))
            for start in range(0, runs.numel(), per_pass):
                chunk = runs[start : start + per_pass]
                tiled = prefix.tile(chunk.numel()) if chunk.numel() > 1 else prefix
                rows = chunk.to(prefix.resid.dtype).repeat_interleave(len(batch))
                state["rows"] = rows.to(prefix.resid.device)
                state["select"] = select.repeat(chunk.numel(), 1)
                resid = tiled.resid
                if direct is not None:
                    scale = (state["rows"][:, None] * state["select"])[..., None]
                    resid = resid + scale * direct.to(resid.device, resid.dtype)
                with torch.no_grad():
                    out = run_suffix(model, tiled, resid)[:, -1].float().cpu()
                state.clear()
                out = out.view(chunk.numel(), len(batch), -1)
                final[nonzero[start : start + chunk.numel(), None], batch] = out
                bar.update()
    finally:
        for handle in handles:
            handle.remove()
        bar.close()
    final[values == 0] = base
    if not bool(torch.isfinite(final).all()):
        raise SteerlensError("model: produced NaN or inf residuals under steering")
    b_u = getattr(model, "b_U", None)
    return SweepResult(
        coeffs=values,
        final=final,
        base=base,
        prompts=tuple(prompts),
        layers=tuple(chosen),
        site=site,
        normalized=bool(normalize),
        W_U=model.W_U.detach(),
        b_U=None if b_u is None else b_u.detach(),
    )
