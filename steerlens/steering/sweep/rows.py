"""``RowVariants``: which variant each row of a sweep's pass runs, as hooks that apply it.

A pass stacks the same prompts once per variant: block ``k`` (rows ``k*n .. (k+1)*n - 1``)
runs ``variants[k]``. At every steered (layer, site), each block's intervention edits its
own rows (``Intervention.apply``) at the positions its rule selects; unsteered blocks and
unselected positions pass through unchanged. Outside a pass (the prefix pass) the hooks
change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ...core.errors import SteerlensError
from ...core.hookpoints import attached, edit_hooks
from .plan import SweepPlan, Variant


def apply_block(
    variant: Variant,
    x: Float[Tensor, "rows pos d_model"],
    select: Bool[Tensor, "rows pos"],
    layer: int,
    site: str,
) -> Float[Tensor, "rows pos d_model"]:
    """``x`` with ``variant``'s edit at (layer, site) where ``select`` is set (``x`` itself
    where the variant does not edit there)."""
    if variant is None or variant.site != site or layer not in variant.layers:
        return x
    return torch.where(select[..., None], variant.apply(x, layer), x)


def edit_blocks(
    blocks: Sequence[Variant],
    resid: Float[Tensor, "rows pos d_model"],
    select: Bool[Tensor, "rows pos"],
    layer: int,
    site: str,
) -> Float[Tensor, "rows pos d_model"]:
    """``resid`` with row block ``k`` edited by ``blocks[k]`` (``apply_block``)."""
    n = resid.shape[0] // len(blocks)
    parts = [
        apply_block(v, resid[k * n : (k + 1) * n], select[k * n : (k + 1) * n], layer, site)
        for k, v in enumerate(blocks)
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class RowVariants:
    """The variants of the running pass, in row blocks, and the hooks that apply them."""

    def __init__(self) -> None:
        self.blocks: tuple[Variant, ...] = ()
        self.select: Bool[Tensor, "rows pos"] | None = None

    @contextmanager
    def running(
        self, blocks: Sequence[Variant], select: Bool[Tensor, "rows pos"]
    ) -> Iterator[None]:
        """For one pass: row block ``k`` of ``select``'s rows runs ``blocks[k]``."""
        if select.shape[0] % len(blocks):
            raise SteerlensError(
                f"sweep: {select.shape[0]} rows do not split into {len(blocks)} equal blocks"
            )
        self.blocks, self.select = tuple(blocks), select
        try:
            yield
        finally:
            self.blocks, self.select = (), None

    def edit(
        self, resid: Float[Tensor, "rows pos d_model"], layer: int, site: str
    ) -> Float[Tensor, "rows pos d_model"]:
        """Every block's intervention at (layer, site) on its rows."""
        if self.select is None:  # the prefix pass: nothing is steered there
            return resid
        if resid.shape[:2] != self.select.shape:
            raise SteerlensError(
                f"sweep: expected a residual of shape {tuple(self.select.shape)} + (d_model,), "
                f"got {tuple(resid.shape)}; is another steer() active?"
            )
        return edit_blocks(self.blocks, resid, self.select.to(resid.device), layer, site)

    @contextmanager
    def hooked(self, model: Any, plan: SweepPlan, skip: tuple[int, str] | None) -> Iterator[None]:
        """Hooks at every (layer, site) of ``plan`` but ``skip`` (edited directly), attached
        for the block."""
        edits, reads = [], []
        for layer, site in plan.hook_points():
            if (layer, site) != skip:

                def hook(resid: Tensor, layer=layer, site=site, **_: Any) -> Tensor:
                    return self.edit(resid, layer, site)

                more_edits, more_reads = edit_hooks(model, layer, site, hook)
                edits, reads = edits + more_edits, reads + more_reads
        with attached(edits + reads):
            yield
