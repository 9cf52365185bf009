"""Many one-shot vectors at once: one vector per prompt, one batched forward and backward.

Each prompt gets its own vector, optimized exactly as ``optimize_one_shot`` would optimize it
alone (same loss, start, Adam and stopping rules), but all of them run in one left-padded
batch: row ``i``'s loss depends only on vector ``i`` (rows never attend to each other), so
the gradient of the summed loss is every row's own gradient. A row that stops is frozen and
leaves the batch (its prefix rows are dropped, not recomputed), so later steps only run the
prompts still optimizing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.hookpoints import d_model, normalise_layer
from ..core.types import HookedModel
from ..core.validate import check_model, check_texts
from .loop import adam_rows, initial_vector
from .optimize import (
    GUARD,
    completion_problem,
    loss_kind,
    one_shot_result,
    optional_texts,
    promotion_terms,
)
from .result import OneShotResult
from .settings import OneShotSettings, resolve
from .steered_logits import make_run, token_probs


def initial_rows(
    model: Any, n_prompts: int, config: OneShotSettings, init: Any, layer: int
) -> Float[Tensor, "n_prompts d_model"]:
    """Every row's start: ``optimize_one_shot``'s random one (the same seed for every row),
    one ``init`` for all rows, or a sequence (or ``[n_prompts, d_model]`` tensor) of them."""
    width = d_model(model)
    if init is None or not isinstance(init, Sequence | Tensor) or getattr(init, "ndim", 2) == 1:
        one = initial_vector(width, config.starting_norm, config.seed, init, layer)
        return one.expand(n_prompts, width).clone()
    if len(init) != n_prompts:
        raise SteerlensError(
            f"init: expected one starting vector per prompt ({n_prompts}), got {len(init)}"
        )
    return torch.stack([initial_vector(width, 1.0, 0, row, layer) for row in init])


def row_losses(
    full: Any, flags: Tensor, per_prompt: int, coldness: float
) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss function ``adam_rows`` needs: each active prompt's summed loss ``[k]``.

    ``full`` runs the whole batch (prompt ``i`` owns rows ``i * per_prompt ..``, one per
    completion); when the active prompts change, it is narrowed to theirs once (``take``).
    """
    n_rows = full.batch.tokens.shape[0]
    narrowed: dict[tuple[int, ...], tuple[Any, Tensor]] = {}

    def loss_fn(vectors: Tensor, active: Tensor) -> Tensor:
        key = tuple(active.tolist())
        if key not in narrowed:
            rows = (active[:, None] * per_prompt + torch.arange(per_prompt)).flatten()
            run = full if len(rows) == n_rows else full.take(rows)
            narrowed.clear()
            narrowed[key] = (run, flags[torch.isin(full.batch.rows, rows)])
        run, kept_flags = narrowed[key]
        logits = run(vectors.repeat_interleave(per_prompt, 0))
        terms = promotion_terms(token_probs(logits, run.batch.targets, coldness), kept_flags)
        owner = run.batch.rows.to(terms.device) // per_prompt
        return terms.new_zeros(len(key)).index_add(0, owner, terms)

    return loss_fn


def optimize_batch(
    model: HookedModel,
    prompts: Sequence[str],
    promote: str | Sequence[str] | None = None,
    suppress: str | Sequence[str] | None = None,
    *,
    layer: int,
    init: Any = None,
    settings: OneShotSettings | None = None,
    **options: Any,
) -> list[OneShotResult]:
    """One steering vector per prompt, optimized together in one batch (module docstring).

    Args:
        model: a TransformerLens model.
        prompts: raw texts (chat-format them first), one vector each.
        promote, suppress: completion(s) to promote and/or suppress after every prompt.
        layer: where the vectors are added (negative counts from the end).
        init: a starting vector for every row, or a sequence of ``n_prompts`` of them
            (``[d_model]`` tensors or ``SteeringVector``s), or a ``[n_prompts, d_model]``
            tensor; default: ``optimize_one_shot``'s random start for each.
        settings, **options: as for ``optimize_one_shot`` (stopping rules apply per row).

    Returns:
        One ``OneShotResult`` per prompt, equal (to float tolerance) to
        ``optimize_one_shot(model, prompt, ...)`` from the same start; each ``.seconds`` is
        the whole batch's wall time.

    Example:
        >>> texts = [sl.format_chat(model, q) for q in ["Bake bread?", "Fix a bike?"]]
        >>> results = sl.oneshot.optimize_batch(model, texts, promote="I'm sorry", layer=12)
        >>> [r.final_loss for r in results]
    """
    started = time.perf_counter()
    check_model(model)
    config = resolve(settings, options)
    prompts = check_texts("prompts", prompts)
    promoted, suppressed = optional_texts("promote", promote), optional_texts("suppress", suppress)
    kind = loss_kind(promoted, suppressed)
    layer = normalise_layer(model, layer)
    starts = initial_rows(model, len(prompts), config, init, layer)
    batch, flags = completion_problem(model, prompts, promoted, suppressed)
    per_prompt = len(promoted) + len(suppressed)  # batch rows (completions) of each prompt
    run = make_run(model, batch, layer, batch.selected(config.rule), config.cached)
    loss_fn = row_losses(run, flags, per_prompt, config.coldness)
    trajectories = adam_rows(loss_fn, starts, config, desc=f"one-shot {kind} x{len(prompts)}")
    results = []
    for prompt, trajectory in zip(prompts, trajectories, strict=True):
        record = {
            "kind": kind,
            "layer": layer,
            **config.to_dict(),
            "init": "given" if init is not None else "random",
            "log_guard": GUARD,
            "prompts": [prompt],
            "promote": promoted,
            "suppress": suppressed,
            "batch_size": len(prompts),
        }
        results.append(one_shot_result(model, trajectory, record, started))
    return results
