"""Reading the residual stream inside the engine: what to read, and where it accumulates.

A ``Read`` sits in a request's payload like an intervention (same ``layers``/``site``/
``positions``) but never edits: at its hook point it hands the selected prompt tokens'
residuals to the ``ReadStore``, which reduces them per request as chunks arrive (``"mean"``
sums, ``"last"`` keeps the latest position, ``"rows"`` keeps every position). Each prompt
position counts once: a preempted request recomputes its tokens, and the store skips the
positions it already holds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..core.positions import PositionRule

REDUCTIONS = ("mean", "last", "rows")


@dataclass(frozen=True)
class Read:
    """Read ``site`` of ``layer`` at the prompt tokens ``positions`` selects."""

    layer: int
    site: str
    positions: PositionRule
    reduce: str = "mean"

    @property
    def layers(self) -> list[int]:
        return [self.layer]


@dataclass
class _Reduced:
    """One request's reads at one ``Read``: a running sum, or rows by position."""

    reduce: str
    total: Tensor | None = None
    seen: set[int] = field(default_factory=set)
    rows: dict[int, Tensor] = field(default_factory=dict)

    def add(self, rows: Tensor, positions: list[int]) -> None:
        new = [i for i, pos in enumerate(positions) if pos not in self.seen]
        rows, positions = rows[new], [positions[i] for i in new]
        self.seen.update(positions)
        if self.reduce == "mean":
            part = rows.sum(0)
            self.total = part if self.total is None else self.total + part
            return
        for row, pos in zip(rows, positions, strict=True):
            self.rows[pos] = row
        if self.reduce == "last":  # keep only the latest position
            latest = max(self.rows)
            self.rows = {latest: self.rows[latest]}

    def result(self) -> Tensor:
        if self.reduce == "mean":
            return self.total / len(self.seen)
        ordered = [self.rows[pos] for pos in sorted(self.rows)]
        return ordered[-1] if self.reduce == "last" else torch.stack(ordered)


class ReadStore:
    """Reads per request tag, kept until the driver takes them."""

    def __init__(self) -> None:
        self._reads: dict[tuple[str, int], _Reduced] = {}

    def add(
        self,
        tag: str,
        index: int,
        reduce: str,
        rows: Float[Tensor, "k d_model"],
        positions: Int[Tensor, " k"],
    ) -> None:
        kept = self._reads.setdefault((tag, index), _Reduced(reduce))
        kept.add(rows.detach().float().cpu(), positions.tolist())

    def take(self, tags: list[str]) -> bytes:
        """The reads of ``tags``, removed from the store, as ``torch.save`` bytes of
        ``{tag: {read index: tensor}}`` (a read that saw no token is missing)."""
        wanted = set(tags)
        out: dict[str, dict[int, Tensor]] = {tag: {} for tag in tags}
        for key in [key for key in self._reads if key[0] in wanted]:
            out[key[0]][key[1]] = self._reads.pop(key).result()
        buffer = io.BytesIO()
        torch.save(out, buffer)
        return buffer.getvalue()
