"""``sl.vllm.collect_activations`` and ``sl.vllm.project``: the residual stream read inside
vLLM, one vector per text and layer, equal to the TransformerLens versions.

Each text runs as a one-token generation whose payload holds one ``Read`` per layer; the
workers reduce the selected prompt tokens as chunks arrive, so no activation larger than
``[n_texts, n_layers, d_model]`` is ever kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.basis import all_centred
from ..core.errors import SteerlensError
from ..core.hookpoints import check_d_model, check_site, normalise_layers
from ..core.positions import PositionRule, position_rule
from ..core.roles import ROLES
from ..core.tokens import encode
from ..core.validate import check_instance, check_texts, is_int
from ..core.vector import SteeringVector
from .engine import engine_model
from .reading import run_reads
from .reads import Read
from .requests import check_rules

NAMED_POSITIONS = ("last", "mean", *ROLES, *(f"{role} mean" for role in ROLES))


def read_rule(position: Any) -> tuple[PositionRule, str]:
    """``(rule, reduce)`` for a ``position`` of ``sl.collect_activations``."""
    if position == "last":
        return PositionRule("indices", (-1,)), "last"
    if position == "mean":
        return PositionRule("prompt"), "mean"
    if isinstance(position, str) and position.partition(" ")[0] in ROLES:
        role, _, how = position.partition(" ")
        if how in ("", "mean"):
            return PositionRule(role), "mean" if how else "last"
    if is_int(position) or (
        isinstance(position, Sequence) and not isinstance(position, str) and position
    ):
        return position_rule(position), "mean"
    raise SteerlensError(
        f"position: expected one of {NAMED_POSITIONS}, an int or a non-empty list of ints, "
        f"got {position!r}"
    )


def collect_activations(
    llm: Any,
    texts: Sequence[str],
    layers: int | Sequence[int] | str,
    *,
    position: str | int | Sequence[int] = "last",
    site: str = "resid_pre",
) -> Float[Tensor, "n_texts n_layers d_model"]:
    """Residual-stream activations of ``texts`` read inside vLLM (``sl.collect_activations``).

    Args:
        llm: an engine from ``sl.vllm.load``.
        texts: raw texts (``sl.format_chat`` first for chat prompts); BOS is prepended as
            for ``sl.collect_activations``.
        layers: layer indices (negative counts from the end) or ``"all"``.
        position: ``"last"``, ``"mean"``, an index or indices (averaged; negative from the
            end), a chat role (its last token) or ``"<role> mean"``.
        site: ``resid_pre``, ``resid_mid`` or ``resid_post``.

    Returns:
        ``[n_texts, n_layers, d_model]`` float32 on the CPU, layers ascending.

    Example:
        >>> acts = sl.vllm.collect_activations(llm, texts, layers=[8, 12], position="mean")
    """
    model = engine_model(llm)
    texts = check_texts("texts", texts)
    check_site(site)
    layers = normalise_layers(model, layers)
    rule, reduce = read_rule(position)
    encoded = [encode(model, text) for text in texts]
    reads = [Read(layer, site, rule, reduce) for layer in layers]
    for row, ids in enumerate(encoded):
        check_rules(model, reads, ids, row)
    found = run_reads(llm, encoded, [reads] * len(texts))
    out = torch.empty(len(texts), len(layers), model.cfg.d_model)
    for row, per_read in enumerate(found):
        if len(per_read) != len(layers):
            raise SteerlensError(
                f"position: {position!r} selects no token of texts[{row}] (for 'response', "
                "append the reply to the chat-formatted prompt)"
            )
        out[row] = torch.stack([per_read[i] for i in range(len(layers))])
    return out


def project(
    llm: Any,
    texts: Sequence[str],
    vector: SteeringVector,
    *,
    position: str | int | Sequence[int] = "last",
    site: str | None = None,
) -> Float[Tensor, "n_texts n_layers"]:
    """Projection ``x . u`` on ``u = vector[l] / |vector[l]|`` read inside vLLM
    (``sl.project``); column ``j`` is layer ``vector.layers[j]``."""
    check_instance("vector", vector, SteeringVector, "a SteeringVector")
    model = engine_model(llm)
    check_d_model("vector", vector.d_model, model)
    if vector.basis != "plain" and not all_centred(vector.directions.values()):
        raise SteerlensError(
            f"vector: read in the {vector.basis!r} residual basis; projecting vLLM's plain "
            "residual on it is exact only for zero-mean directions (core.basis)"
        )
    acts = collect_activations(
        llm, texts, vector.layers, position=position, site=vector.site if site is None else site
    )
    units = vector.unit()
    directions = torch.stack([units[layer] for layer in vector.layers])
    return torch.einsum("nld,ld->nl", acts, directions)
