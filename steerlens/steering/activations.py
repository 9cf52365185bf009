"""Read the residual stream: only the needed hook points, stopping after the last layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.batching import padded_batches
from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.forward import run
from ..core.hookpoints import (
    attached,
    check_site,
    d_model,
    hook_point,
    n_layers,
    normalise_layers,
)
from ..core.positions import NAMED_RULES
from ..core.roles import ROLES, ChatSpans
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import check_bool, check_instance, check_model, check_texts, is_int
from ..core.vector import SteeringVector


def _reduce(
    acts: Float[Tensor, "batch pos d_model"],
    mask: Bool[Tensor, "batch pos"],
    position: str | int | Sequence[int],
) -> Float[Tensor, "batch d_model"]:
    """One vector per row: last real token, mean over real tokens, or chosen indices.

    Rows are left-padded, so real token ``i`` of a row of length ``n`` sits at column
    ``width - n + i``; negative indices count from the row's end.
    """
    lengths = mask.sum(-1)
    width = mask.shape[1]
    if position == "last":
        return acts[:, -1]
    if position == "mean":
        weights = mask.to(acts.dtype)[..., None]
        return (acts * weights).sum(1) / weights.sum(1)
    indices = [position] if isinstance(position, int) else list(position)
    rows = []
    for row, length in enumerate(lengths.tolist()):
        cols = [width - length + (i % length) for i in indices]
        rows.append(acts[row, cols].mean(0))
    return torch.stack(rows)


#: Named extraction positions: a chat role alone is its last token, "<role> mean" the mean.
NAMED_POSITIONS = ("last", "mean", *ROLES, *(f"{role} mean" for role in ROLES))


def _role_reduce(
    acts: Float[Tensor, "batch pos d_model"],
    mask: Bool[Tensor, "batch pos"],
    position: str,
    spans: ChatSpans,
    texts: list[int],
) -> Float[Tensor, "batch d_model"]:
    """One vector per row from a chat role's tokens: its last token, or their mean."""
    role, _, how = position.partition(" ")
    start, end = spans.span(role)
    width, lengths = mask.shape[1], mask.sum(-1).tolist()
    rows = []
    for row, length in enumerate(lengths):
        first, stop = int(start[row]), int(end[row])
        if stop <= first:
            raise SteerlensError(
                f"position: {position!r} is empty for text {texts[row]} (for 'response', "
                "append the reply to the chat-formatted prompt, e.g. sl.answer_pairs)"
            )
        cols = torch.arange(width - length + first, width - length + stop)
        rows.append(acts[row, cols].mean(0) if how else acts[row, cols[-1]])
    return torch.stack(rows)


def _vectors(
    acts: Float[Tensor, "batch pos d_model"],
    mask: Bool[Tensor, "batch pos"],
    position: Any,
    spans: ChatSpans,
    texts: list[int],
) -> Float[Tensor, "batch d_model"]:
    """One CPU vector per row at ``position`` (a chat role, or the other rules)."""
    if isinstance(position, str) and position.partition(" ")[0] in ROLES:
        return _role_reduce(acts, mask, position, spans, texts).cpu()
    return _reduce(acts, mask, position).cpu()


def _check_position(position: Any) -> None:
    if isinstance(position, str) and position in NAMED_POSITIONS:
        return
    if is_int(position):
        return
    if (
        isinstance(position, Sequence)
        and not isinstance(position, str)
        and position
        and all(is_int(i) for i in position)
    ):
        return
    if isinstance(position, str) and position in NAMED_RULES:
        raise SteerlensError(
            f"position: {position!r} is a word of positions= (which tokens sl.add / sl.ablate "
            f"/ sl.clamp edit); position= (where activations are read, one vector per text) "
            f"takes one of {NAMED_POSITIONS}, an int or a list of ints"
        )
    raise SteerlensTypeError(
        f"position: expected one of {NAMED_POSITIONS}, an int or a non-empty list of ints, "
        f"got {position!r}"
    )


