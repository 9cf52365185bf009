"""load_model on every kind of input it accepts, and a clear error for anything else."""

from __future__ import annotations

import copy
import sys

import pytest
import torch

import steerlens as sl
from steerlens.core.errors import SteerlensError
from tests.architectures import tiny_llama


@pytest.fixture
def hf_llama(tokenizer):
    """A tiny random Llama built from a config, as ``from_config`` or a GGUF load gives it:
    its config has no ``architectures``. (Booting wraps its modules in place, so each test
    gets a fresh one and compares against an untouched copy.)"""
    model = tiny_llama(tokenizer, num_hidden_layers=2, max_position_embeddings=128)
    assert not model.config.architectures
    return model


def test_hf_model_without_architectures_boots_and_matches_hf(hf_llama, tokenizer):
    untouched = copy.deepcopy(hf_llama)
    model = sl.load_model(hf_llama, tokenizer=tokenizer)
    assert not hf_llama.config.architectures  # the user's config is left as it was
    ids = torch.tensor([[tokenizer.bos_token_id, 510, 2107, 13]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), untouched(ids).logits, atol=1e-4, rtol=1e-4)
    assert not model.training


def test_local_folder(hf_llama, tokenizer, tmp_path):
    hf_llama.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = sl.load_model(tmp_path)
    assert model.cfg.n_layers == 2 and model.cfg.d_model == 64
    ids = torch.tensor([[tokenizer.bos_token_id, 42, 43]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf_llama(ids).logits, atol=1e-4, rtol=1e-4)


def test_bfloat16(hf_llama, tokenizer):
    model = sl.load_model(hf_llama, tokenizer=tokenizer, dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_bad_input(hf_llama, tokenizer, tiny_model, tmp_path):
    with pytest.raises(TypeError, match="model: expected None, a .gguf path"):
        sl.load_model(5)
    with pytest.raises(SteerlensError, match="needs its tokenizer"):
        sl.load_model(hf_llama)
    with pytest.raises(SteerlensError, match="neither a .gguf file nor a folder"):
        sl.load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(TypeError, match="dtype"):
        sl.load_model(hf_llama, tokenizer=tokenizer, dtype=torch.int8)
    with pytest.raises(SteerlensError, match="device, device_map"):
        sl.load_model(hf_llama, tokenizer=tokenizer, device="cpu", device_map="auto")
    with pytest.raises(SteerlensError, match="already loaded"):
        sl.load_model(tiny_model, dtype=torch.bfloat16)
    with pytest.raises(SteerlensError, match="only with a loaded Hugging Face model"):
        sl.load_model("some/name", tokenizer=tokenizer)
    with pytest.raises(TypeError, match="compatibility_mode"):
        sl.load_model(tiny_model, compatibility_mode="yes")
    assert sl.load_model(tiny_model) is tiny_model


def test_without_the_bridge_loading_by_name_says_what_is_missing(monkeypatch):
    """A TransformerLens without ``TransformerBridge`` (a classic install): a clear error
    that points at passing a HookedTransformer, not an ImportError."""
    monkeypatch.setitem(sys.modules, "transformer_lens.model_bridge", None)
    with pytest.raises(sl.SteerlensError, match="TransformerBridge.*HookedTransformer"):
        sl.load_model("some-org/some-model")
