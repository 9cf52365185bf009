"""The sweep engine: many prompts under many interventions (a coefficient family, or any list
of variants), computing only what differs between them.

A ``SweepPlan`` says what to run (its ``variants``, one intervention each, ``None`` for the
unsteered model) and what to keep of each final residual (``readout``); ``run_sweep`` runs it
by one of two strategies, each in its own module: the suffix replay (``replay``: the blocks
below the first steered layer once per batch of prompts) or the shared opening
(``shared_opening``: the tokens every prompt opens with once per variant, through the KV
cache). ``RowVariants`` (``rows``) applies each variant's ``Intervention.apply`` to its own
rows of a pass. ``ReplayBatch`` is the replay's per-batch piece, reused wherever a residual is
edited at one layer many times (the one-shot optimizer).

The research lines use it: ``sl.tradeoff.sweep`` (coefficients), the value-entanglement
ratings (ablations), the one-shot optimizer (``ReplayBatch``).
"""

from .plan import SweepOutput as SweepOutput
from .plan import SweepPlan as SweepPlan
from .plan import Variant as Variant
from .replay import ReplayBatch as ReplayBatch
from .run import run_sweep as run_sweep
