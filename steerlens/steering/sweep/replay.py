"""The suffix replay: one prefix pass per batch of prompts, then blocks from the first steered
layer on per variant.

An edit at layer ``l`` leaves blocks ``0..l-1`` unchanged, so the residual entering block
``l`` is computed once per batch (``core.suffix``) and only blocks ``l..L-1`` run per variant,
several variants per pass (the prefix is tiled along the batch, ``RowVariants`` says which
rows run which). At ``resid_pre`` of ``l`` the variants edit the prefix residual directly;
later (layer, site)s are edited by hooks. An unsteered variant costs nothing: the prefix
pass's own output is its result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from ...core.batching import PaddedBatch, padded_batches
from ...core.errors import SteerlensError
from ...core.hookpoints import n_layers
from ...core.positions import PositionRule, Positions
from ...core.suffix import Prefix, compute_prefix, run_suffix
from ..interventions import Intervention
from .plan import SweepOutput, SweepPlan
from .rows import RowVariants, edit_blocks


@dataclass(frozen=True, eq=False)
class ReplayBatch:
    """A left-padded batch whose blocks below ``prefix.layer`` ran once: ``final`` runs the
    rest on a (possibly edited) residual entering that block; gradients flow through it.

    Attributes:
        model: the model.
        prefix: the residual entering the first replayed block and its blocks' arguments.
        prompt_len: ``[rows]`` real prompt tokens per row (for position rules).
    """

    model: Any
    prefix: Prefix
    prompt_len: Int[Tensor, " rows"]

    @classmethod
    def open(
        cls,
        model: Any,
        tokens: Int[Tensor, "rows pos"],
        mask: Bool[Tensor, "rows pos"],
        layer: int,
        prompt_len: Int[Tensor, " rows"] | None = None,
    ) -> ReplayBatch:
        """Run the prefix pass (no grad); ``prompt_len`` defaults to every real token."""
        prefix = compute_prefix(model, tokens, mask, layer)
        length = prefix.mask.sum(-1) if prompt_len is None else prompt_len
        return cls(model, prefix, length.to(prefix.mask.device))

    def select(self, rule: PositionRule) -> Bool[Tensor, "rows pos"]:
        """Which tokens ``rule`` selects in a single forward pass over the batch."""
        return rule.select(Positions(self.prefix.absolute, self.prompt_len, True))

    def final(self, resid: Float[Tensor, "rows pos d_model"]) -> Float[Tensor, "rows pos d_model"]:
        """The final normalized residual with ``resid`` entering the first replayed block."""
        return run_suffix(self.model, self.prefix, resid)

    def tile(self, times: int) -> ReplayBatch:
        """The batch repeated ``times`` along the rows (row ``r`` = old row ``r % rows``)."""
        if times == 1:
            return self
        return ReplayBatch(self.model, self.prefix.tile(times), self.prompt_len.repeat(times))

    def take(self, rows: Int[Tensor, " k"]) -> ReplayBatch:
        """Only these rows, in this order (the prefix is not recomputed)."""
        index = rows.to(self.prompt_len.device)
        return ReplayBatch(self.model, self.prefix.take(rows), self.prompt_len[index])


def _selection(batch: ReplayBatch, variants: Sequence[Intervention]) -> list[Tensor]:
    """Each variant's selected tokens; every prompt must have one (nothing is generated)."""
    found: dict[PositionRule, Tensor] = {}
    out = []
    for variant in variants:
        rule = variant.positions
        if rule not in found:
            found[rule] = batch.select(rule).to(batch.prefix.resid.device)
            if not bool(found[rule].any(-1).all()):
                raise SteerlensError(
                    f"positions: {rule} selects no token of some prompts in a single forward "
                    "pass; use 'all', 'prompt', 'last' or indices"
                )
        out.append(found[rule])
    return out


class SuffixReplay:
    """The suffix-replay strategy (module docstring)."""

    def __init__(self, model: Any, plan: SweepPlan) -> None:
        self.model, self.plan = model, plan
        first = plan.first_layer  # with no edit at all, the prefix pass is the whole run
        self.first = n_layers(model) - 1 if first is None else first
        self.runs = [i for i, v in enumerate(plan.variants) if v is not None]

    def run(self, sequences: Sequence[Sequence[int]]) -> SweepOutput:
        """Readouts of every prompt under every variant, in the given orders."""
        plan, rows = self.plan, RowVariants()
        batches = padded_batches(self.model, sequences, plan.batch_size)
        passes = sum(math.ceil(len(self.runs) / self._per_pass(b)) for b in batches)
        show = plan.progress if plan.progress is not None else passes > 1
        steered: list[Tensor | None] = [None] * len(plan.variants)
        base: Tensor | None = None
        skip = (self.first, "resid_pre")
        with (
            rows.hooked(self.model, plan, skip),
            tqdm(total=passes, desc=plan.desc, disable=not show) as bar,
        ):
            for batch in batches:
                batch_base, batch_steered = self._batch(batch, rows, bar)
                base = _placed(base, batch_base, batch.rows, len(sequences))
                for i, out in zip(self.runs, batch_steered, strict=True):
                    steered[i] = _placed(steered[i], out, batch.rows, len(sequences))
        stacked = [base if out is None else out for out in steered]
        return SweepOutput(torch.stack(stacked), base)

    def _per_pass(self, batch: PaddedBatch) -> int:
        return max(1, self.plan.max_rows // len(batch.rows))

    def _batch(self, batch: PaddedBatch, rows: RowVariants, bar: Any) -> tuple[Tensor, list]:
        """``(base readout, [readout per steered variant])`` of one batch of prompts."""
        replay = ReplayBatch.open(self.model, batch.tokens, batch.mask, self.first)
        variants = [self.plan.variants[i] for i in self.runs]
        selects = _selection(replay, variants)
        per_pass, out = self._per_pass(batch), []
        for start in range(0, len(variants), per_pass):
            chunk = variants[start : start + per_pass]
            select = torch.cat(selects[start : start + per_pass])
            tiled = replay.tile(len(chunk))
            resid = edit_blocks(chunk, tiled.prefix.resid, select, self.first, "resid_pre")
            with rows.running(chunk, select), torch.no_grad():
                out += list(self.plan.readout(tiled.final(resid)[:, -1]).chunk(len(chunk)))
            bar.update()
        with torch.no_grad():
            return self.plan.readout(replay.prefix.final[:, -1]), out


def _placed(into: Tensor | None, values: Tensor, rows: list[int], total: int) -> Tensor:
    """``values`` written at ``rows`` of a ``[total, ...]`` tensor (made on first use)."""
    if into is None:
        into = values.new_empty((total, *values.shape[1:]))
    into[rows] = values
    return into
