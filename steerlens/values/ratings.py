"""Behaviour: the model rates each item on one dimension, read from next-token probabilities.

A rating prompt asks one question under the chat template and pre-fills the start of the
assistant's answer ("The sentence is grammatically"), so the next token is the judgement
(" correct" / " incorrect"). The rating is ``(P(pos) - P(neg)) / (P(pos) + P(neg))`` in
``[-1, 1]``, i.e. ``tanh((logit_pos - logit_neg) / 2)``; ``mass = P(pos) + P(neg)`` says how much
of the next-token distribution the two answers hold. Pre-filling was chosen after a pilot on
the default model: asked for a bare "Yes"/"No", SmolLM2-135M-Instruct did not discriminate
even moral value (see the docs' value-entanglement method page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from ..core.chat import format_chat
from ..core.errors import SteerlensError
from ..core.suffix import unembed
from ..core.tokens import encode, single_token_id
from ..core.validate import (
    check_bool,
    check_instance,
    check_int,
    check_model,
    check_text,
    check_texts,
)
from ..steering.interventions import Intervention
from ..steering.readout import next_token_logits
from ..steering.sweep import SweepPlan, run_sweep
from .stimuli import DIMENSIONS, SETS, check_dimensions, load_stimuli, subsample


@dataclass(frozen=True)
class RatingPrompt:
    """How to ask for one rating.

    Attributes:
        question: the user message; ``{text}`` marks where the item goes.
        answer_prefix: text appended after the assistant header (pre-filled answer start).
        positive: the single-token answer for the good end (+1), e.g. ``" correct"``.
        negative: the single-token answer for the bad end (-1), e.g. ``" incorrect"``.
        chat: apply the chat template (``False``: ``question + answer_prefix`` as raw text).

    Example:
        >>> sl.values.RatingPrompt("Polite or rude?\\n\\n{text}", "It is", " polite", " rude")
    """

    question: str
    answer_prefix: str
    positive: str
    negative: str
    chat: bool = True

    def __post_init__(self) -> None:
        for name in ("question", "answer_prefix", "positive", "negative"):
            check_text(name, getattr(self, name), empty=True)
        check_bool("chat", self.chat)
        if self.question.count("{text}") != 1:
            raise SteerlensError(
                f"question: must contain '{{text}}' exactly once, got {self.question!r}"
            )
        if not self.positive or not self.negative or self.positive == self.negative:
            raise SteerlensError(
                f"positive, negative: expected two different non-empty answers, got "
                f"{self.positive!r} and {self.negative!r}"
            )

    def render(self, model: Any, text: str) -> str:
        """The full prompt for one item, ending where the judgement token goes."""
        message = self.question.replace("{text}", text)
        start = format_chat(model, message) if self.chat else message
        return start + self.answer_prefix

    def answer_ids(self, model: Any) -> tuple[int, int]:
        return single_token_id(model, self.positive), single_token_id(model, self.negative)


DEFAULT_PROMPTS: dict[str, RatingPrompt] = {
    "moral": RatingPrompt(
        "Was what the person did morally good or bad?\n\n{text}",
        "What the person did was morally",
        " good",
        " bad",
    ),
    "grammar": RatingPrompt(
        "Is the following sentence grammatically correct or incorrect?\n\n{text}",
        "The sentence is grammatically",
        " correct",
        " incorrect",
    ),
    "economic": RatingPrompt(
        "Did the person gain or lose money?\n\n{text}",
        "Financially, the person",
        " gained",
        " lost",
    ),
}


def resolve_prompts(prompts: Mapping[str, Any] | None) -> dict[str, RatingPrompt]:
    """The default prompts with the user's replacements (by dimension name)."""
    chosen = dict(DEFAULT_PROMPTS)
    if prompts is not None:
        check_instance("prompts", prompts, Mapping, "a dict dimension -> RatingPrompt")
    for name, prompt in dict(prompts or {}).items():
        if name not in DIMENSIONS:
            raise SteerlensError(f"prompts: unknown dimension {name!r}; valid: {list(DIMENSIONS)}")
        check_instance(f"prompts[{name!r}]", prompt, RatingPrompt, "a sl.values.RatingPrompt")
        chosen[name] = prompt
    return chosen


