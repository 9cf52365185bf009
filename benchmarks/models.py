"""The models the measures run on: the default model untouched by any bridge, and the
tiny random model of ``--tiny``."""

from __future__ import annotations

import torch
from common import SMOKE


def untouched_hf_model():
    """The same weights as a plain Hugging Face model that no bridge has wrapped (the
    bridge's ``original_model`` has its layers replaced, and its own ``generate`` breaks)."""
    if SMOKE["on"]:
        return tiny_hf_model()
    from steerlens.core.model_cache import default_gguf_path, load_gguf

    return load_gguf(default_gguf_path(), torch.float32)[0].eval()


def tiny_model():
    """A 30-layer random Llama (d_model 64) with the default tokenizer: ``--tiny`` checks the
    script runs (its numbers mean nothing)."""
    from transformer_lens.model_bridge import TransformerBridge

    from steerlens.core.model_cache import default_tokenizer

    tokenizer = default_tokenizer()
    bridge = TransformerBridge.boot_transformers(
        "tiny", hf_model=tiny_hf_model(), tokenizer=tokenizer
    )
    return bridge.eval()


def tiny_hf_model():
    """The tiny model's Hugging Face weights (seeded: every call gives the same model)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from steerlens.core.model_cache import default_tokenizer

    config = LlamaConfig(
        vocab_size=len(default_tokenizer()),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=30,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()
