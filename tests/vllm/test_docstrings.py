"""Docs that run, inside vLLM: the examples in ``steerlens.vllm``'s docstrings, executed on
the session's engine (the default model), as tests/test_docstring_examples.py does for the
rest of the package on a tiny model."""

from __future__ import annotations

import doctest

import pytest
import torch

import steerlens as sl
from tests.test_docstring_examples import docstring_examples

EXAMPLES = [test for test in docstring_examples() if test.name.startswith("steerlens.vllm.")]


def vector(gen: torch.Generator) -> sl.SteeringVector:
    return sl.SteeringVector({layer: torch.randn(576, generator=gen) for layer in (8, 12)})


@pytest.mark.parametrize("test", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_docstring_example_runs(test, engine, default_model):
    gen = torch.Generator().manual_seed(0)
    prompts = ["How do I bake bread?", "Name a colour", "Tell me a joke"]
    scope = {
        "sl": sl,
        "llm": engine,
        "vec": vector(gen),
        "v1": vector(gen),
        "v2": vector(gen),
        "prompts": prompts,
        "texts": [sl.format_chat(default_model, p) for p in prompts[:2]],
    }
    run = [e for e in test.examples if not e.options.get(doctest.SKIP)]
    for example in run:
        exec(compile(example.source, f"<{test.name}>", "exec"), scope)
    assert run, f"{test.name}: every example is skipped"
