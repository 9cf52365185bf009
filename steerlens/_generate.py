"""Text generation with the chat template applied, returning only the new text."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ._errors import SteerlensError
from ._forward import is_bridge
from ._hooks import check_model
from ._tokens import encode, format_chat, get_tokenizer, left_pad

Prompt = str | Sequence[dict[str, str]]


def _is_messages(prompt: Any) -> bool:
    return (
        isinstance(prompt, Sequence)
        and not isinstance(prompt, str)
        and bool(prompt)
        and all(isinstance(m, dict) for m in prompt)
    )


def generate(
    model: Any,
    prompt: Prompt | Sequence[Prompt],
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
        chat: apply the chat template (``chat=False`` sends raw text).
        do_sample: sample instead of greedy decoding.
        temperature: sampling temperature.
        use_past_kv_cache: reuse keys/values across steps (steering gives the same tokens
            either way).
        **kwargs: passed on to ``model.generate`` (e.g. ``top_p``).

    Returns:
        The new text, or a list of texts for a batch.

    Example:
        >>> sl.generate(model, "How do I bake bread?", max_new_tokens=30)
    """
    check_model(model)
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or (max_new_tokens < 1)
    ):
        raise SteerlensError(f"max_new_tokens: expected an int >= 1, got {max_new_tokens!r}")
    single = isinstance(prompt, str) or _is_messages(prompt)
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        raise SteerlensError("prompt: expected a message or a non-empty list of them")
    texts = []
    for item in prompts:
        if chat:
            texts.append(format_chat(model, item))
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise SteerlensError(f"prompt: chat=False needs raw strings, got {item!r}")
    encoded = [encode(model, text) for text in texts]
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx is not None and max(map(len, encoded)) + max_new_tokens > n_ctx:
        raise SteerlensError(
            f"max_new_tokens: prompt ({max(map(len, encoded))} tokens) + {max_new_tokens} "
            f"exceeds the model's context of {n_ctx}"
        )
    options = dict(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        use_past_kv_cache=use_past_kv_cache,
        verbose=False,
        return_type="tokens",
        **kwargs,
    )
    if is_bridge(model):
        tokens, mask = left_pad(model, encoded)
        device = model.cfg.device
        with torch.no_grad(), _cache_kwarg_shim(model):
            out = model.generate(
                tokens.to(device), attention_mask=mask.long().to(device), **options
            )
        new = out[:, tokens.shape[1] :]
    else:  # classic HookedTransformer: one prompt at a time (no attention_mask argument)
        rows = []
        for ids in encoded:
            with torch.no_grad():
                rows.append(model.generate(torch.tensor([ids]), **options)[0, len(ids) :])
        new = rows
    replies = [_decode(model, row) for row in new]
    return replies[0] if single else replies


@contextmanager
def _cache_kwarg_shim(model: Any) -> Iterator[None]:
    """Hand the KV cache to TransformerLens attention under its old keyword.

    transformers >= 5.2x passes the cache to attention modules as ``cache=`` (formerly
    ``past_key_values=``); TransformerLens 4.3's attention bridges read only the old name,
    so the cache stays empty and cached generation ignores the prompt after the first
    token. For the duration of one call, a pre-hook copies ``cache`` to
    ``past_key_values`` on every block's attention (a no-op with older transformers).
    The bridge itself still passes ``past_key_values`` to the HF model, whose deprecation
    warning (not actionable by our users) is silenced for the call.
    """

    def hook(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if kwargs.get("cache") is not None and kwargs.get("past_key_values") is None:
            return args, {**kwargs, "past_key_values": kwargs["cache"]}
        return None

    attns = [getattr(block, "attn", None) for block in getattr(model, "blocks", [])]
    handles = [a.register_forward_pre_hook(hook, with_kwargs=True) for a in attns if a is not None]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*past_key_values.* is deprecated", category=FutureWarning
            )
            yield
    finally:
        for handle in handles:
            handle.remove()


def _decode(model: Any, ids: Any) -> str:
    """Decode new tokens, cutting at the first end-of-sequence token."""
    tokenizer = get_tokenizer(model)
    ids = [int(i) for i in ids]
    if tokenizer.eos_token_id in ids:
        ids = ids[: ids.index(tokenizer.eos_token_id)]
    return tokenizer.decode(ids, skip_special_tokens=True)
