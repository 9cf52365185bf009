"""``sl.when`` inside vLLM: each row's condition decided before it is steered.

Under ``sl.steer`` a condition is read on the prompt at its layer during the same forward
pass that then steers the later layers. In vLLM a prompt may arrive in several chunks
(chunked prefill), and the first chunk's later layers run before the last chunk is read,
so the decision is taken first, in reading passes (``reading``): each row's conditions in
the order their reads come in the forward pass (layer, then site, then list order), each
read with the row's other entries applied as they would be at that point (plain
interventions, conditions already decided; undecided ones edit only after their own, later,
read). A met condition then becomes its intervention at its place in the list, an unmet one
disappears, and the generation runs with plain lists.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.hookpoints import SITES
from ..core.positions import PositionRule, Positions
from ..steering.conditional import Conditional
from .reading import run_reads
from .reads import Read


def _read_order(entries: list[Any]) -> list[int]:
    """Indices of the conditions in ``entries``, in the order the forward pass reads them."""
    found = [i for i, entry in enumerate(entries) if isinstance(entry, Conditional)]
    return sorted(found, key=lambda i: (entries[i].layer, SITES.index(entries[i].site), i))


def resolve(llm: Any, encoded: list[list[int]], lists: list[list[Any]]) -> list[list[Any]]:
    """``lists`` with every condition decided for its own prompt."""
    decided: list[dict[int, bool]] = [{} for _ in lists]
    while True:
        pending = []
        for row, entries in enumerate(lists):
            waiting = [i for i in _read_order(entries) if i not in decided[row]]
            if waiting:
                pending.append((row, waiting[0]))
        if not pending:
            break
        passes = [_reading_list(lists[row], decided[row], at) for row, at in pending]
        reads = run_reads(llm, [encoded[row] for row, _ in pending], [p for p, _ in passes])
        for (row, at), found, (_, read_at) in zip(pending, reads, passes, strict=True):
            decided[row][at] = _meets(lists[row][at], found[read_at])
    return [_decided(entries, choice) for entries, choice in zip(lists, decided, strict=True)]


def _reading_list(entries: list[Any], decided: dict[int, bool], at: int) -> tuple[list[Any], int]:
    """The row's list with condition ``at`` read in its place, and the read's index."""
    out, read_at = [], -1
    for i, entry in enumerate(entries):
        if i == at:
            read_at = len(out)
            out.append(Read(entry.layer, entry.site, PositionRule("prompt"), "rows"))
        elif not isinstance(entry, Conditional):
            out.append(entry)
        elif decided.get(i):
            out.append(entry.intervention)
    return out, read_at


def _meets(conditional: Conditional, rows: torch.Tensor) -> bool:
    """The condition on one prompt's residual rows ``[pos, d_model]`` (its own rule)."""
    n = rows.shape[0]
    where = Positions(torch.arange(n)[None], torch.tensor([n]), True)
    return bool(conditional.meets(rows[None], where)[0])


def _decided(entries: list[Any], choice: dict[int, bool]) -> list[Any]:
    if not choice:
        return entries
    return [
        entry.intervention if isinstance(entry, Conditional) else entry
        for i, entry in enumerate(entries)
        if not isinstance(entry, Conditional) or choice[i]
    ]
