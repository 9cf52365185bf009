"""Padding-aware tokenization (never mutates the user's tokenizer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .errors import SteerlensError
from .types import Mask, Tokens
from .validate import check_text


def get_tokenizer(model: Any) -> Any:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise SteerlensError("model: has no tokenizer; steerlens needs one to read text")
    return tokenizer


def _bos_id(model: Any) -> int | None:
    if not getattr(model.cfg, "default_prepend_bos", True):
        return None
    return get_tokenizer(model).bos_token_id


def encode(model: Any, text: str, name: str = "texts") -> list[int]:
    """Token ids of one text, with the model's BOS token prepended unless already there."""
    check_text(name, text)
    ids = list(get_tokenizer(model)(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise SteerlensError(f"{name}: {text!r} tokenizes to nothing")
    bos = _bos_id(model)
    if bos is not None and ids[0] != bos:
        ids = [bos, *ids]
    check_context(model, len(ids), name, text)
    return ids


def check_context(model: Any, n_tokens: int, name: str, text: str = "") -> None:
    """Refuse sequences longer than the model's context."""
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx is not None and n_tokens > n_ctx:
        shown = f": {text[:60]!r}..." if text else ""
        raise SteerlensError(
            f"{name}: {n_tokens} tokens is longer than the model's context of {n_ctx}{shown}"
        )


def completion_ids(model: Any, completion: Any, name: str) -> list[int]:
    """Token ids of a completion (no BOS), refusing empty or non-string completions."""
    check_text(name, completion)
    ids = list(get_tokenizer(model)(completion, add_special_tokens=False)["input_ids"])
    if not ids:
        raise SteerlensError(f"{name}: the completion {completion!r} tokenizes to nothing")
    return ids


def single_token_id(model: Any, word: str) -> int:
    """The id of ``word`` if the tokenizer makes it exactly one token, else a clear error.

    Leading spaces matter (``" Yes"`` and ``"Yes"`` are different tokens).
    """
    check_text("word", word)
    tokenizer = get_tokenizer(model)
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = [tokenizer.decode([i]) for i in ids]
        raise SteerlensError(
            f"word: {word!r} is {len(ids)} tokens {pieces}, not one; pick a word the "
            "tokenizer keeps whole (mind the leading space)"
        )
    return int(ids[0])


def pad_id(model: Any) -> int:
    tokenizer = get_tokenizer(model)
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def left_pad(model: Any, sequences: Sequence[Sequence[int]]) -> tuple[Tokens, Mask]:
    """Left-pad token id lists into a batch; returns ``(tokens, attention_mask)``."""
    width = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), width), pad_id(model), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, ids in enumerate(sequences):
        tokens[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = True
    return tokens, mask


def decode_reply(model: Any, ids: Sequence[int] | Tensor) -> str:
    """Decode new tokens, cutting at the first end-of-sequence token."""
    tokenizer = get_tokenizer(model)
    ids = [int(i) for i in ids]
    if tokenizer.eos_token_id in ids:
        ids = ids[: ids.index(tokenizer.eos_token_id)]
    return tokenizer.decode(ids, skip_special_tokens=True)
