"""``sl.steer``: interventions hooked into a model for the duration of a ``with`` block.

Each intervention becomes one TransformerLens hook per layer (``HookPoint.add_hook``), so
``model.list_hooks()`` shows them and ``model.reset_hooks()`` removes them. A position
tracker gives every hook the absolute positions of the tokens it sees, so the same tokens
are steered with and without the KV cache and in left-padded batches. For the duration of
the block, ``cache_keyword_shim`` also hands the KV cache to TransformerLens's attention under
the keyword it reads, so the model's own ``generate`` is right under transformers 5.24.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import Tensor

from ..core.basis import check_basis
from ..core.errors import SteerlensError
from ..core.hookpoints import attached, check_d_model, edit_hooks, hook_point
from ..core.tracker import PositionTracker
from ..core.types import HookedModel
from ..core.validate import check_bool, check_model
from .cache_keyword import cache_keyword_shim
from .conditional import Conditional, RowGate
from .conflicts import check_interventions, warn_conflicts
from .interventions import Intervention
from .nonfinite import NonFiniteWatch, watching
from .trace import SteeringTrace


def check_fits(model: Any, intervention: Intervention) -> None:
    """Raise unless every layer/site exists and the intervention fits ``d_model`` and the
    model's residual basis (``core.basis``), as far as it says."""
    for layer in intervention.layers:
        hook_point(model, layer, intervention.site)
    if intervention.d_model is not None:
        check_d_model("vector", intervention.d_model, model)
    check_basis(
        intervention.basis,
        model,
        exact_across_bases=intervention.basis_invariant(),
        what=repr(intervention),
    )


def steering_hook(
    intervention: Intervention,
    layer: int,
    tracker: PositionTracker,
    gate: RowGate | None = None,
    record: Callable[..., None] | None = None,
):
    """The TransformerLens hook ``fn(resid, hook)`` applying ``intervention`` at ``layer``
    (only to the rows ``gate`` lets through, if given; ``record(selected, absolute, delta)``
    sees every edit, for traces)."""

    def hook(resid: Tensor, **_: Any) -> Tensor:
        if not isinstance(resid, Tensor) or resid.ndim != 3:
            raise SteerlensError(
                f"steer: expected a [batch, pos, d_model] residual at layer {layer}, got "
                f"{getattr(resid, 'shape', type(resid))}"
            )
        rule = intervention.positions
        selected, some, every = tracker.selection(rule, *resid.shape[:2], resid.device)
        if gate is not None:
            selected = selected & gate.rows(resid.shape[0], resid.device)[:, None]
            some, every = bool(selected.any()), bool(selected.all())
        if not some:
            return resid
        edited = intervention.apply(resid, layer)
        if not every:
            edited = torch.where(selected[..., None], edited, resid)
        if record is not None:
            where = tracker.positions(*resid.shape[:2], resid.device)
            delta = (edited.float() - resid.float()).norm(dim=-1)
            record(selected, where.absolute, delta)
        return edited

    return hook


def _hooks(
    model: Any, interventions: Any, tracker: PositionTracker, trace: SteeringTrace | None
) -> tuple[list, list]:
    """``(edits, reads)``: (hook point, hook) pairs in attach order (``edit_hooks``); a
    conditional's reader precedes its edits."""
    edits, reads = [], []
    for index, each in enumerate(interventions):
        gate, inner = None, each
        if isinstance(each, Conditional):
            gate, inner = RowGate(each, tracker), each.intervention
            edits.append((hook_point(model, each.layer, each.site), gate.read_hook()))
        for layer in inner.layers:
            record = None if trace is None else partial(trace.record, index, layer)
            hook = steering_hook(inner, layer, tracker, gate, record)
            more_edits, more_reads = edit_hooks(model, layer, inner.site, hook)
            edits += more_edits
            reads += more_reads
    return edits, reads


def _unwrapped(interventions: Any) -> list[Intervention]:
    return [i.intervention if isinstance(i, Conditional) else i for i in interventions]


def check_condition(model: Any, conditional: Conditional) -> None:
    """Raise unless the condition's layer/site exists and its direction fits ``d_model``."""
    hook_point(model, conditional.layer, conditional.site)
    check_d_model("condition", conditional.direction.shape[-1], model)


@contextmanager
def steer(
    model: HookedModel,
    *interventions: Intervention | Conditional,
    on_nonfinite: str = "raise",
    trace: bool = False,
) -> Iterator[list[Intervention | Conditional] | SteeringTrace]:
    """Apply interventions inside a ``with`` block; hooks are removed on exit, always.

    Works for forward passes, ``run_with_cache`` (the cache sees the steered residual) and
    ``generate`` (positions are absolute, so the KV cache and left padding do not change
    which tokens are steered). Several interventions at one site apply in the order given;
    a ``SteeringConflictWarning`` says when a later one removes part of an earlier
    intervention's direction (``sl.steering.find_conflicts`` lists them). Any
    ``sl.steering.Intervention`` works, a subclass of your own included.

    Every forward pass inside the block is checked once for NaN or inf output (a
    coefficient too large for the dtype): ``on_nonfinite="raise"`` (default) raises
    ``SteerlensError``; ``"warn"`` gives one ``SteeringNonFiniteWarning`` and goes on.

    With ``trace=True`` the block yields a ``SteeringTrace`` (``steering.trace``): per
    forward call, each intervention's layers, rows, absolute positions edited and ``|Δx|``
    (``t.table``, ``t.figure()``); otherwise it yields the interventions.

    Example:
        >>> with sl.steer(model, sl.add(vec, 4.0, positions="generated"), trace=True) as t:
        ...     out = sl.generate(model, "How do I bake bread?", max_new_tokens=4)
        >>> t.table[["layer", "row", "position", "delta"]].head()
    """
    check_model(model)
    check_bool("trace", trace)
    if not interventions:
        raise SteerlensError(
            "interventions: expected at least one (sl.add, sl.ablate, sl.clamp, "
            "sl.steering.rotate, sl.when, or an Intervention subclass)"
        )
    plain = check_interventions(_unwrapped(interventions))
    for intervention in plain:
        check_fits(model, intervention)
    for conditional in interventions:
        if isinstance(conditional, Conditional):
            check_condition(model, conditional)
    warn_conflicts(plain)
    watch = NonFiniteWatch(on_nonfinite, ", ".join(map(repr, interventions)))
    recorder = SteeringTrace([repr(i) for i in interventions]) if trace else None
    tracker = PositionTracker(model)
    edits, reads = _hooks(model, interventions, tracker, recorder)
    handles = (
        [] if recorder is None else [model.embed.register_forward_pre_hook(recorder.count_call)]
    )
    try:
        with cache_keyword_shim(model), watching(model, watch), attached(edits + reads):
            yield list(interventions) if recorder is None else recorder
    finally:
        for handle in handles:
            handle.remove()
        tracker.remove()
