"""Chat roles as token spans: the user's message, the template tokens after it, the reply.

The markers come from the tokenizer's own chat template, rendered around sentinel messages:
the text after the last user message up to the end of the generation prompt is the
*post-instruction* marker, and the text the template puts before every user message (the
common end of what precedes the first and a later user turn) is the *user header*. A row's
tokens are decoded one by one, which gives each token's character offset; the markers are
found in that text (the last post-instruction marker, the last user header before it) and
the character spans mapped back to token indices. Spans are absolute positions, counted
from the row's first real token, so they are the same in left-padded batches and under the
KV cache.

- ``instruction``: the last user message's tokens (after the user header);
- ``post_instruction``: the template tokens after it, up to the end of the generation prompt;
- ``response``: everything after that (a prefilled reply, then every generated token).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Bool, Int
from jinja2.exceptions import TemplateError
from torch import Tensor

from .errors import SteerlensError
from .tokens import encode, get_tokenizer
from .validate import check_model

ROLES = ("instruction", "post_instruction", "response")
_FIRST, _REPLY, _LAST = "SentinelFirstQz", "SentinelReplyQz", "SentinelLastQz"


@dataclass(frozen=True)
class ChatMarkers:
    """The template text before a user message, and after it up to the reply."""

    user_header: str
    post_instruction: str


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n :]


def chat_markers(tokenizer: Any) -> ChatMarkers:
    """The user header and post-instruction marker of ``tokenizer``'s chat template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise SteerlensError(
            "positions: chat-role positions need a tokenizer with a chat template; this one "
            "has none"
        )
    single = _render(tokenizer, [{"role": "user", "content": _FIRST}])
    if single.count(_FIRST) != 1:
        raise SteerlensError("positions: the chat template does not show the user's message")
    before_first, post = single.split(_FIRST)
    turns = [
        {"role": "user", "content": _FIRST},
        {"role": "assistant", "content": _REPLY},
        {"role": "user", "content": _LAST},
    ]
    try:
        multi = _render(tokenizer, turns)
        header = _common_suffix(before_first, multi.split(_REPLY)[1].split(_LAST)[0])
    except (TemplateError, IndexError):  # a template refusing several turns: the prefix
        header = before_first
    if not post or not header:
        raise SteerlensError(
            "positions: the chat template puts no text around the user's message, so its "
            "roles cannot be told apart"
        )
    return ChatMarkers(header, post)


def role_spans(tokenizer: Any, markers: ChatMarkers, ids: list[int], row: int) -> list[int]:
    """``[instruction_start, post_start, response_start]`` token indices of one row."""
    pieces = tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)
    starts, offset = [], 0
    for piece in pieces:
        starts.append(offset)
        offset += len(piece)
    text = "".join(pieces)
    post = text.rfind(markers.post_instruction)
    header = text.rfind(markers.user_header, 0, max(post, 0))
    if post < 0 or header < 0:
        missing = markers.post_instruction if post < 0 else markers.user_header
        raise SteerlensError(
            f"positions: prompt row {row} has no chat-template marker {missing!r}; chat-role "
            "positions need chat-formatted prompts (sl.format_chat, or sl.generate with "
            "chat=True)"
        )
    chars = (header + len(markers.user_header), post, post + len(markers.post_instruction))
    return [bisect_left(starts, c) for c in chars]


class ChatSpans:
    """Per-row role spans of a left-padded batch of prompts, computed on first use."""

    def __init__(
        self, tokenizer: Any, tokens: Int[Tensor, "batch pos"], mask: Bool[Tensor, "batch pos"]
    ) -> None:
        self._tokenizer = tokenizer
        self._rows = [row[keep].tolist() for row, keep in zip(tokens, mask.bool(), strict=True)]
        self._bounds: Tensor | None = None

    @classmethod
    def from_bounds(cls, bounds: Int[Tensor, "batch 4"]) -> ChatSpans:
        """Spans already computed (``bounds()`` of other instances, rows stacked)."""
        empty = torch.zeros(len(bounds), 0, dtype=torch.long)
        spans = cls(None, empty, empty.bool())
        spans._bounds = bounds
        return spans

    def bounds(self) -> Int[Tensor, "batch 4"]:
        """Per row: where the instruction, the post-instruction and the response start, and
        where the prompt ends."""
        if self._bounds is None:
            markers = chat_markers(self._tokenizer)
            bounds = [
                [*role_spans(self._tokenizer, markers, ids, row), len(ids)]
                for row, ids in enumerate(self._rows)
            ]
            self._bounds = torch.tensor(bounds, dtype=torch.long)
        return self._bounds

    def span(self, role: str) -> tuple[Int[Tensor, " batch"], Int[Tensor, " batch"]]:
        """``(start, end)`` absolute positions of ``role`` per row (``end`` exclusive;
        ``response`` ends at the row's prompt end, generated tokens follow it)."""
        index = ROLES.index(role)
        return self.bounds()[:, index], self.bounds()[:, index + 1]


def token_roles(model: Any, text: str) -> pd.DataFrame:
    """Each token of a chat-formatted text with its chat role (``""`` outside the roles).

    Example:
        >>> sl.core.token_roles(model, sl.format_chat(model, "How do I bake bread?"))
    """
    check_model(model)
    tokenizer = get_tokenizer(model)
    ids = encode(model, text, "text")
    spans = ChatSpans(tokenizer, torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool))
    roles = [""] * len(ids)
    for role in ROLES:
        start, end = (int(t[0]) for t in spans.span(role))
        roles[start:end] = [role] * (end - start)
    pieces = tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)
    return pd.DataFrame({"token": pieces, "role": roles})
