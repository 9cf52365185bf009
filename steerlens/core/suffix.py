"""Run the blocks from layer ``l`` onward many times, after one pass over the prefix.

Whatever is added at layer ``l`` leaves blocks ``0..l-1`` unchanged, so optimizing a vector
there, or sweeping its coefficient, only needs blocks ``l..L-1`` per step. TransformerLens 4's
``start_at_layer`` still executes the earlier blocks of a ``TransformerBridge`` (and discards
their output), so steerlens replays the suffix itself: one full forward records the residual
entering block ``l`` and the extra arguments the model passes to every block from ``l`` on
(attention mask, rotary embeddings, ...), and ``run_suffix`` calls those blocks with them.
The same works for a classic ``HookedTransformer``, whose blocks take
``(residual, attention_mask=...)``. Hook points inside the replayed blocks fire as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from .errors import SteerlensError
from .forward import is_bridge, mask_kwargs, position_ids
from .hookpoints import model_device, normalise_layer

CACHE_KWARGS = (
    "past_key_values",
    "past_key_value",
    "layer_past",  # GPT-NeoX
    "cache",
    "past_kv_cache_entry",
)


@dataclass(frozen=True, eq=False)
class Prefix:
    """The residual entering block ``layer`` and the arguments of blocks ``layer..L-1``.

    Attributes:
        layer: the first block the suffix runs.
        resid: ``[batch, pos, d_model]``, the residual entering block ``layer`` (no grad).
        mask: ``[batch, pos]``, real (non-pad) tokens of the left-padded batch.
        block_args: per block from ``layer`` on, its positional arguments after the
            residual and its keyword arguments, as the model passed them.
        final: ``[batch, pos, d_model]``, the unsteered final normalized residual of the
            prefix pass (what ``run_suffix(model, prefix, prefix.resid)`` returns), so an
            unsteered baseline costs no extra pass.
    """

    layer: int
    resid: Float[Tensor, "batch pos d_model"]
    mask: Bool[Tensor, "batch pos"]
    block_args: tuple[tuple[tuple, dict], ...]
    final: Float[Tensor, "batch pos d_model"]

    @property
    def absolute(self) -> Int[Tensor, "batch pos"]:
        """Absolute positions counted from each row's first real token (-1 for pads)."""
        return torch.where(self.mask, position_ids(self.mask), -1)

    def tile(self, times: int) -> Prefix:
        """The same prefix repeated ``times`` along the batch (row ``r`` = old row
        ``r % batch``), for running several variants of every row in one pass."""
        batch = self.resid.shape[0]

        def rep(value: Any) -> Any:
            if isinstance(value, Tensor) and value.ndim and value.shape[0] == batch > 1:
                return value.repeat(times, *([1] * (value.ndim - 1)))
            if isinstance(value, tuple):
                return tuple(rep(v) for v in value)
            return value

        return Prefix(
            self.layer,
            self.resid.repeat(times, 1, 1),
            self.mask.repeat(times, 1),
            tuple((rep(a), {k: rep(v) for k, v in kw.items()}) for a, kw in self.block_args),
            self.final.repeat(times, 1, 1),
        )

    def take(self, rows: Int[Tensor, " k"]) -> Prefix:
        """Only the given rows of the batch, in that order (for a batch whose rows stop one by
        one)."""
        batch = self.resid.shape[0]
        index = rows.to(self.resid.device)

        def pick(value: Any) -> Any:
            if isinstance(value, Tensor) and value.ndim and value.shape[0] == batch > 1:
                return value[index.to(value.device)]
            if isinstance(value, tuple):
                return tuple(pick(v) for v in value)
            return value

        return Prefix(
            self.layer,
            self.resid[index],
            self.mask[index],
            tuple((pick(a), {k: pick(v) for k, v in kw.items()}) for a, kw in self.block_args),
            self.final[index],
        )


def compute_prefix(
    model: Any, tokens: Int[Tensor, "batch pos"], mask: Bool[Tensor, "batch pos"], layer: int
) -> Prefix:
    """One no-grad forward pass recording what ``run_suffix`` needs from ``layer`` on."""
    layer = normalise_layer(model, layer)
    blocks = getattr(model, "blocks", None)
    if blocks is None or len(blocks) != model.cfg.n_layers:
        raise SteerlensError(
            "model: needs a `blocks` stack of cfg.n_layers blocks to run from a middle layer"
        )
    captured: dict[int, tuple[tuple, dict]] = {}

    def record(index: int):
        def hook(_module: Any, args: tuple, kwargs: dict) -> None:
            kwargs = {k: (None if k in CACHE_KWARGS else v) for k, v in kwargs.items()}
            captured[index] = (args, kwargs)

        return hook

    final: list[Tensor] = []
    handles = [
        blocks[i].register_forward_pre_hook(record(i), with_kwargs=True)
        for i in range(layer, len(blocks))
    ]
    handles.append(model.ln_final.register_forward_hook(lambda _m, _i, out: final.append(out)))
    try:
        with torch.no_grad():
            kwargs = mask_kwargs(model, mask)
            if is_bridge(model):
                kwargs["logits_to_keep"] = 1
            model(tokens.to(model_device(model)), **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    if sorted(captured) != list(range(layer, len(blocks))):
        raise SteerlensError(f"model: blocks {layer}.. were not all called in a forward pass")
    first_args, _ = captured[layer]
    resid = first_args[0] if first_args else captured[layer][1].get("hidden_states")
    if not isinstance(resid, Tensor) or resid.ndim != 3:
        raise SteerlensError(f"model: could not read the residual entering block {layer}")
    block_args = []
    for i in range(layer, len(blocks)):
        args, kwargs = captured[i]
        if args:
            args = args[1:]
        else:
            kwargs = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        block_args.append((args, kwargs))
    if len(final) != 1 or final[0].shape != resid.shape:
        raise SteerlensError("model: could not read the final normalized residual (ln_final)")
    return Prefix(
        layer, resid.detach(), mask.to(resid.device), tuple(block_args), final[0].detach()
    )


def run_suffix(
    model: Any, prefix: Prefix, resid: Float[Tensor, "batch pos d_model"]
) -> Float[Tensor, "batch pos d_model"]:
    """Run blocks ``prefix.layer..L-1`` and the final norm on ``resid``.

    Returns the final normalized residual (``ln_final`` output, the unembedding's input).
    Gradients flow to ``resid``.
    """
    if resid.shape != prefix.resid.shape:
        raise SteerlensError(
            f"resid: expected shape {tuple(prefix.resid.shape)} (the prefix's), got "
            f"{tuple(resid.shape)}; use prefix.tile(k) to run k variants of each row"
        )
    x = resid
    for offset, (args, kwargs) in enumerate(prefix.block_args):
        out = model.blocks[prefix.layer + offset](x, *args, **kwargs)
        x = out[0] if isinstance(out, tuple) else out
    return model.ln_final(x)


def unembed(
    model: Any, normalized: Float[Tensor, "batch pos d_model"]
) -> Float[Tensor, "batch pos d_vocab"]:
    """Logits from the final normalized residual."""
    return model.unembed(normalized)
