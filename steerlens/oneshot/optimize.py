"""One-shot optimized steering vectors (Dunefsky & Cohan, arXiv 2502.18862).

A vector ``v`` added at ``blocks.{layer}.hook_resid_pre`` is optimized by Adam on one (or a
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
from typing import Any

import torch

from ..core.basis import residual_basis
from ..core.completion_batch import CompletionBatch, completion_batch
from ..core.errors import SteerlensError
from ..core.hookpoints import d_model, model_name, normalise_layer
from ..core.tokens import completion_ids
from ..core.types import HookedModel
from ..core.validate import check_model, check_texts
from ..core.vector import SteeringVector, data_hash
from .loop import adam_loop, initial_vector
from .result import OneShotResult
from .settings import OneShotSettings, resolve
from .steered_logits import make_run, token_probs

GUARD = 1e-6  # inside each log, as in the paper's code


def optional_texts(name: str, value: Any) -> list[str]:
    """``None`` (no texts), one string, or a list of strings."""
    return [] if value is None else check_texts(name, value, single=True)


def completion_problem(
    model: Any, prompts: list[str], promote: list[str], suppress: list[str]
) -> tuple[CompletionBatch, torch.Tensor]:
    """Every prompt followed by every completion, and which scored tokens are suppressed."""
    completions = [(completion_ids(model, c, "promote"), False) for c in promote]
    completions += [(completion_ids(model, c, "suppress"), True) for c in suppress]
    batch = completion_batch(model, [(p, ids) for p in prompts for ids, _ in completions])
    flags = torch.tensor([s for _ in prompts for ids, s in completions for _ in ids])
    return batch, flags


def promotion_terms(probs: torch.Tensor, suppressed: torch.Tensor) -> torch.Tensor:
    """Per scored token: ``-log(p + guard)`` if promoted, ``-log(1 - p + guard)`` if
    suppressed (``probs``, ``suppressed`` and the result are ``[n]``)."""
    kept = torch.where(suppressed.to(probs.device), 1.0 - probs, probs)
    return -torch.log(kept + GUARD)


def promotion_loss(probs: torch.Tensor, suppressed: torch.Tensor) -> torch.Tensor:
    """The sum of ``promotion_terms``: the loss of one vector."""
    return promotion_terms(probs, suppressed).sum()


def loss_kind(promoted: list[str], suppressed: list[str]) -> str:
    """``"mixed"``, ``"promotion"`` or ``"suppression"``; neither given is an error."""
    if not promoted and not suppressed:
        raise SteerlensError(
            "promote, suppress: give at least one completion to promote or to suppress "
            "(both: the mixed loss)"
        )
    return "mixed" if promoted and suppressed else "promotion" if promoted else "suppression"


def one_shot_result(
    model: Any,
    trajectory: tuple[torch.Tensor, list[float], list[float], str],
    record: dict[str, Any],
    started: float,
) -> OneShotResult:
    """The ``OneShotResult`` of one optimized vector (``record``: its settings and data)."""
    vector, losses, norms, reason = trajectory
    layer, kind = record["layer"], record["kind"]
    steering = SteeringVector(
        {layer: vector},
        method=f"one_shot_{kind}",
        model_name=model_name(model),
        basis=residual_basis(model),
        position=str(record["positions"]),
        params=record,
        data_hash=data_hash(record["prompts"], record["promote"], record["suppress"]),
    )
    seconds = round(time.perf_counter() - started, 3)
    return OneShotResult(steering, losses, norms, reason, record, seconds)


def optimize_one_shot(
    model: HookedModel,
    prompt: str | Sequence[str],
    promote: str | Sequence[str] | None = None,
    suppress: str | Sequence[str] | None = None,
    *,
    layer: int,
    init: Any = None,
    settings: OneShotSettings | None = None,
    **options: Any,
) -> OneShotResult:
    """Optimize a steering vector at ``layer`` to promote and/or suppress completions.

    Each prompt is followed by each completion (prompt and completion are tokenized
    separately and their ids concatenated, so the boundary is exact); the loss sums the
    promotion terms of ``promote`` and the suppression terms of ``suppress`` over every
    prompt (see the module docstring). The vector is added at ``blocks.{layer}.hook_resid_pre``
    at ``settings.positions``; blocks before ``layer`` run once (``cached=True``).

    Args:
        model: a TransformerLens model (``TransformerBridge`` or ``HookedTransformer``).
        prompt: raw text (chat-format it first with ``sl.format_chat``), or a list of them.
        promote: completion(s) whose probability to raise.
        suppress: completion(s) whose probability to lower (both given: the mixed loss).
        layer: where the vector is added (negative counts from the end).
        init: a starting vector (``[d_model]`` tensor or ``SteeringVector`` with ``layer``)
            instead of the random one.
        settings: a ``sl.oneshot.OneShotSettings`` (default: its defaults).
        **options: any field of ``OneShotSettings`` by name, replacing ``settings``'s:
            ``lr``, ``max_iters``, ``max_norm``, ``target_loss``, ``tolerance``,
            ``starting_norm``, ``coldness``, ``positions``, ``seed``, ``cached``,
            ``progress``.

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
    config = resolve(settings, options)
    prompts = check_texts("prompt", prompt, single=True)
    promoted, suppressed = optional_texts("promote", promote), optional_texts("suppress", suppress)
    kind = loss_kind(promoted, suppressed)
    layer = normalise_layer(model, layer)
    start = initial_vector(d_model(model), config.starting_norm, config.seed, init, layer)
    batch, flags = completion_problem(model, prompts, promoted, suppressed)
    run = make_run(model, batch, layer, batch.selected(config.rule), config.cached)

    def loss_fn(vector: torch.Tensor) -> torch.Tensor:
        return promotion_loss(token_probs(run(vector), batch.targets, config.coldness), flags)

    trajectory = adam_loop(loss_fn, start, config, desc=f"one-shot {kind}")
    record = {
        "kind": kind,
        "layer": layer,
        **config.to_dict(),
        "init": "given" if init is not None else "random",
        "log_guard": GUARD,
        "prompts": prompts,
        "promote": promoted,
        "suppress": suppressed,
    }
    return one_shot_result(model, trajectory, record, started)
