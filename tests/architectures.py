"""Tiny random-weight models of every architecture family steerlens serves, built offline
from transformers configs (``AutoConfig.for_model`` + ``from_config``) with the shipped
SmolLM2 tokenizer, booted through ``sl.load_model``. 3 layers, d_model 64."""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaForCausalLM

import steerlens as sl

_DECODER = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)
_HEAD16 = dict(_DECODER, head_dim=16)
#: transformers model type -> config fields (vocab size added from the tokenizer)
CONFIGS: dict[str, dict[str, Any]] = {
    "llama": _DECODER,
    "mistral": dict(_DECODER, sliding_window=None),
    "qwen2": _DECODER,
    "qwen3": _HEAD16,
    "gemma": _HEAD16,
    "gemma2": _HEAD16,
    "gemma3_text": _HEAD16,
    "phi3": dict(_DECODER, pad_token_id=0),
    "gpt2": dict(n_embd=64, n_layer=3, n_head=4, n_positions=256),
    "gpt_neox": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=256,
    ),
    "olmo2": _DECODER,
}
ARCHITECTURES = list(CONFIGS)


def tiny_config(name: str, tokenizer: Any, **changes: Any) -> Any:
    """The transformers config of ``name``'s tiny model (``CONFIGS``, with ``changes``)."""
    return AutoConfig.for_model(name, vocab_size=len(tokenizer), **{**CONFIGS[name], **changes})


def tiny_llama(tokenizer: Any, seed: int = 0, **changes: Any) -> LlamaForCausalLM:
    """A random tiny Llama (``tiny_config("llama")`` with ``changes``), seeded, in eval mode."""
    config = tiny_config("llama", tokenizer, **changes)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def build(
    name: str, tokenizer: Any, dtype: torch.dtype = torch.float32, seed: int = 0, device=None
):
    """``(bridge, untouched)``: the model booted by ``sl.load_model``, and an untouched copy
    of the same Hugging Face model for independent reference computations (booting wraps
    the given model's modules in place), both on ``device`` (default: the CPU)."""
    config = tiny_config(name, tokenizer)
    torch.manual_seed(seed)
    hf_model = AutoModelForCausalLM.from_config(config).eval().to(device or "cpu")
    untouched = copy.deepcopy(hf_model).to(dtype)
    bridge = sl.load_model(hf_model, tokenizer=tokenizer, dtype=dtype, device=device)
    return bridge, untouched
