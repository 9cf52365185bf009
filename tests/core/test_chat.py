"""format_chat: the tokenizer's template, a user's ``template=``, and a refusal without one."""

from __future__ import annotations

import pytest

import steerlens as sl
from steerlens.core.errors import SteerlensError

TURNS = (
    "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture
def base_model(tiny_model, monkeypatch):
    """The tiny model with a tokenizer that has no chat template, as a base model's."""
    monkeypatch.setattr(tiny_model.tokenizer, "chat_template", None)
    return tiny_model


def test_base_model_is_refused_without_template(base_model):
    with pytest.raises(SteerlensError, match="no chat template.*template="):
        sl.format_chat(base_model, "Hi?")


def test_template_is_rendered_as_given(base_model):
    text = sl.format_chat(base_model, "Hi?", system="Be brief.", template=TURNS)
    expected = (
        "<start_of_turn>system\nBe brief.<end_of_turn>\n"
        "<start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert text == expected
    plain = sl.format_chat(base_model, "Hi?", template=TURNS, add_generation_prompt=False)
    assert plain == "<start_of_turn>user\nHi?<end_of_turn>\n"


def test_template_overrides_the_tokenizers_own(tiny_model):
    own = sl.format_chat(tiny_model, "Hi?")
    assert "<|im_start|>user" in own  # SmolLM2's template
    given = sl.format_chat(tiny_model, "Hi?", template=TURNS)
    assert given == "<start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n"
    assert tiny_model.tokenizer.chat_template is not None  # the tokenizer is left as it is
    assert sl.format_chat(tiny_model, "Hi?") == own


def test_bad_template(base_model):
    with pytest.raises(TypeError, match="template"):
        sl.format_chat(base_model, "Hi?", template=3)
    with pytest.raises(SteerlensError, match="template"):
        sl.format_chat(base_model, "Hi?", template="")
    with pytest.raises(SteerlensError, match="template: not a usable Jinja chat template"):
        sl.format_chat(base_model, "Hi?", template="{% for m in messages %}{{ m }")
