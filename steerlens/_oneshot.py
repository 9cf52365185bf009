"""One-shot optimised steering vectors (Dunefsky & Cohan, arXiv 2502.18862; DESIGN section 5).

A vector ``v`` added at ``blocks.{layer}.hook_resid_pre`` is optimised by Adam on one (or a
few) prompts so that the model promotes and/or suppresses given completions. With
``p_k = softmax(coldness * logits)[y_{k+1}]`` at the position predicting ``y_{k+1}``:

- promotion:   ``L+ = -sum_k log(p_k + 1e-6)``
- suppression: ``L- = -sum_k log(1 - p_k + 1e-6)``
- mixed:       promotion terms for ``promote`` plus suppression terms for ``suppress``

summed over tokens, completions and prompts (not averaged), in natural log (the paper
reports log10; its code uses natural logs, as here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from ._completion_batch import completion_batch, completion_ids
from ._errors import SteerlensError
from ._hooks import check_model, d_model, model_name, normalise_layer
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
from ._steered_logits import make_run, token_probs
from ._tokens import check_texts
from ._vectors import SteeringVector, data_hash

GUARD = 1e-6  # inside each log, as in the paper's code


def _texts(value: Any, name: str, allow_none: bool = False) -> list[str]:
    if value is None and allow_none:
        return []
    if isinstance(value, str):
        value = [value]
    return check_texts(value, name)


def rule_label(positions: Any) -> Any:
    """A JSON-friendly form of a ``positions=`` argument."""
    if isinstance(positions, (str, int)):
        return positions
    if isinstance(positions, torch.Tensor):
        return [bool(v) for v in positions.tolist()]
    return list(positions)


def optimize_one_shot(
    model: Any,
    prompt: str | Sequence[str],
    promote: str | Sequence[str] | None = None,
    suppress: str | Sequence[str] | None = None,
    *,
    layer: int,
    lr: float = 0.1,
    max_iters: int = 50,
    max_norm: float | None = None,
    target_loss: float | None = None,
    tolerance: float | None = 1e-6,
    starting_norm: float = 1.0,
    coldness: float = 0.7,
    positions: Any = "all",
    seed: int = 0,
    init: Any = None,
    cached: bool = True,
    progress: bool | None = None,
) -> OneShotResult:
    """Optimise a steering vector at ``layer`` to promote and/or suppress completions.

    Each prompt is followed by each completion (prompt and completion are tokenised
    separately and their ids concatenated, so the boundary is exact); the loss sums the
    promotion terms of ``promote`` and the suppression terms of ``suppress`` over every
    prompt (see the module docstring). The vector is added at ``blocks.{layer}.hook_resid_pre``
    at ``positions``; blocks before ``layer`` run once (``cached=True``).

    Args:
        model: a TransformerLens model (``TransformerBridge`` or ``HookedTransformer``).
        prompt: raw text (chat-format it first with ``sl.format_chat``), or a list of them.
        promote: completion(s) whose probability to raise.
        suppress: completion(s) whose probability to lower (both given: the mixed loss).
        layer: where the vector is added (negative counts from the end).
        lr: Adam learning rate (betas 0.9, 0.999).
        max_iters: the most optimiser steps (0: only evaluate the initial vector).
        max_norm: after each step, rescale ``v`` to this norm if it is longer (None: no cap).
        target_loss: stop once the loss is below this (None: never).
        tolerance: stop once the loss changes by less than this between steps (None: never).
        starting_norm: norm of the random initial vector.
        coldness: the logits are multiplied by this before the softmax (paper: 0.7).
        positions: where ``v`` is added during optimisation: ``"all"``, ``"prompt"``,
            ``"generated"`` (the completion's tokens), or indices (non-negative from the
            first token, negative from the end of the prompt), as for ``sl.add``.
        seed: seed of the random initial direction.
        init: a starting vector (``[d_model]`` tensor or ``SteeringVector`` with ``layer``)
            instead of the random one.
        cached: run blocks before ``layer`` once (True) or the full model every step
            (False, the naive reference; same losses, slower).
        progress: show a progress bar (default: yes).

    Returns:
        A ``OneShotResult``: ``.vector`` (method ``one_shot_promotion``, ``_suppression`` or
        ``_mixed``), ``.losses`` and ``.norms`` per visited vector, ``.stop_reason``,
        ``.settings``, ``.seconds``; ``.figure()`` plots loss and norm.

    Example:
        >>> text = sl.format_chat(model, "How do I bake bread?")
        >>> res = sl.optimize_one_shot(model, text, promote="I'm sorry", layer=12)
        >>> res.losses[0], res.losses[-1], res.vector
    """
    started = time.perf_counter()
    check_model(model)
    prompts = _texts(prompt, "prompt")
    promoted = _texts(promote, "promote", allow_none=True)
    suppressed = _texts(suppress, "suppress", allow_none=True)
    if not promoted and not suppressed:
        raise SteerlensError(
            "promote, suppress: give at least one completion to promote or to suppress "
            "(both: the mixed loss)"
        )
    layer = normalise_layer(model, layer)
    loop = LoopSettings(lr, max_iters, max_norm, target_loss, tolerance)
    check_number("starting_norm", starting_norm, low=0.0)
    check_number("coldness", coldness, low=0.0)
    check_int("seed", seed, 0)
    rule = position_rule(positions)
    completions = [(completion_ids(model, c, "promote"), False) for c in promoted]
    completions += [(completion_ids(model, c, "suppress"), True) for c in suppressed]
    pairs = [(p, ids) for p in prompts for ids, _ in completions]
    batch = completion_batch(model, pairs)
    where = batch.selected(rule)
    run = make_run(model, batch, layer, where, cached)
    flags = torch.tensor([s for _ in prompts for ids, s in completions for _ in ids])

    def loss_fn(vector: torch.Tensor) -> torch.Tensor:
        probs = token_probs(run(vector), batch.targets, coldness)
        flags_here = flags.to(probs.device)
        kept = torch.where(flags_here, 1.0 - probs, probs)
        return -torch.log(kept + GUARD).sum()

    kind = "mixed" if promoted and suppressed else "promotion" if promoted else "suppression"
    start = initial_vector(d_model(model), starting_norm, seed, init, layer)
    vector, losses, norms, reason = adam_loop(
        loss_fn, start, loop, desc=f"one-shot {kind}", progress=progress
    )
    settings = {
        "kind": kind,
        "layer": layer,
        **asdict(loop),
        "starting_norm": float(starting_norm),
        "coldness": float(coldness),
        "positions": rule_label(positions),
        "seed": seed,
        "init": "given" if init is not None else "random",
        "cached": bool(cached),
        "log_guard": GUARD,
        "prompts": prompts,
        "promote": promoted,
        "suppress": suppressed,
    }
    steering = SteeringVector(
        {layer: vector},
        method=f"one_shot_{kind}",
        model_name=model_name(model),
        position=str(rule_label(positions)),
        params=settings,
        data_hash=data_hash(prompts, promoted, suppressed),
    )
    return OneShotResult(steering, losses, norms, reason, settings, timed(started))
