"""sl.generate on the tiny model: what the user sees besides the text."""

from __future__ import annotations

import warnings

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode


def test_generate_hides_the_bridges_cache_deprecation_warning(tiny_model):
    """TransformerLens passes ``past_key_values`` to HF, which warns on every call."""

    def cache_warnings(run) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        return [str(w.message) for w in caught if "past_key_values" in str(w.message)]

    tokens = torch.tensor([encode(tiny_model, "Hello there")])
    bare = cache_warnings(lambda: tiny_model.generate(tokens, max_new_tokens=3, verbose=False))
    if not bare:
        pytest.skip("this transformers version does not warn about past_key_values")
    assert cache_warnings(lambda: sl.generate(tiny_model, "Hello there", chat=False)) == []


def test_a_formatted_prompt_is_not_wrapped_twice(tiny_model):
    text = sl.format_chat(tiny_model, "How do I bake bread?")
    with pytest.raises(
        sl.SteerlensError, match=r"prompt\[1\]: already carries the chat.*chat=False"
    ):
        sl.generate(tiny_model, ["Hello", text], max_new_tokens=1)
    direct = sl.generate(tiny_model, text, chat=False, max_new_tokens=3)
    assert direct == sl.generate(tiny_model, "How do I bake bread?", max_new_tokens=3)
