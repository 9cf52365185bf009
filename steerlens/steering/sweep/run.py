"""``run_sweep``: every prompt under every variant of a plan, by the cheaper strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..context import check_fits
from .plan import SweepOutput, SweepPlan
from .replay import SuffixReplay
from .shared_opening import SharedOpening, shared_length


def run_sweep(model: Any, sequences: Sequence[Sequence[int]], plan: SweepPlan) -> SweepOutput:
    """``plan``'s readouts of token id lists ``sequences``: the shared opening when the plan
    and the prompts allow it and it pays off (``shared_length``), else the suffix replay.
    Call it outside ``sl.steer``: the variants are its only edits."""
    for variant in plan.steered:
        check_fits(model, variant)
    opening = shared_length(model, sequences, plan)
    strategy = SharedOpening(model, plan, opening) if opening else SuffixReplay(model, plan)
    return strategy.run(sequences)