def _check_indices(position: Any, encoded: Sequence[Sequence[int]]) -> None:
    """Token indices in range for every text (before any forward pass)."""
    if isinstance(position, str):
        return
    indices = [position] if is_int(position) else list(position)
    for row, ids in enumerate(encoded):
        bad = [i for i in indices if not -len(ids) <= i < len(ids)]
        if bad:
            raise SteerlensError(
                f"position: indices {bad} are out of range for texts[{row}] ({len(ids)} tokens)"
            )


def collect_activations(
    model: HookedModel,
    texts: Sequence[str],
    layers: int | Sequence[int] | str,
    *,
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, "n_texts n_layers d_model"]:
    """Residual-stream activations of ``texts`` at ``layers``, one vector per text and layer.

    Texts are tokenized one by one (BOS prepended as the model expects), grouped by length
    into left-padded batches, and run with hooks only at the requested points; the forward
    stops after the last requested block. No full activation cache is ever built.

    Args:
        model: a TransformerLens model.
        texts: raw texts (use ``sl.format_chat`` first for chat prompts).
        layers: layer indices (negative counts from the end) or ``"all"``.
        position: ``"last"`` token, ``"mean"`` over real tokens, an index or a list of
            indices (averaged; real tokens, negative from the end), or a chat role of
            chat-formatted texts: ``"instruction"``, ``"post_instruction"``, ``"response"``
            (its last token) or ``"<role> mean"`` (the mean over its tokens).
        site: ``resid_pre``, ``resid_mid`` or ``resid_post``.
        batch_size: texts per forward pass.
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        ``[n_texts, n_layers, d_model]`` float32 on the CPU, layers in ascending order.
    """
    check_model(model)
    texts = check_texts("texts", texts)
    check_site(site)
    _check_position(position)
    layers = normalise_layers(model, layers)
    check_bool("progress", progress, none=True)
    encoded = [encode(model, text) for text in texts]
    _check_indices(position, encoded)
    batches = padded_batches(model, encoded, batch_size)
    out = torch.empty(len(texts), len(layers), d_model(model))
    captured: dict[int, Tensor] = {}

    def capture(layer: int):
        def hook(resid: Tensor, **_: Any) -> None:
            captured[layer] = resid.detach()

        return hook

    stop = layers[-1] + 1
    stop_kwargs = {"stop_at_layer": stop} if stop < n_layers(model) else {}
    show = progress if progress is not None else len(batches) > 1
    with attached([(hook_point(model, layer, site), capture(layer)) for layer in layers]):
        for batch in tqdm(batches, desc="activations", disable=not show):
            captured.clear()
            run(model, batch.tokens, batch.mask, **stop_kwargs)
            mask = batch.mask.to(captured[layers[0]].device)
            spans = ChatSpans(model.tokenizer, batch.tokens, batch.mask)
            for column, layer in enumerate(layers):
                acts = captured[layer].float()
                out[batch.rows, column] = _vectors(acts, mask, position, spans, batch.rows)
    if not bool(torch.isfinite(out).all()):
        raise SteerlensError("model: produced NaN or inf activations")
    return out


def project(
    model: HookedModel,
    texts: Sequence[str],
    vector: SteeringVector,
    *,
    position: str | int | Sequence[int] = "last",
    site: str | None = None,
    batch_size: int = 16,
) -> Float[Tensor, "n_texts n_layers"]:
    """Projection ``x . u`` of each text's residual on ``u = vector[l] / |vector[l]|``.

    Args:
        model: a TransformerLens model.
        texts: raw texts.
        vector: directions; its layers (ascending) are the columns of the result.
        position: token position rule, as for ``collect_activations``.
        site: where to read (default: the vector's site).
        batch_size: texts per forward pass.

    Returns:
        ``[n_texts, n_layers]``, column ``j`` for layer ``vector.layers[j]``.

    Example:
        >>> proj = sl.project(model, texts, vec)
    """
    check_instance("vector", vector, SteeringVector, "a SteeringVector")
    vector.check_model(model)
    units = vector.unit()
    acts = collect_activations(
        model,
        texts,
        vector.layers,
        position=position,
        site=vector.site if site is None else site,
        batch_size=batch_size,
    )
    directions = torch.stack([units[layer] for layer in vector.layers])  # [layer, d_model]
    return torch.einsum("nld,ld->nl", acts, directions)
