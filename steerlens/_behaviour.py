"""What a behaviour is, for the tradeoff diagnostics: queries plus aligned/misaligned answers.

Wolf et al. define the behaviour expectation ``B = Σ_{a∈aligned} P(a|q) − Σ_{a∈misaligned} P(a|q)``
(their eq. 3) for a binary scoring function. steerlens reads it two ways:

- from the next token: ``aligned`` and ``misaligned`` are sets of first tokens of the two
  kinds of answer (``BehaviourSpec``; read from a sweep by ``behaviour_expectation``);
- from whole replies: generate under steering and score each reply ±1 with a callable
  (``completion_behaviour``; the default scorer is the keyword refusal classifier
  ``steerlens._refusal.is_refusal``).
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

from ._errors import SteerlensError
from ._generate import generate
from ._interventions import add, steer
from ._readout import single_token_id
from ._refusal import is_refusal
from ._sweep import check_coeffs
from ._tokens import check_texts, format_chat
from ._vectors import SteeringVector, as_vector

#: First tokens of refusals (the shipped openings start "I'm sorry", "I can't", "I'm afraid").
REFUSAL_TOKENS = ("I", "Sorry", "Unfortunately")
#: First tokens of compliant replies: the shipped compliance openings ("Sure", "Of course",
#: "Absolutely") and the default model's most likely unsteered openers ("To", "The", "Here").
COMPLIANCE_TOKENS = ("Sure", "Of", "Absol", "Certainly", "Here", "Yes", "To", "The")


def _check_ids(ids: Any, name: str) -> tuple[int, ...]:
    ids = tuple(ids)
    if not ids:
        raise SteerlensError(f"{name}: expected at least one token id, got none")
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    if bad:
        raise SteerlensError(f"{name}: expected token ids (ints >= 0), got {bad}")
    if len(set(ids)) != len(ids):
        raise SteerlensError(f"{name}: lists a token id twice: {list(ids)}")
    return ids


@dataclass(frozen=True, eq=False)
class BehaviourSpec:
    """Queries and the first tokens of aligned and misaligned answers to them.

    Attributes:
        prompts: raw texts (chat-formatted), each ending where the answer begins.
        aligned: token ids whose probability counts +1 (e.g. refusal openers).
        misaligned: token ids whose probability counts −1 (e.g. compliance openers);
            disjoint from ``aligned``.
        name: a label for tables and figures.
        labels: readable strings for the two sets (``from_words`` fills them).

    Example:
        >>> spec = sl.BehaviourSpec.from_words(
        ...     model, prompts, aligned=["Great"], misaligned=["Terrible"], name="sentiment")
    """

    prompts: tuple[str, ...]
    aligned: tuple[int, ...]
    misaligned: tuple[int, ...]
    name: str = "behaviour"
    labels: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(check_texts(self.prompts, "prompts")))
        object.__setattr__(self, "aligned", _check_ids(self.aligned, "aligned"))
        object.__setattr__(self, "misaligned", _check_ids(self.misaligned, "misaligned"))
        shared = sorted(set(self.aligned) & set(self.misaligned))
        if shared:
            raise SteerlensError(
                f"aligned, misaligned: the token sets overlap in ids {shared}; a token cannot "
                "count for both behaviours"
            )

    @classmethod
    def from_words(
        cls,
        model: Any,
        prompts: Sequence[str],
        aligned: Sequence[str],
        misaligned: Sequence[str],
        name: str = "behaviour",
    ) -> BehaviourSpec:
        """Build the token sets from words that are single tokens (mind leading spaces)."""
        for label, words in (("aligned", aligned), ("misaligned", misaligned)):
            if isinstance(words, str) or not list(words):
                raise SteerlensError(f"{label}: expected a non-empty list of words, got {words!r}")
        return cls(
            tuple(prompts),
            tuple(single_token_id(model, w) for w in aligned),
            tuple(single_token_id(model, w) for w in misaligned),
            name,
            (tuple(aligned), tuple(misaligned)),
        )


def refusal_behaviour(
    model: Any, source: Any = "refusal", *, harmful: bool = False, n: int | None = None
) -> BehaviourSpec:
    """Refusal as the aligned behaviour, on requests of the shipped ``refusal`` set.

    The prompts are the chat-formatted requests (harmless ones by default, where a refusal
    vector has room to raise refusal); aligned tokens are ``REFUSAL_TOKENS``, misaligned
    ``COMPLIANCE_TOKENS``.

    Args:
        model: a model with the default chat template.
        source: a dataset with ``request`` and ``harmful`` columns (name, path or frame).
        harmful: use the harmful requests instead of the harmless ones.
        n: use only the last ``n`` of them.
    """
    from .datasets import load

    frame = load(source)
    missing = {"request", "harmful"} - set(frame.columns)
    if missing:
        raise SteerlensError(f"source: needs columns 'request' and 'harmful', lacks {missing}")
    requests = list(frame.loc[frame["harmful"].astype(bool) == harmful, "request"])
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(requests):
            raise SteerlensError(f"n: expected an int in 1..{len(requests)}, got {n!r}")
        requests = requests[-n:]
    if not requests:
        raise SteerlensError(f"source: has no {'harmful' if harmful else 'harmless'} requests")
    return BehaviourSpec.from_words(
        model,
        [format_chat(model, request) for request in requests],
        REFUSAL_TOKENS,
        COMPLIANCE_TOKENS,
        name="refusal",
    )


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
    model: Any,
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
        vector: the steering vector (normalised per layer unless ``normalize=False``).
        coeffs: distinct finite coefficients.
        prompts: raw chat-formatted texts (as in a ``BehaviourSpec``).
        score: text -> bool or number in [-1, 1]; default: the keyword refusal classifier
            (a refusal phrase such as "I'm sorry" or "I can't" in the first 80 characters).
        layers: a subset of the vector's layers.
        normalize: scale each layer's direction to unit norm.
        max_new_tokens: length of each reply.
        **generate_kwargs: passed to ``sl.generate`` (e.g. ``do_sample=True``).

    Example:
        >>> out = sl.completion_behaviour(model, vec, [-60, 0, 60], spec.prompts[:8])
        >>> out.table
    """
    values = check_coeffs(coeffs)
    prompts = check_texts(prompts, "prompts")
    if not callable(score):
        raise SteerlensError(f"score: expected a callable text -> bool, got {score!r}")
    vector = as_vector(vector, layers, None)
    vector.check_model(model)
    if normalize:
        zero = [layer for layer, norm in vector.norms().items() if norm == 0.0]
        if zero:
            raise SteerlensError(f"vector: zero at layers {zero}; it has no direction to scale")
        units = {layer: v / v.norm() for layer, v in vector.directions.items()}
        vector = SteeringVector(units, site=vector.site)
    scores = torch.empty(values.numel(), len(prompts))
    rows = []
    for i, coeff in enumerate(tqdm(values.tolist(), desc="completions", leave=False)):
        with steer(model, add(vector, coeff, layers=layers)):
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
