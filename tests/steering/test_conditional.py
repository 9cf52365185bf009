"""sl.when: per-row conditional steering equal to single steered / unsteered runs, token for
token, with and without the KV cache; sl.find_condition's F1 grid against scikit-learn."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import f1_score

import steerlens as sl

PROMPTS = ["Name a colour", "Tell me a story about the sea and a little boat"]


def condition():
    gen = torch.Generator().manual_seed(11)
    return sl.SteeringVector({1: torch.randn(64, generator=gen)})


def behaviour():
    gen = torch.Generator().manual_seed(5)
    return sl.add(sl.SteeringVector({1: 8 * torch.randn(64, generator=gen)}), layers=[1])


def midpoint(model):
    texts = [sl.format_chat(model, p) for p in PROMPTS]
    proj = sl.project(model, texts, condition(), position="mean")[:, 0]
    assert proj[0] != proj[1]
    return float(proj.mean()), bool(proj[0] > proj[1])


@pytest.mark.parametrize("comparator", [">", "<"])
@pytest.mark.parametrize("cache", [True, False])
def test_rows_are_decided_alone(tiny_model, comparator, cache):
    threshold, first_higher = midpoint(tiny_model)
    meets = [first_higher == (comparator == ">"), first_higher != (comparator == ">")]
    options = dict(max_new_tokens=6, use_past_kv_cache=cache)
    with sl.steer(tiny_model, behaviour()):
        steered = [sl.generate(tiny_model, p, **options) for p in PROMPTS]
    plain = [sl.generate(tiny_model, p, **options) for p in PROMPTS]
    assert steered != plain  # the behaviour changes both replies, so the test can fail
    rule = sl.when(condition(), threshold, behaviour(), comparator=comparator)
    with sl.steer(tiny_model, rule):
        batched = sl.generate(tiny_model, PROMPTS, **options)
    expected = [s if m else p for s, p, m in zip(steered, plain, meets, strict=True)]
    assert batched == expected


def test_condition_is_read_before_the_edit(tiny_model):
    early = sl.add(torch.ones(64), layers=[0])
    with pytest.raises(sl.SteerlensError, match="come before the condition"):
        sl.when(condition(), 0.0, early)


def test_condition_layer_must_be_named_for_several_layers():
    several = sl.SteeringVector({0: torch.ones(64), 2: torch.ones(64)})
    with pytest.raises(sl.SteerlensError, match="name the one to use"):
        sl.when(several, 0.0, behaviour())


def test_find_condition_grid_matches_scikit_learn(tiny_model):
    positives = ["Name a colour", "Name a fruit", "Name a city"]
    negatives = ["Tell me a long story about the sea", "Write a poem on boats", "Count to five"]
    gen = torch.Generator().manual_seed(2)
    cond = sl.SteeringVector({layer: torch.randn(64, generator=gen) for layer in (0, 1, 2)})
    search = sl.find_condition(tiny_model, cond, positives, negatives)
    texts = [sl.format_chat(tiny_model, t) for t in positives + negatives]
    proj = sl.project(tiny_model, texts, cond, position="mean")
    labels = [1] * 3 + [0] * 3
    for column, layer in enumerate(cond.layers):
        values = sorted(set(proj[:, column].tolist()))
        cuts = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
        best = max(
            f1_score(labels, [int(v > c if op == ">" else v < c) for v in proj[:, column]])
            for c in cuts
            for op in (">", "<")
        )
        got = search.table[search.table.layer == layer].f1.max()
        assert got == pytest.approx(best)
    assert search.best["f1"] == pytest.approx(search.table.f1.max())
    assert isinstance(search.when(sl.add(torch.ones(64), layers=[2])), sl.steering.Conditional)
