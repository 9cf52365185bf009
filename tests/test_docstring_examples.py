"""Docs that run: every example in a docstring is executed, on a tiny 30-layer Llama (the
default model's depth, so its layer numbers are valid), and every ``sl.`` name in the
docstrings, the docs and the README exists. An example marked ``# doctest: +SKIP`` (a file
that is not here) is only checked for its names."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

import steerlens as sl
from tests.architectures import tiny_llama

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"(?<![\w.])sl\.((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)")


def docstring_examples() -> list[doctest.DocTest]:
    """Every docstring with examples in the package, found by ``doctest``."""
    finder, found = doctest.DocTestFinder(), {}
    for info in pkgutil.walk_packages(sl.__path__, "steerlens."):
        for test in finder.find(importlib.import_module(info.name)):
            if test.examples:
                found[test.name] = test
    return sorted(found.values(), key=lambda test: test.name)


EXAMPLES = docstring_examples()


def resolve(dotted: str) -> object:
    """``sl.<dotted>``; an ``AttributeError`` names the first missing part."""
    value: object = sl
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def named(text: str) -> set[str]:
    return {match.rstrip(".") for match in NAME.findall(text)}


def test_every_named_attribute_exists():
    sources = {test.name: "\n".join(e.source for e in test.examples) for test in EXAMPLES}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        sources[str(path.relative_to(ROOT))] = path.read_text()
    missing = []
    for where, text in sources.items():
        for dotted in named(text):
            try:
                resolve(dotted)
            except AttributeError:
                missing.append(f"sl.{dotted} ({where})")
    assert len(EXAMPLES) > 25 and not missing, missing


@pytest.fixture(scope="module")
def namespace(tokenizer, one_thread):
    """What the examples take as given: ``model`` (a tiny Llama of the default model's depth
    whose embeddings have the scale of a trained model's, so steering coefficients and KL
    budgets of the docstrings mean something), vectors, texts and small results."""
    hf_model = tiny_llama(tokenizer, num_hidden_layers=30, tie_word_embeddings=True)
    with torch.no_grad():
        hf_model.model.embed_tokens.weight.mul_(50.0)  # std 1: residual norms ~8, peaky logits
    model = TransformerBridge.boot_transformers(
        "tiny-llama-30", hf_model=hf_model, tokenizer=tokenizer
    ).eval()
    frame = sl.datasets.load("refusal")
    harmless = list(frame.loc[~frame["harmful"], "request"])
    harmful = list(frame.loc[frame["harmful"], "request"])
    requests, refusals, compliances = (
        list(frame[c][:8]) for c in ("request", "refusal", "compliance")
    )
    positives, negatives = sl.answer_pairs(model, requests, refusals, compliances)
    vec = sl.mean_difference(model, positives, negatives, layers=[8, 12])
    text = sl.format_chat(model, "How do I bake bread?")
    prompts = [sl.format_chat(model, request) for request in harmless[:4]]
    r = torch.linspace(-1, 1, 9)
    res = sl.optimize_one_shot(model, text, promote="I'm sorry", layer=12, max_iters=2)
    return {
        "sl": sl,
        "torch": torch,
        "model": model,
        "requests": requests,
        "refusals": refusals,
        "compliances": compliances,
        "positives": positives,
        "negatives": negatives,
        "vec": vec,
        "refusal": vec,
        "cond_vec": sl.mean_difference(model, harmful[:6], harmless[:6], layers=[8]),
        "moral_vector": sl.SteeringVector({12: torch.randn(64)}),
        "u": torch.nn.functional.normalize(torch.randn(64), dim=0),
        "text": text,
        "texts": prompts,
        "prompts": prompts,
        "harmful": harmful[:6],
        "harmless": harmless[:6],
        "held_out": harmless[-4:],
        "res": res,
        "spec": sl.tradeoff.refusal_behaviour(model, n=4),
        "task": sl.measures.qa_task(model, n=8),
        "coeffs": 8 * r,
        "b_mean": torch.tanh(r),
        "h_mean": torch.exp(-(r**2)),
    }


@pytest.mark.parametrize("test", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_docstring_example_runs(test, namespace, tmp_path, monkeypatch):
    if test.name.startswith("steerlens.vllm."):
        pytest.skip("needs a vLLM engine: make test-vllm runs it (tests/vllm/test_docstrings.py)")
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    scope = dict(namespace)
    run = [e for e in test.examples if not e.options.get(doctest.SKIP)]
    for example in run:
        exec(compile(example.source, f"<{test.name}>", "exec"), scope)
    assert run, f"{test.name}: every example is skipped"


def test_the_api_reference_is_generated_from_every_public_name():
    spec = importlib.util.spec_from_file_location("mkdocs_api", ROOT / "tools" / "mkdocs_api.py")
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)
    assert api.MARKER in (ROOT / "docs" / "api.md").read_text()
    public = [
        importlib.import_module(info.name)
        for info in pkgutil.iter_modules(sl.__path__, "steerlens.")
        if info.ispkg and hasattr(importlib.import_module(info.name), "__all__")
    ]
    assert sorted(api.subpackages()) == sorted(m.__name__ for m in public)  # all in the layers
    text = api.reference()
    for module in public:
        for name in module.__all__:
            assert f"::: {module.__name__}.{name}\n" in text
