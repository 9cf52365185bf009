"""Reentrant steering: distil a steered distribution into a vector at a later layer.

With ``v`` added at layer ``l``, record the steered next-token distributions ``p_k`` on
``concat(x, y)``; then optimize ``v'`` at ``l' > l`` to minimize ``sum_k KL(p_k || P(. | v'))``
(natural log, temperature 1), with the same Adam loop as ``optimize_one_shot``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from ..core.basis import residual_basis
from ..core.completion_batch import CompletionBatch, completion_batch
from ..core.errors import SteerlensError
from ..core.hookpoints import d_model, model_name, n_layers, normalise_layer
from ..core.tokens import completion_ids
from ..core.types import HookedModel
from ..core.validate import check_choice, check_model, check_texts, shown
from ..core.vector import SteeringVector, data_hash
from .loop import adam_loop, initial_vector
from .result import OneShotResult
from .settings import OneShotSettings, resolve
from .steered_logits import make_run

OVER = ("completion", "all")


def _first(vector: Any) -> tuple[int, torch.Tensor, SteeringVector]:
    if isinstance(vector, OneShotResult):
        vector = vector.vector
    if not isinstance(vector, SteeringVector):
        raise SteerlensError(
            f"first_vector: expected a SteeringVector or OneShotResult, got {shown(vector)}"
        )
    if len(vector.layers) != 1 or vector.site != "resid_pre":
        raise SteerlensError(
            f"first_vector: expected one layer at resid_pre, got layers {vector.layers} at "
            f"{vector.site}; select one, e.g. vec.select([l])"
        )
    layer = vector.layers[0]
    return layer, vector[layer], vector


def _all_positions(batch: CompletionBatch) -> CompletionBatch:
    """Score every real position that has a next token (the prompt's too)."""
    real = batch.mask.clone()
    real[:, -1] = False  # the last token predicts nothing in the text
    rows, cols = real.nonzero(as_tuple=True)
    return replace(batch, rows=rows, cols=cols, targets=batch.tokens[rows, cols + 1])


def _later_layer(model: Any, later_layer: Any, first_layer: int) -> int:
    later = normalise_layer(model, later_layer, "later_layer")
    if later <= first_layer:
        raise SteerlensError(
            f"later_layer: {later_layer} must come after the first vector's layer "
            f"{first_layer} (valid: {first_layer + 1}..{n_layers(model) - 1})"
        )
    return later


def reentrant(
    model: HookedModel,
    first_vector: SteeringVector | OneShotResult,
    prompt: str | Sequence[str],
    completion: str | Sequence[str],
    *,
    later_layer: int,
    over: str = "completion",
    init: Any = None,
    settings: OneShotSettings | None = None,
    **options: Any,
) -> OneShotResult:
    """Find ``v'`` at ``later_layer`` whose steered distributions match ``first_vector``'s.

    Args:
        model: a TransformerLens model.
        first_vector: the vector to distil (one layer, ``resid_pre``), added with
            coefficient 1 at ``settings.positions``, as ``optimize_one_shot`` trained it.
        prompt: raw text(s) (chat-format them first).
        completion: completion(s) ``y``; each prompt is followed by each completion.
        later_layer: where ``v'`` is added; must come after the first vector's layer.
        over: the positions ``k`` of the KL sum: ``"completion"`` (those predicting the
            completion's tokens) or ``"all"`` (every position of ``concat(x, y)``).
        init: a starting vector instead of the random one.
        settings: a ``OneShotSettings``; ``**options`` replace its fields by name, as for
            ``optimize_one_shot`` (``coldness`` excepted: the KL is at temperature 1).

    Returns:
        A ``OneShotResult`` (method ``one_shot_reentrant``) whose losses are the summed KL
        divergences (nats).

    Example:
        >>> res = sl.optimize_one_shot(model, text, promote="I'm sorry", layer=8)
        >>> later = sl.oneshot.reentrant(model, res, text, "I'm sorry", later_layer=16)
    """
    started = time.perf_counter()
    check_model(model)
    config = resolve(settings, options, exclude=("coldness",))
    first_layer, first, first_vec = _first(first_vector)
    first_vec.check_model(model, additive=True)
    later = _later_layer(model, later_layer, first_layer)
    check_choice("over", over, OVER)
    prompts = check_texts("prompt", prompt, single=True)
    completions = check_texts("completion", completion, single=True)
    start = initial_vector(d_model(model), config.starting_norm, config.seed, init, later)
    ids = [completion_ids(model, c, "completion") for c in completions]
    batch = completion_batch(model, [(p, c) for p in prompts for c in ids])
    if over == "all":
        batch = _all_positions(batch)
    where = batch.selected(config.rule)
    with torch.no_grad():
        first_run = make_run(model, batch, first_layer, where, config.cached)
        target = F.log_softmax(first_run(first).float(), -1)
    run = make_run(model, batch, later, where, config.cached)

    def loss_fn(vector: torch.Tensor) -> torch.Tensor:
        logq = F.log_softmax(run(vector).float(), dim=-1)
        return F.kl_div(logq, target, log_target=True, reduction="sum")

    vector, losses, norms, reason = adam_loop(loss_fn, start, config, desc="reentrant")
    record = {
        "kind": "reentrant",
        "layer": later,
        "first_layer": first_layer,
        "first_method": first_vec.method,
        "first_norm": float(first.norm()),
        "over": over,
        **{k: v for k, v in config.to_dict().items() if k != "coldness"},
        "init": "given" if init is not None else "random",
        "prompts": prompts,
        "completions": completions,
    }
    steering = SteeringVector(
        {later: vector},
        method="one_shot_reentrant",
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(config.rule.label()),
        params=record,
        data_hash=data_hash(prompts, completions),
    )
    seconds = round(time.perf_counter() - started, 3)
    return OneShotResult(steering, losses, norms, reason, record, seconds)
