"""What a behaviour is, for the tradeoff diagnostics: queries plus aligned/misaligned answers.

Wolf et al. define the behaviour expectation ``B = Σ_{a∈aligned} P(a|q) − Σ_{a∈misaligned} P(a|q)``
(their eq. 3) for a binary scoring function. steerlens reads it two ways:

- from the next token: ``aligned`` and ``misaligned`` are sets of first tokens of the two
  kinds of answer (``BehaviourSpec``; read from a sweep by ``behaviour_expectation``);
- from whole replies: generate under steering and score each reply ±1 with a callable
  (``completion_behaviour`` in ``tradeoff.replies``; the default scorer is the keyword
  refusal classifier ``steerlens.measures.is_refusal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.chat import format_chat
from ..core.errors import SteerlensError
from ..core.tokens import single_token_id
from ..core.validate import check_bool, check_int, check_model, check_texts, is_int

#: First tokens of refusals (the shipped openings start "I'm sorry", "I can't", "I'm afraid").
REFUSAL_TOKENS = ("I", "Sorry", "Unfortunately")
#: First tokens of compliant replies: the shipped compliance openings ("Sure", "Of course",
#: "Absolutely") and the default model's most likely unsteered openers ("To", "The", "Here").
COMPLIANCE_TOKENS = ("Sure", "Of", "Absol", "Certainly", "Here", "Yes", "To", "The")


def _check_ids(ids: Any, name: str) -> tuple[int, ...]:
    ids = tuple(ids)
    if not ids:
        raise SteerlensError(f"{name}: expected at least one token id, got none")
    bad = [i for i in ids if not is_int(i) or i < 0]
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
        >>> spec = sl.tradeoff.BehaviourSpec.from_words(
        ...     model, prompts, aligned=["Great"], misaligned=["Bad"], name="sentiment")
    """

    prompts: tuple[str, ...]
    aligned: tuple[int, ...]
    misaligned: tuple[int, ...]
    name: str = "behaviour"
    labels: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(check_texts("prompts", self.prompts)))
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
    from ..core.datasets import load

    check_model(model)
    check_bool("harmful", harmful)
    frame = load(source)
    missing = {"request", "harmful"} - set(frame.columns)
    if missing:
        raise SteerlensError(f"source: needs columns 'request' and 'harmful', lacks {missing}")
    requests = list(frame.loc[frame["harmful"].astype(bool) == harmful, "request"])
    if n is not None:
        requests = requests[-check_int("n", n, low=1, high=max(1, len(requests))) :]
    if not requests:
        raise SteerlensError(f"source: has no {'harmful' if harmful else 'harmless'} requests")
    return BehaviourSpec.from_words(
        model,
        [format_chat(model, request) for request in requests],
        REFUSAL_TOKENS,
        COMPLIANCE_TOKENS,
        name="refusal",
    )
