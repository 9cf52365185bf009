"""Text generation with the chat template applied, returning only the new text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.chat import Message, format_chat, is_messages, refuse_formatted
from ..core.errors import SteerlensError, SteerlensTypeError
from ..core.forward import is_bridge
from ..core.hookpoints import model_device
from ..core.tokens import check_context, decode_reply, encode, left_pad
from ..core.types import HookedModel
from ..core.validate import (
    check_bool,
    check_int,
    check_keywords,
    check_model,
    check_number,
    is_int,
    shown,
)
from .cache_keyword import cache_keyword_shim, quiet_cache_deprecation
from .native import native_forward

#: Options passed on to the model's ``generate`` (any other keyword is refused).
GENERATE_OPTIONS = (
    "top_k",
    "top_p",
    "freq_penalty",
    "repetition_penalty",
    "stop_at_eos",
    "eos_token_id",
)


def generate(
    model: HookedModel,
    prompt: Message | Sequence[Message],
    *,
    max_new_tokens: int = 64,
    chat: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    use_past_kv_cache: bool = True,
    **kwargs: Any,
) -> str | list[str]:
    """Generate a reply (greedy by default) and return only the new text.

    Args:
        model: a TransformerLens model; steering applies if called inside ``sl.steer``.
        prompt: a user message, a list of chat messages, or a list of either (a batch,
            left-padded; each row is generated exactly as it would be alone).
        max_new_tokens: the most tokens to add.
        chat: apply the chat template (``chat=False`` sends raw text); a message that
            already carries it (a ``sl.format_chat`` result) is refused, naming ``chat=False``.
        do_sample: sample instead of greedy decoding.
        temperature: sampling temperature (> 0).
        use_past_kv_cache: reuse keys/values across steps (steering gives the same tokens
            either way).
        **kwargs: passed on to ``model.generate``: ``top_k``, ``top_p``, ``freq_penalty``,
            ``repetition_penalty``, ``stop_at_eos``, ``eos_token_id``.

    Returns:
        The new text, or a list of texts for a batch.

    On a TransformerBridge whose only hooks are on the residual stream (``resid_pre``,
    ``resid_post``, e.g. ``sl.add`` there), generation runs on the wrapped Hugging Face
    modules (``steering.native``): the same tokens, at Hugging Face's own speed. Any other
    hook point in use keeps the whole bridge, so every hook fires.

    Example:
        >>> sl.generate(model, "How do I bake bread?", max_new_tokens=30)
    """
    check_model(model)
    check_int("max_new_tokens", max_new_tokens, low=1)
    check_bool("chat", chat)
    check_bool("do_sample", do_sample)
    check_number("temperature", temperature, low=0.0, open_low=True)
    check_bool("use_past_kv_cache", use_past_kv_cache)
    check_keywords("kwargs", kwargs, GENERATE_OPTIONS)
    check_options(kwargs)
    single = isinstance(prompt, str) or is_messages(prompt)
    encoded = [encode(model, text, "prompt") for text in prompt_texts(model, prompt, chat, single)]
    check_context(model, max(map(len, encoded)) + max_new_tokens, "prompt + max_new_tokens")
    options = dict(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        use_past_kv_cache=use_past_kv_cache,
        verbose=False,
        return_type="tokens",
        **kwargs,
    )
    new = _new_tokens(model, encoded, options)
    replies = [decode_reply(model, row) for row in new]
    return replies[0] if single else replies


def check_options(options: dict[str, Any]) -> None:
    """Validate the options passed on to ``model.generate`` (``GENERATE_OPTIONS``)."""
    if options.get("top_k") is not None:
        check_int("top_k", options["top_k"], low=1)
    check_number("top_p", options.get("top_p"), low=0.0, open_low=True, high=1.0, none=True)
    check_number("freq_penalty", options.get("freq_penalty"), none=True)
    penalty = options.get("repetition_penalty")
    check_number("repetition_penalty", penalty, low=0.0, open_low=True, none=True)
    if "stop_at_eos" in options:
        check_bool("stop_at_eos", options["stop_at_eos"])
    eos = options.get("eos_token_id")
    if eos is not None:
        ids = [eos] if is_int(eos) else eos
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids:
            raise SteerlensTypeError(
                f"eos_token_id: expected a token id or a non-empty list of them, got {shown(eos)}"
            )
        for index, token in enumerate(ids):
            check_int(f"eos_token_id[{index}]", token, low=0)


def prompt_texts(model: Any, prompt: Any, chat: bool, single: bool) -> list[str]:
    """The raw texts to generate from (chat-formatted unless ``chat=False``)."""
    if not single and (isinstance(prompt, bytes) or not isinstance(prompt, Sequence)):
        raise SteerlensTypeError(
            f"prompt: expected a message, a list of chat messages, or a list of either, got "
            f"{shown(prompt)}"
        )
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        raise SteerlensError("prompt: expected a message or a non-empty list of them")
    if chat:
        refuse_formatted(model, "prompt", [item for item in prompts if isinstance(item, str)])
        return [format_chat(model, item) for item in prompts]
    bad = [item for item in prompts if not isinstance(item, str)]
    if bad:
        raise SteerlensTypeError(f"prompt: chat=False needs raw strings, got {shown(bad[0])}")
    return prompts


def _new_tokens(model: Any, encoded: list[list[int]], options: dict) -> list[Any]:
    """Generated token ids per prompt (without the prompt)."""
    if is_bridge(model):
        tokens, mask = left_pad(model, encoded)
        device = model_device(model)
        with (
            torch.no_grad(),
            native_forward(model),
            cache_keyword_shim(model),
            quiet_cache_deprecation(),
        ):
            out = model.generate(
                tokens.to(device), attention_mask=mask.long().to(device), **options
            )
        return list(out[:, tokens.shape[1] :])
    rows = []  # classic HookedTransformer: one prompt at a time (no attention_mask argument)
    for ids in encoded:
        with torch.no_grad():
            rows.append(model.generate(torch.tensor([ids]), **options)[0, len(ids) :])
    return rows