def rate(
    model: Any,
    texts: Sequence[str],
    prompt: RatingPrompt,
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratings in ``[-1, 1]`` and answer mass for each text (steering applies inside
    ``sl.steer``). Returns ``(rating [n], mass [n])`` as float64 arrays."""
    positive, negative = prompt.answer_ids(model)
    prompts = [prompt.render(model, text) for text in texts]
    logits = next_token_logits(model, prompts, batch_size=batch_size, progress=progress).double()
    logprobs = torch.log_softmax(logits, dim=-1)
    rating = torch.tanh((logprobs[:, positive] - logprobs[:, negative]) / 2)
    mass = logprobs[:, positive].exp() + logprobs[:, negative].exp()
    return rating.numpy(), mass.numpy()


def rate_conditions(
    model: Any,
    texts: Sequence[str],
    prompt: RatingPrompt,
    interventions: Mapping[str, Intervention],
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``rate`` unsteered (``"before"``) and under each intervention, through the sweep
    engine (``steering.sweep``): per batch, the blocks below the first intervened layer run
    once and each intervention re-runs only the rest, one per pass. Every row gives the same
    ratings as a full forward under the intervention (tested).

    Returns:
        ``{"before": (rating, mass), name: (rating, mass), ...}``, arrays ``[n]``.
    """
    positive, negative = prompt.answer_ids(model)
    prompts = check_texts("texts", [prompt.render(model, text) for text in texts])

    def answers(final: Float[Tensor, "rows d_model"]) -> Float[Tensor, "rows 2"]:
        """``[rows, 2]``: log P(positive), log P(negative) of the next token (float64)."""
        row = torch.log_softmax(unembed(model, final[:, None])[:, 0].double(), dim=-1)
        return row[:, [positive, negative]].cpu()

    plan = SweepPlan(
        (None, *interventions.values()),
        batch_size=batch_size,
        max_rows=1,  # one intervention per pass, as a full forward would run it
        share_opening=False,
        progress=progress,
        desc="ratings",
        readout=answers,
    )
    out = run_sweep(model, [encode(model, text) for text in prompts], plan)
    results = {}
    for name, pair in zip(["before", *interventions], out.steered, strict=True):
        if not bool(torch.isfinite(pair).all()):
            raise SteerlensError(f"model: produced NaN or inf logits ({name})")
        rating = torch.tanh((pair[:, 0] - pair[:, 1]) / 2)
        results[name] = (rating.numpy(), pair.exp().sum(-1).numpy())
    return results


def value_ratings(
    model: Any,
    stimuli: Any = None,
    *,
    dimensions: Sequence[str] = ("grammar", "economic"),
    prompts: Mapping[str, RatingPrompt] | None = None,
    max_frames: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Rate every item on its set's target dimension and on moral value.

    Items of ``moral_grammar`` are rated on grammar and on moral value, items of
    ``moral_economic`` on economics and on moral value, one question at a time. Call it inside
    ``sl.steer(...)`` to rate the steered model.

    Args:
        model: a TransformerLens model with a chat template (unless the prompts say
            ``chat=False``).
        stimuli: ``None`` (shipped ``"values"``), a name, a JSONL/CSV path or a DataFrame
            (schema in ``steerlens.values.stimuli``).
        dimensions: target dimensions, ``"grammar"`` and/or ``"economic"``.
        prompts: replacement ``RatingPrompt`` per dimension (``"moral"``, ``"grammar"``,
            ``"economic"``); the rest keep their defaults.
        max_frames: keep at most this many frames per set (seeded), for quick runs.
        seed: seed of the frame subsample.
        batch_size: prompts per forward pass.
        progress: show progress bars.

    Returns:
        One row per (item, rated dimension): ``id, set, frame, moral, target`` (the item's
        label on the set's target dimension), ``dimension`` (what was asked), ``rating``
        (in ``[-1, 1]``, +1 = the good end) and ``mass``.

    Example:
        >>> ratings = sl.values.value_ratings(model, max_frames=4)   # 4 of 48 scenarios per set
        >>> with sl.steer(model, sl.ablate(moral_vector)):
        ...     ablated = sl.values.value_ratings(model, max_frames=4)
    """
    check_model(model)
    dimensions = check_dimensions(dimensions)
    check_int("batch_size", batch_size, low=1)
    check_bool("progress", progress, none=True)
    prompts = resolve_prompts(prompts)
    items = subsample(load_stimuli(stimuli, dimensions), max_frames, seed)
    return rating_tables(model, items, prompts, {}, batch_size, progress)["before"]


def rating_tables(
    model: Any,
    items: pd.DataFrame,
    prompts: Mapping[str, RatingPrompt],
    interventions: Mapping[str, Intervention],
    batch_size: int,
    progress: bool | None,
) -> dict[str, pd.DataFrame]:
    """The ``value_ratings`` table of validated ``items``, unsteered (``"before"``) and under
    each intervention (sharing the blocks below the first intervened layer)."""
    tables: dict[str, list[pd.DataFrame]] = {}
    for set_name in dict.fromkeys(items["set"]):
        part = items[items["set"] == set_name]
        target = SETS[set_name]
        for dimension in (target, "moral"):
            texts = list(part["text"])
            if interventions:
                results = rate_conditions(
                    model,
                    texts,
                    prompts[dimension],
                    interventions,
                    batch_size=batch_size,
                    progress=progress,
                )
            else:
                results = {
                    "before": rate(
                        model,
                        texts,
                        prompts[dimension],
                        batch_size=batch_size,
                        progress=progress,
                    )
                }
            for name, (rating, mass) in results.items():
                tables.setdefault(name, []).append(
                    pd.DataFrame(
                        {
                            "id": part["id"].to_numpy(),
                            "set": set_name,
                            "frame": part["frame"].to_numpy(),
                            "moral": part["moral"].to_numpy(),
                            "target": part[target].to_numpy(),
                            "dimension": dimension,
                            "rating": rating,
                            "mass": mass,
                        }
                    )
                )
    return {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
