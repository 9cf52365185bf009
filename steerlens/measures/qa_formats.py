"""Prompt formats for multiple-choice questions read from the next-token distribution.

A format turns one question into ``(prompt, answer strings)``: the prompt ends right before
the answer, and the first token of each answer string is that option's candidate token.
Measured accuracies of each on the default model are on the docs page *Helpfulness*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.chat import format_chat

Format = Callable[[Any, str, Sequence[str]], tuple[str, list[str]]]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _capitalise(word: str) -> str:
    return word[:1].upper() + word[1:]


def words_format(model: Any, question: str, choices: Sequence[str]) -> tuple[str, list[str]]:
    """Options listed in the question; the reply starts with the option word (capitalized)."""
    message = f"{question}\nOptions: {', '.join(choices)}.\nAnswer with one word."
    return format_chat(model, message), [_capitalise(c) for c in choices]


def letters_format(model: Any, question: str, choices: Sequence[str]) -> tuple[str, list[str]]:
    """Options lettered A, B, C, D; the reply starts with the letter."""
    listing = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    message = f"{question}\n{listing}\nAnswer with the letter of the correct option."
    return format_chat(model, message), list(LETTERS[: len(choices)])


def cloze_format(model: Any, question: str, choices: Sequence[str]) -> tuple[str, list[str]]:
    """The bare question, no options shown; the reply starts with the option word."""
    return format_chat(model, question), [_capitalise(c) for c in choices]


def answer_format(model: Any, question: str, choices: Sequence[str]) -> tuple[str, list[str]]:
    """The bare question; the reply is prefilled with ``Answer:``, then `` option``."""
    return format_chat(model, question) + "Answer:", [" " + c for c in choices]


# Worked examples for the few-shot format (not in the shipped set; a test checks).
SHOTS = (
    ("What is the capital city of Chile?", "Santiago"),
    ("How many legs does a bird have?", "two"),
    ("What colour is coal?", "black"),
)


def fewshot_format(model: Any, question: str, choices: Sequence[str]) -> tuple[str, list[str]]:
    """Three worked examples as earlier chat turns (``Answer: Santiago``), then the question;
    the reply is prefilled with ``Answer:``, then `` option``."""
    messages = []
    for shot, reply in SHOTS:
        messages += [
            {"role": "user", "content": shot},
            {"role": "assistant", "content": f"Answer: {reply}"},
        ]
    messages.append({"role": "user", "content": question})
    return format_chat(model, messages) + "Answer:", [" " + c for c in choices]


FORMATS: dict[str, Format] = {
    "fewshot": fewshot_format,
    "answer": answer_format,
    "cloze": cloze_format,
    "words": words_format,
    "letters": letters_format,
}
DEFAULT_FORMAT = "fewshot"
