"""Shared fixtures: a tiny random Llama bridge (unit tests) and the default model (slow)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch


@pytest.fixture(scope="session")
def default_model():
    """SmolLM2-135M-Instruct, loaded once per session (integration tests)."""
    import steerlens as sl

    return sl.load_model()


@pytest.fixture(scope="session")
def tokenizer():
    """The default model's tokenizer (from the steerlens cache; no weights loaded)."""
    from steerlens.core.model_cache import default_tokenizer

    return default_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A 3-layer random Llama (d_model 64) with the default model's tokenizer."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    hf_model = LlamaForCausalLM(config).eval()
    model = TransformerBridge.boot_transformers(
        "tiny-llama", hf_model=hf_model, tokenizer=tokenizer
    )
    return model.eval()


from tests.coverage import pytest_runtest_makereport, pytest_sessionfinish  # noqa: E402, F401


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "coverage(check): a cell of the architecture coverage table (docs/models.md)"
    )
