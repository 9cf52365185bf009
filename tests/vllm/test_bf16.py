"""bfloat16: vLLM and TransformerLens compute in different orders, and in bf16 the rounding
differences decide near-ties, so greedy tokens are not reproducible across implementations
(Hugging Face bf16 agrees with its own float32 on 4 of 8 prompts here). The test measures
how often the first ``N_NEW`` tokens agree, steered and unsteered, against a floor:
``FLOOR`` of the prompts, a level measured on this machine (see docs/results.md) with room
for noise. Exactness is the float32 tests' job."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from tests.vllm.helpers import direction, engine_tokens, reference

QUESTIONS = [
    "How do I bake bread?",
    "Name a colour.",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "How do bicycles stay upright?",
    "Suggest a name for a cat.",
    "What is 12 times 12?",
    "Why is the sky blue?",
]
N_NEW = 8
FLOOR = 0.5  #: share of prompts whose first N_NEW tokens agree


@pytest.fixture(scope="module")
def bf16_pair():
    llm = sl.vllm.load(dtype="bfloat16", max_model_len=256, kv_cache_memory_bytes=1 << 28)
    yield sl.load_model(dtype=torch.bfloat16), llm
    llm.llm_engine.engine_core.shutdown()


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    return sum(x[:N_NEW] == y[:N_NEW] for x, y in zip(a, b, strict=True)) / len(a)


def test_bf16_agreement_rate_is_above_the_floor(bf16_pair, capsys):
    model, llm = bf16_pair
    vec = direction(576, 0)
    steer = [sl.add(vec / vec.norm(), 6.0, layers=[10], positions="generated")]
    rates = {}
    for name, lists in {"unsteered": [], "steered": steer}.items():
        got = engine_tokens(llm, QUESTIONS, lists or None, N_NEW)
        rates[name] = agreement(got, reference(model, QUESTIONS, lists, N_NEW))
    with capsys.disabled():
        print(f"\nbf16 agreement with sl.generate (first {N_NEW} tokens): {rates}")
    assert min(rates.values()) >= FLOOR, rates
