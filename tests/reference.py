"""Independent reference computations on the Hugging Face model under a bridge (no steerlens
code involved), shared by the tests that check steerlens's numbers against them."""

from __future__ import annotations

import torch


def hf_ids(model, prompt, completion):
    """Token ids built independently: BOS + prompt ids + completion ids."""
    tok = model.tokenizer
    bos = [tok.bos_token_id] if model.cfg.default_prepend_bos else []
    prompt_ids = bos + tok(prompt, add_special_tokens=False)["input_ids"]
    return prompt_ids, tok(completion, add_special_tokens=False)["input_ids"]


def hf_logits(model, ids, vector, layer, n_steered=None):
    """Logits of the HF model with ``vector`` added to the input of decoder layer ``layer``
    at the first ``n_steered`` positions (all if None)."""

    def pre_hook(_module, args, kwargs):
        x = args[0].clone()
        x[:, :n_steered] = x[:, :n_steered] + vector
        return (x, *args[1:]), kwargs

    hf = model.original_model
    handle = hf.model.layers[layer].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        return hf(torch.tensor([ids])).logits[0]
    finally:
        handle.remove()
