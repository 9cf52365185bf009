"""Chat-role positions (instruction, post_instruction, response) on two chat templates:
spans from the template, the same with and without the KV cache and in left-padded batches,
equal to a plain-torch reference, and extraction at role tokens equal to HF hidden states."""

from __future__ import annotations

import copy

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from tests.architectures import build
from tests.steering.test_positions import manual_greedy, vector

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
MESSAGES = ["Name a colour", "Tell me a story about the sea and a little boat"]
ROLES = ["instruction", "post_instruction", "response"]


@pytest.fixture(scope="module")
def gemma_model(tokenizer):
    """A tiny model with a Gemma-style turn template set on a copy of the tokenizer."""
    turn_tokenizer = copy.deepcopy(tokenizer)
    turn_tokenizer.chat_template = GEMMA_TEMPLATE
    return build("qwen2", turn_tokenizer)[0]


@pytest.fixture(params=["smollm2", "gemma"])
def chat_model(request, tiny_model, gemma_model):
    return tiny_model if request.param == "smollm2" else gemma_model


def expected_span(model, message, role):
    """Token spans from tokenizing the template's pieces separately (not from our offsets)."""
    text = sl.format_chat(model, message)
    cut = text.rindex(message)
    start = len(encode(model, text[:cut]))
    end = len(encode(model, text[: cut + len(message)]))
    total = len(encode(model, text))
    return {"instruction": (start, end), "post_instruction": (end, total)}.get(role, (total, None))


def generate(model, prompts, rule, cache):
    with sl.steer(model, sl.add(vector(), positions=rule)):
        return sl.generate(model, prompts, max_new_tokens=6, use_past_kv_cache=cache)


@pytest.mark.parametrize("role", ROLES)
def test_role_matches_a_plain_torch_reference(chat_model, role):
    message = MESSAGES[0]
    text = sl.format_chat(chat_model, message)
    reference = manual_greedy(chat_model, text, *expected_span(chat_model, message, role), 6)
    eos = chat_model.tokenizer.eos_token
    got = generate(chat_model, [message], role, True)[0]
    assert got == reference.split(eos)[0]
    assert got != sl.generate(chat_model, message, max_new_tokens=6)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("cache", [True, False])
def test_role_is_right_in_padded_batches_with_and_without_cache(chat_model, role, cache):
    singles = [generate(chat_model, [m], role, True)[0] for m in MESSAGES]
    assert generate(chat_model, MESSAGES, role, cache) == singles


def test_response_covers_a_prefilled_reply(tiny_model):
    """A prefilled reply is steered as response; the reference steers it by plain torch."""
    message, reply = MESSAGES[0], "Blue is"
    text = sl.format_chat(tiny_model, message) + reply
    start = len(encode(tiny_model, sl.format_chat(tiny_model, message)))
    reference = manual_greedy(tiny_model, text, start, None, 6)
    with sl.steer(tiny_model, sl.add(vector(), positions="response")):
        got = sl.generate(tiny_model, text, chat=False, max_new_tokens=6)
    assert got == reference.split(tiny_model.tokenizer.eos_token)[0]


def test_role_rule_refuses_raw_text(tiny_model):
    with (
        pytest.raises(sl.SteerlensError, match="chat-template marker"),
        sl.steer(tiny_model, sl.add(vector(), positions="instruction")),
    ):
        sl.generate(tiny_model, "Once upon a time", chat=False, max_new_tokens=2)


@pytest.mark.parametrize("position", ["instruction mean", "post_instruction", "response mean"])
def test_extraction_at_roles_equals_hf_hidden_states(tokenizer, position):
    model, untouched = build("llama", tokenizer)
    replies = ["Blue, mostly.", "Once a boat sailed far away"]
    texts = [sl.format_chat(model, m) + r for m, r in zip(MESSAGES, replies, strict=True)]
    got = sl.collect_activations(model, texts, [1], position=position)[:, 0]
    role = position.split(" ")[0]
    for row, (message, text) in enumerate(zip(MESSAGES, texts, strict=True)):
        ids = encode(model, text)
        start, end = expected_span(model, message, role)
        end = len(ids) if end is None else end
        with torch.no_grad():
            hidden = untouched(torch.tensor([ids]), output_hidden_states=True).hidden_states[1][0]
        want = hidden[start:end].mean(0) if position.endswith("mean") else hidden[end - 1]
        torch.testing.assert_close(got[row], want, rtol=1e-4, atol=1e-4)


def test_empty_response_is_refused_in_extraction(tiny_model):
    with pytest.raises(sl.SteerlensError, match="empty for text 0"):
        sl.collect_activations(
            tiny_model, [sl.format_chat(tiny_model, "Hi")], [0], position="response"
        )


def test_token_roles_lists_each_tokens_role(chat_model):
    message = MESSAGES[0]
    table = sl.core.token_roles(chat_model, sl.format_chat(chat_model, message))
    start, end = expected_span(chat_model, message, "instruction")
    assert table.index[table.role == "instruction"].tolist() == list(range(start, end))
    assert "".join(table.token[table.role == "instruction"]) == message
    assert table.role.iloc[-1] == "post_instruction"
