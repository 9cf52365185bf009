"""Chat formatting and padding-aware tokenisation (never mutates the user's tokenizer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from ._errors import SteerlensError


def get_tokenizer(model: Any) -> Any:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise SteerlensError("model: has no tokenizer; steerlens needs one to read text")
    return tokenizer


def format_chat(
    model: Any,
    message: str | Sequence[dict[str, str]],
    *,
    system: str | None = None,
    add_generation_prompt: bool = True,
) -> str:
    """Apply the model's chat template to a user message (or a list of chat messages).

    Args:
        model: a TransformerLens model whose tokenizer has a chat template.
        message: the user's message, or messages as ``[{"role": ..., "content": ...}]``.
        system: an optional system prompt put first.
        add_generation_prompt: end with the assistant header, ready for the reply.

    Returns:
        The formatted text (raw text ready for the extractors and ``project``).

    Example:
        >>> text = sl.format_chat(model, "How do I bake bread?")
    """
    tokenizer = get_tokenizer(model)
    if getattr(tokenizer, "chat_template", None) is None:
        raise SteerlensError(
            "model: its tokenizer has no chat template; pass raw text (chat=False) instead"
        )
    if isinstance(message, str):
        messages = [{"role": "user", "content": message}]
    else:
        messages = [dict(m) for m in message]
        if not messages or any(set(m) != {"role", "content"} for m in messages):
            raise SteerlensError(
                "message: expected a string or a non-empty list of {'role', 'content'} dicts, "
                f"got {message!r}"
            )
    if system is not None:
        messages = [{"role": "system", "content": system}, *messages]
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def _bos_id(model: Any) -> int | None:
    if not getattr(model.cfg, "default_prepend_bos", True):
        return None
    return get_tokenizer(model).bos_token_id


def encode(model: Any, text: str) -> list[int]:
    """Token ids of one text, with the model's BOS token prepended unless already there."""
    if not isinstance(text, str):
        raise SteerlensError(f"texts: expected strings, got {type(text).__name__}: {text!r}")
    ids = list(get_tokenizer(model)(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise SteerlensError(f"texts: {text!r} tokenises to nothing")
    bos = _bos_id(model)
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx is not None and len(ids) > n_ctx:
        raise SteerlensError(
            f"texts: a text of {len(ids)} tokens is longer than the model's context of "
            f"{n_ctx} tokens: {text[:60]!r}..."
        )
    return ids


def pad_id(model: Any) -> int:
    tokenizer = get_tokenizer(model)
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def left_pad(
    model: Any, sequences: Sequence[Sequence[int]]
) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Left-pad token id lists into a batch; returns (tokens, attention_mask)."""
    width = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), width), pad_id(model), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, ids in enumerate(sequences):
        tokens[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = True
    return tokens, mask


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """Validate a non-empty list of strings (a bare string is refused, not split)."""
    if isinstance(texts, str):
        raise SteerlensError(f"{name}: expected a list of strings, got a single string {texts!r}")
    texts = list(texts)
    if not texts:
        raise SteerlensError(f"{name}: expected at least one text, got an empty list")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise SteerlensError(f"{name}: expected strings, got {type(bad[0]).__name__}: {bad[0]!r}")
    return texts


def answer_pairs(
    model: Any,
    prompts: Sequence[str],
    positive_answers: Sequence[str],
    negative_answers: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Contrast two assistant answers under the same chat prompt.

    Each prompt is chat-formatted (``format_chat``) and each answer appended to it, so that
    extractors see texts that differ only in the answer.

    Args:
        model: a model whose tokenizer has a chat template.
        prompts: user messages.
        positive_answers: the answer of the positive class for each prompt.
        negative_answers: the answer of the negative class for each prompt.

    Returns:
        ``(positives, negatives)``, ready for ``mean_difference`` and the other extractors.

    Example:
        >>> pos, neg = sl.answer_pairs(model, requests, refusals, compliances)
    """
    prompts = check_texts(prompts, "prompts")
    positive_answers = check_texts(positive_answers, "positive_answers")
    negative_answers = check_texts(negative_answers, "negative_answers")
    if not len(prompts) == len(positive_answers) == len(negative_answers):
        raise SteerlensError(
            f"positive_answers, negative_answers: expected {len(prompts)} each (one per "
            f"prompt), got {len(positive_answers)} and {len(negative_answers)}"
        )
    formatted = [format_chat(model, prompt) for prompt in prompts]
    return (
        [p + a for p, a in zip(formatted, positive_answers, strict=True)],
        [p + a for p, a in zip(formatted, negative_answers, strict=True)],
    )
