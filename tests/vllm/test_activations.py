"""``sl.vllm.collect_activations`` and ``sl.vllm.project`` read inside vLLM equal Hugging Face
hidden states (an independent forward pass of the same weights) and the TransformerLens
versions, with prompts split into prefill chunks and a warm prefix cache around them."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from tests.vllm.helpers import direction

QUESTIONS = ["How do I bake bread?", "Name a colour.", "What is the capital of France?"]
LAYERS = [0, 7, 29]


@pytest.fixture(scope="module")
def texts(default_model):
    return [sl.format_chat(default_model, q) for q in QUESTIONS] + ["Plain text, no template."]


@pytest.fixture(scope="module")
def hidden(engine, texts):
    """Hugging Face hidden states per text: ``[n_layers + 1, pos, d_model]``."""
    from transformers import AutoModelForCausalLM

    folder = sl.vllm.engine.engine_model(engine).folder
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    model = sl.vllm.engine.engine_model(engine)
    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([encode(model, text)])
            out.append(torch.stack(hf(ids, output_hidden_states=True).hidden_states)[:, 0])
    return out


@pytest.mark.parametrize(
    ("position", "pick"),
    [
        ("last", lambda h: h[:, -1]),
        ("mean", lambda h: h.mean(1)),
        ([2, -1], lambda h: h[:, [2, -1]].mean(1)),
    ],
)
def test_resid_pre_equals_hf_hidden_states(engine, texts, hidden, position, pick):
    got = sl.vllm.collect_activations(engine, texts, LAYERS, position=position)
    expected = torch.stack([pick(h[LAYERS]) for h in hidden])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_resid_post_equals_next_hidden_state(engine, texts, hidden):
    got = sl.vllm.collect_activations(engine, texts, [3, 20], site="resid_post")
    expected = torch.stack([h[[4, 21], -1] for h in hidden])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("position", ["instruction mean", "post_instruction", "mean"])
def test_roles_and_mid_equal_transformer_lens(engine, default_model, texts, position):
    chat = texts[:3]
    got = sl.vllm.collect_activations(engine, chat, [5, 12], position=position, site="resid_mid")
    expected = sl.collect_activations(
        default_model, chat, [5, 12], position=position, site="resid_mid"
    )
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_project_equals_transformer_lens(engine, default_model, texts):
    vec = sl.SteeringVector({4: direction(576, 3), 9: direction(576, 4)}, site="resid_post")
    torch.testing.assert_close(
        sl.vllm.project(engine, texts, vec),
        sl.project(default_model, texts, vec),
        atol=1e-4,
        rtol=1e-4,
    )


def test_bad_positions_are_refused(engine, texts):
    with pytest.raises(sl.SteerlensError, match="out of range"):
        sl.vllm.collect_activations(engine, texts, [1], position=[400])
    with pytest.raises(sl.SteerlensError, match="chat-template marker"):
        sl.vllm.collect_activations(engine, texts, [1], position="instruction")
    with pytest.raises(sl.SteerlensError, match="position"):
        sl.vllm.collect_activations(engine, texts, [1], position="middle")
