"""Every kind x position rule x residual site, token for token against ``sl.generate`` under
``sl.steer``, on tiny random Qwen2 and Gemma 2 models that vLLM loads from a folder (the
default model, a Llama, is ``test_generate``). The whole matrix is one continuous batch per
architecture, prompts split into prefill chunks, with unsteered rows between."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import steerlens as sl
from steerlens.core.hookpoints import SITES
from steerlens.core.tokens import encode
from tests.vllm.helpers import Scale, direction, engine_tokens, grouped_reference, reference

#: Tiny decoders with a head size vLLM's CPU attention supports (32).
SIZES = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    max_position_embeddings=256,
)
ARCHITECTURES = ["qwen2", "gemma2"]
QUESTIONS = ["Name a colour", "Tell me a story about the sea and a little boat"]
N_NEW = 6


def build_folder(name: str, tokenizer, folder) -> str:
    """A random-weight model saved as Hugging Face files with the shipped tokenizer."""
    config = AutoConfig.for_model(name, vocab_size=len(tokenizer), **SIZES)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def pair(request, tokenizer, tmp_path_factory):
    """``(bridge, engine)``: the same tiny model in TransformerLens and in vLLM."""
    folder = build_folder(request.param, tokenizer, tmp_path_factory.mktemp(request.param))
    llm = sl.vllm.load(
        folder,
        block_size=32,
        enable_prefix_caching=True,
        max_num_batched_tokens=32,
        max_num_seqs=32,
        max_model_len=256,
        kv_cache_memory_bytes=1 << 28,
    )
    yield sl.load_model(folder), llm
    llm.llm_engine.engine_core.shutdown()


def rules(prompt_len: int) -> dict[str, object]:
    every_third = torch.zeros(prompt_len, dtype=torch.bool)
    every_third[::3] = True
    return {
        "all": "all",
        "prompt": "prompt",
        "generated": "generated",
        "indices": [1, 4],
        "negative": [-2],
        "instruction": "instruction",
        "post_instruction": "post_instruction",
        "response": "response",
        "mask": every_third,
    }


def kinds(d: dict[str, torch.Tensor], layers: list[int], site: str, positions) -> dict:
    """Edits on the scale of the residual (Gemma scales its embeddings by sqrt(d_model))."""
    where = dict(layers=layers, site=site, positions=positions)
    scale = float(d["mean"].norm())
    return {
        "add": sl.add(d["random"], 4.0 * scale, **where),
        "ablate": sl.ablate(torch.stack([d["mean"], d["random"]]), **where),
        "clamp": sl.clamp(d["mean"], -3.0 * scale, **where),
        "rotate": sl.steering.rotate(d["mean"], 100.0, **where),
        "Scale": Scale(d["mean"] / d["mean"].norm(), -3.0, **where),
    }


def test_every_kind_rule_and_site(pair):
    bridge, llm = pair
    text = sl.format_chat(bridge, QUESTIONS[1])
    d = {
        "random": direction(128, 1) / direction(128, 1).norm(),
        "mean": sl.collect_activations(bridge, [text], [1], position="mean")[0, 0],
    }
    prompt_len = len(encode(bridge, text))
    assert prompt_len > 32  # several prefill chunks
    lists, prompts, names = [], [], []
    for site in SITES:
        for rule_name, rule in rules(prompt_len).items():
            for kind, intervention in kinds(d, [1], site, rule).items():
                lists.append([intervention])
                prompts.append(QUESTIONS[1])
                names.append(f"{kind} {rule_name} {site}")
        lists.append([])
        prompts.append(QUESTIONS[0])
        names.append("unsteered")
    expected = grouped_reference(bridge, prompts, lists, N_NEW)
    got = engine_tokens(llm, prompts, lists, N_NEW)
    wrong = [name for name, a, b in zip(names, got, expected, strict=True) if a != b]
    assert not wrong, wrong
    plain = reference(bridge, [QUESTIONS[1]], [], N_NEW)[0]
    steered = [n for n in names if n != "unsteered"]
    same = [n for n, ids in zip(names, got, strict=True) if n != "unsteered" and ids == plain]
    assert len(same) <= 0.3 * len(steered), same  # they do steer (edits at one token may not show)
