"""Logits at scored positions with a trainable vector added at one layer: cached or naive.

The vector enters at ``blocks.{layer}.hook_resid_pre``, so blocks ``0..layer-1`` do not
depend on it. ``CachedRun`` runs them once and each call re-runs only blocks
``layer..L-1`` (the sweep engine's ``ReplayBatch``), then unembeds only the scored positions.
``NaiveRun`` runs the whole model each call, with the vector added by a hook at
``blocks.{layer}.hook_resid_pre``, and reads the scored positions from the full logits; it
exists to check the cached path and to time it. Both give gradients with respect to the
vector only; the model's parameters never accumulate gradients. A run takes one vector for
every row or one per row (``[row, d_model]``), and ``take`` narrows it to some rows.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..core.completion_batch import CompletionBatch
from ..core.forward import mask_kwargs
from ..core.hookpoints import attached, hook_point, model_device
from ..core.suffix import unembed
from ..steering.sweep import ReplayBatch

Vectors = Float[Tensor, " d_model"] | Float[Tensor, "row d_model"]


def per_row(vector: Vectors) -> Tensor:
    """``[d_model]`` (every row) or ``[row, d_model]`` (one per row), to add to ``[row, pos,
    d_model]``."""
    return vector[:, None, :] if vector.ndim == 2 else vector


class CachedRun:
    """Blocks before ``layer`` run once (``ReplayBatch``); each call runs the rest."""

    def __init__(
        self,
        model: Any,
        batch: CompletionBatch,
        layer: int,
        where: Bool[Tensor, "row pos"],
        replay: ReplayBatch | None = None,
    ) -> None:
        self.model, self.batch, self.layer, self.mask = model, batch, layer, where
        self.replay = replay or ReplayBatch.open(model, batch.tokens, batch.mask, layer)
        resid = self.replay.prefix.resid
        self.where = where.to(device=resid.device, dtype=resid.dtype)[..., None]
        self.rows, self.cols = batch.rows.to(resid.device), batch.cols.to(resid.device)

    def __call__(self, vector: Vectors) -> Float[Tensor, "n d_vocab"]:
        resid = self.replay.prefix.resid
        normalized = self.replay.final(resid + self.where * per_row(vector.to(resid.dtype)))
        return unembed(self.model, normalized[self.rows, self.cols][None])[0]

    def take(self, rows: Int[Tensor, " k"]) -> CachedRun:
        """The same run on only these batch rows (the prefix is not recomputed)."""
        batch, replay = self.batch.take(rows), self.replay.take(rows)
        return CachedRun(self.model, batch, self.layer, self.mask[rows], replay)


class NaiveRun:
    """The whole model each call, the vector added by a hook at ``resid_pre`` of ``layer``."""

    def __init__(
        self, model: Any, batch: CompletionBatch, layer: int, where: Bool[Tensor, "row pos"]
    ) -> None:
        self.model, self.batch, self.layer, self.mask = model, batch, layer, where
        self.point = hook_point(model, layer, "resid_pre")
        self.device = model_device(model)
        self.where = where.to(self.device)[..., None]

    def __call__(self, vector: Vectors) -> Float[Tensor, "n d_vocab"]:
        def hook(resid: Tensor, **_: Any) -> Tensor:
            return resid + self.where.to(resid.dtype) * per_row(vector.to(resid.dtype))

        with attached([(self.point, hook)]):
            logits = self.model(
                self.batch.tokens.to(self.device), **mask_kwargs(self.model, self.batch.mask)
            )
        return logits[self.batch.rows.to(logits.device), self.batch.cols.to(logits.device)]

    def take(self, rows: Int[Tensor, " k"]) -> NaiveRun:
        """The same run on only these batch rows."""
        return NaiveRun(self.model, self.batch.take(rows), self.layer, self.mask[rows])


def make_run(
    model: Any,
    batch: CompletionBatch,
    layer: int,
    where: Bool[Tensor, "row pos"],
    cached: bool,
) -> CachedRun | NaiveRun:
    """The cached (prefix once, suffix per call) or naive (full forward per call) run."""
    return (CachedRun if cached else NaiveRun)(model, batch, layer, where)


def token_probs(
    logits: Float[Tensor, "n d_vocab"], targets: Tensor, coldness: float
) -> Float[Tensor, " n"]:
    """``softmax(coldness * logits)`` at each target token."""
    probs = torch.softmax(coldness * logits.float(), dim=-1)
    return probs.gather(-1, targets.to(probs.device)[:, None])[:, 0]
