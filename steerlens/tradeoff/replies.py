"""Behaviour expectation from whole replies: generate under steering and score each reply.

Wolf et al.'s ``B = Σ_{a∈aligned} P(a|q) − Σ_{a∈misaligned} P(a|q)`` with a binary scorer
becomes the mean score of greedy (or sampled) replies, +1 aligned and −1 not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.errors import SteerlensError
from ..core.types import HookedModel
from ..core.validate import check_callable, check_texts
from ..core.vector import SteeringVector, as_vector
from ..measures.refusal import is_refusal
from ..steering.context import steer
from ..steering.generation import generate
from ..steering.interventions import add
from .sweeps import check_coeffs


def _score(score: Callable[[str], Any], text: str) -> float:
    value = score(text)
    if isinstance(value, bool):
        return 1.0 if value else -1.0
    if isinstance(value, (int, float)) and -1.0 <= float(value) <= 1.0:
        return float(value)
    raise SteerlensError(
        f"score: must return a bool or a number in [-1, 1], returned {value!r} for {text[:60]!r}"
    )


@dataclass(frozen=True, eq=False)
class CompletionBehaviour:
    """Replies generated under steering, scored ±1.

    Attributes:
        table: one row per coefficient: ``coeff``, ``B`` (mean score), ``n`` (prompts).
        scores: ``[n_coeffs, n_prompts]`` score of each reply.
        replies: one row per reply: ``coeff``, ``prompt`` (index), ``reply``, ``score``.
    """

    table: pd.DataFrame
    scores: Float[Tensor, "n_coeffs n_prompts"]
    replies: pd.DataFrame


def completion_behaviour(
    model: HookedModel,
    vector: SteeringVector | Tensor,
    coeffs: Sequence[float] | Tensor,
    prompts: Sequence[str],
    *,
    score: Callable[[str], Any] = is_refusal,
    layers: int | Sequence[int] | None = None,
    normalize: bool = True,
    max_new_tokens: int = 24,
    **generate_kwargs: Any,
) -> CompletionBehaviour:
    """Behaviour expectation from whole replies: generate under ``x <- x + r·v`` and score.

    Each reply is scored +1 (aligned) or −1 by ``score`` (a bool, or a number in [-1, 1]);
    ``B(r)`` is the mean over prompts. Greedy decoding by default (as the paper measured
    refusal); pass ``do_sample=True`` to sample. Slower than the next-token readout: keep
    the prompts and coefficients few.

    Args:
        model: a TransformerLens model.
        vector: the steering vector (normalized per layer unless ``normalize=False``).
        coeffs: distinct finite coefficients.
        prompts: raw chat-formatted texts (as in a ``BehaviourSpec``).
        score: text -> bool or number in [-1, 1]; default: the keyword refusal classifier
            (a refusal phrase such as "I'm sorry" or "I can't" in the first 80 characters).
        layers: a subset of the vector's layers.
        normalize: scale each layer's direction to unit norm.
        max_new_tokens: length of each reply.
        **generate_kwargs: passed to ``sl.generate`` (e.g. ``do_sample=True``).

    Example:
        >>> out = sl.tradeoff.completion_behaviour(model, vec, [-60.0, 0.0, 60.0], spec.prompts[:8])
        >>> out.table
    """
    values = check_coeffs(coeffs)
    prompts = check_texts("prompts", prompts)
    check_callable("score", score)
    vector = as_vector(vector, layers, None).select(layers)
    vector.check_model(model, additive=True)
    if normalize:
        vector = vector.unit()
    scores = torch.empty(values.numel(), len(prompts))
    rows = []
    for i, coeff in enumerate(tqdm(values.tolist(), desc="completions", leave=False)):
        with steer(model, add(vector, coeff)):
            out = generate(
                model, prompts, max_new_tokens=max_new_tokens, chat=False, **generate_kwargs
            )
        for j, text in enumerate(out):
            scores[i, j] = _score(score, text)
            rows.append({"coeff": coeff, "prompt": j, "reply": text, "score": float(scores[i, j])})
    table = pd.DataFrame(
        {"coeff": values.tolist(), "B": scores.mean(1).tolist(), "n": len(prompts)}
    )
    return CompletionBehaviour(table, scores, pd.DataFrame(rows))
