"""Reentrant steering: distil a steered distribution into a vector at a later layer.

With ``v`` added at layer ``l`` (DESIGN section 5), record the steered next-token
distributions ``p_k`` on ``concat(x, y)``; then optimise ``v'`` at ``l' > l`` to minimise
``sum_k KL(p_k || P(. | v'))`` (natural log, temperature 1), with the same Adam loop as
``optimize_one_shot``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import torch
import torch.nn.functional as F

from ._completion_batch import CompletionBatch, completion_batch, completion_ids
from ._errors import SteerlensError
from ._hooks import check_model, d_model, model_name, normalise_layer
from ._oneshot import _texts, rule_label
from ._optimizer import (
    LoopSettings,
    OneShotResult,
    adam_loop,
    check_int,
    check_number,
    initial_vector,
    timed,
)
from ._positions import position_rule
from ._steered_logits import make_run
from ._vectors import SteeringVector, data_hash

OVER = ("completion", "all")


def _first(vector: Any) -> tuple[int, torch.Tensor, SteeringVector]:
    if isinstance(vector, OneShotResult):
        vector = vector.vector
    if not isinstance(vector, SteeringVector):
        raise SteerlensError(
            f"first_vector: expected a SteeringVector or OneShotResult, got {type(vector).__name__}"
        )
    if len(vector.layers) != 1 or vector.site != "resid_pre":
        raise SteerlensError(
            f"first_vector: expected one layer at resid_pre, got layers {vector.layers} at "
            f"{vector.site}; select one, e.g. SteeringVector({{l: vec[l]}})"
        )
    layer = vector.layers[0]
    return layer, vector[layer], vector


def _all_positions(batch: CompletionBatch) -> CompletionBatch:
    """Score every real position that has a next token (the prompt's too)."""
    real = batch.mask.clone()
    real[:, -1] = False  # the last token predicts nothing in the text
    rows, cols = real.nonzero(as_tuple=True)
    return replace(batch, rows=rows, cols=cols, targets=batch.tokens[rows, cols + 1])


def reentrant(
    model: Any,
    first_vector: SteeringVector | OneShotResult,
    prompt: str | Sequence[str],
    completion: str | Sequence[str],
    *,
    later_layer: int,
    over: str = "completion",
    lr: float = 0.1,
    max_iters: int = 50,
    max_norm: float | None = None,
    target_loss: float | None = None,
    tolerance: float | None = 1e-6,
    starting_norm: float = 1.0,
    positions: Any = "all",
    seed: int = 0,
    init: Any = None,
    cached: bool = True,
    progress: bool | None = None,
) -> OneShotResult:
    """Find ``v'`` at ``later_layer`` whose steered distributions match ``first_vector``'s.

    Args:
        model: a TransformerLens model.
        first_vector: the vector to distil (one layer, ``resid_pre``), added with
            coefficient 1 at ``positions``, as ``optimize_one_shot`` trained it.
        prompt: raw text(s) (chat-format them first).
        completion: completion(s) ``y``; each prompt is followed by each completion.
        later_layer: where ``v'`` is added; must come after the first vector's layer.
        over: the positions ``k`` of the KL sum: ``"completion"`` (those predicting the
            completion's tokens) or ``"all"`` (every position of ``concat(x, y)``).
        lr, max_iters, max_norm, target_loss, tolerance, starting_norm, seed, init,
            cached, progress: as for ``optimize_one_shot``.
        positions: where both vectors are added (as for ``optimize_one_shot``).

    Returns:
        A ``OneShotResult`` (method ``one_shot_reentrant``) whose losses are the summed KL
        divergences (nats).

    Example:
        >>> res = sl.optimize_one_shot(model, text, promote="I'm sorry", layer=8)
        >>> later = sl.reentrant(model, res, text, "I'm sorry", later_layer=16)
    """
    started = time.perf_counter()
    check_model(model)
    first_layer, first, first_vec = _first(first_vector)
    first_vec.check_model(model)
    later = normalise_layer(model, later_layer)
    if later <= first_layer:
        raise SteerlensError(
            f"later_layer: {later_layer} must come after the first vector's layer "
            f"{first_layer} (valid: {first_layer + 1}..{model.cfg.n_layers - 1})"
        )
    if over not in OVER:
        raise SteerlensError(f"over: expected one of {OVER}, got {over!r}")
    prompts = _texts(prompt, "prompt")
    completions = _texts(completion, "completion")
    loop = LoopSettings(lr, max_iters, max_norm, target_loss, tolerance)
    check_number("starting_norm", starting_norm, low=0.0)
    check_int("seed", seed, 0)
    rule = position_rule(positions)
    ids = [completion_ids(model, c, "completion") for c in completions]
    batch = completion_batch(model, [(p, c) for p in prompts for c in ids])
    if over == "all":
        batch = _all_positions(batch)
    where = batch.selected(rule)
    with torch.no_grad():
        target = F.log_softmax(make_run(model, batch, first_layer, where, cached)(first), -1)
    run = make_run(model, batch, later, where, cached)

    def loss_fn(vector: torch.Tensor) -> torch.Tensor:
        logq = F.log_softmax(run(vector).float(), dim=-1)
        return F.kl_div(logq, target, log_target=True, reduction="sum")

    start = initial_vector(d_model(model), starting_norm, seed, init, later)
    vector, losses, norms, reason = adam_loop(
        loss_fn, start, loop, desc="reentrant", progress=progress
    )
    settings = {
        "kind": "reentrant",
        "layer": later,
        "first_layer": first_layer,
        "first_method": first_vec.method,
        "first_norm": float(first.norm()),
        "over": over,
        **asdict(loop),
        "starting_norm": float(starting_norm),
        "positions": rule_label(positions),
        "seed": seed,
        "init": "given" if init is not None else "random",
        "cached": bool(cached),
        "prompts": prompts,
        "completions": completions,
    }
    steering = SteeringVector(
        {later: vector},
        method="one_shot_reentrant",
        model_name=model_name(model),
        position=str(rule_label(positions)),
        params=settings,
        data_hash=data_hash(prompts, completions),
    )
    return OneShotResult(steering, losses, norms, reason, settings, timed(started))
