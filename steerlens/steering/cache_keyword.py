"""A scoped workaround: hand the KV cache to TransformerLens attention under its old keyword.

transformers 5.24 passes the KV cache from each decoder layer to its attention module as
``cache=`` (5.9 to 5.23 passed ``past_key_values=``). TransformerLens 4.3's attention
bridges, which stand in for those modules, read only ``past_key_values`` (or ``layer_past``,
still used by GPT-NeoX), so they find no cache: each cached generation step attends to its
own token alone, and generation ignores the prompt from the second new token on.

``cache_keyword_shim`` fixes this for the duration of a ``with`` block, which ``sl.steer`` and
``sl.generate`` hold; outside them nothing is patched (the docs' "Known upstream issues"
gives the reproduction). Where the cache already arrives as ``past_key_values`` the hook
changes nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def hand_over_cache(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Forward pre-hook: copy ``cache`` to ``past_key_values`` when only the former is set."""
    if kwargs.get("cache") is not None and kwargs.get("past_key_values") is None:
        return args, {**kwargs, "past_key_values": kwargs["cache"]}
    return None


@contextmanager
def cache_keyword_shim(model: Any) -> Iterator[None]:
    """Inside the block, every block's attention reads the KV cache passed as ``cache=``.

    Adds one PyTorch forward pre-hook per ``model.blocks[i].attn`` (none for a model
    without blocks) and removes them on exit, always. Nested shims are harmless: the first
    hook sets ``past_key_values`` and the others leave it.
    """
    attns = [getattr(block, "attn", None) for block in getattr(model, "blocks", [])]
    handles = [
        attn.register_forward_pre_hook(hand_over_cache, with_kwargs=True)
        for attn in attns
        if attn is not None
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def quiet_cache_deprecation() -> Iterator[None]:
    """Silence the deprecation warning transformers >= 5.24 gives on every call: the bridge
    passes ``past_key_values`` to the Hugging Face model, which our users cannot change."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*past_key_values.* is deprecated", category=FutureWarning
        )
        yield
