"""Steering traces: exactly the tokens each rule edits, per forward call, with |Δx|."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from tests.user_kinds import Scale

PROMPTS = ["Name a colour", "Tell me a story about the sea and a little boat"]
N_NEW = 4


def vec(seed=0, layers=(1, 2)):
    gen = torch.Generator().manual_seed(seed)
    return sl.SteeringVector({layer: torch.randn(64, generator=gen) for layer in layers})


def prompt_lengths(model):
    return [len(encode(model, sl.format_chat(model, p))) for p in PROMPTS]


@pytest.mark.parametrize("cache", [True, False])
def test_generated_lists_exactly_the_generated_tokens_fed_back(tiny_model, cache):
    v = vec()
    with sl.steer(tiny_model, sl.add(v, 2.0, positions="generated"), trace=True) as t:
        sl.generate(
            tiny_model, PROMPTS, max_new_tokens=N_NEW, stop_at_eos=False, use_past_kv_cache=cache
        )
    table = t.table
    for row, length in enumerate(prompt_lengths(tiny_model)):
        expected = set(range(length, length + N_NEW - 1))  # the last new token is not fed back
        for layer in (1, 2):
            mine = table[(table.row == row) & (table.layer == layer)]
            assert set(mine.position) == expected
            if cache:  # one new token per call after the prompt pass
                assert sorted(mine.position) == sorted(expected)
                assert list(mine.call) == list(range(1, N_NEW))
    # adding c d moves every edited token by exactly |c d|
    norms = torch.tensor([float(2.0 * v[layer].norm()) for layer in table.layer])
    torch.testing.assert_close(torch.tensor(table.delta.to_numpy()), norms, rtol=1e-5, atol=1e-5)


def test_prompt_lists_exactly_the_prompt(tiny_model):
    with sl.steer(
        tiny_model, Scale(torch.ones(64) / 8, 3.0, layers=[1], positions="prompt"), trace=True
    ) as t:
        sl.generate(tiny_model, PROMPTS, max_new_tokens=N_NEW, stop_at_eos=False)
    table = t.table
    assert set(table.call) == {0}
    for row, length in enumerate(prompt_lengths(tiny_model)):
        assert sorted(table[table.row == row].position) == list(range(length))
    assert (table.label == "Scale() at blocks.{1}.hook_resid_pre, prompt positions").all()
    assert (table.delta > 0).all()


def test_a_row_that_misses_its_condition_lists_nothing(tiny_model):
    cond = vec(5, layers=(1,))
    texts = [sl.format_chat(tiny_model, p) for p in PROMPTS]
    proj = sl.project(tiny_model, texts, cond, position="mean")[:, 0]
    threshold = float(proj.mean())
    meets = [row for row in range(len(PROMPTS)) if proj[row] > threshold]
    assert len(meets) == 1
    rule = sl.when(cond, threshold, sl.add(vec(6), 1.0, layers=[2]))
    with sl.steer(tiny_model, sl.add(vec(7), 0.5, layers=[2]), rule, trace=True) as t:
        sl.generate(tiny_model, PROMPTS, max_new_tokens=N_NEW, stop_at_eos=False)
    table = t.table
    assert set(table[table.intervention == 1].row) == set(meets)
    assert set(table[table.intervention == 0].row) == {0, 1}  # the unconditional one: both


def test_table_and_figure(tiny_model):
    with sl.steer(tiny_model, sl.add(vec(), 1.0, positions=[0, -1]), trace=True) as t:
        assert list(t.table.columns) == [
            "call",
            "intervention",
            "label",
            "layer",
            "row",
            "position",
            "delta",
        ]
        assert t.table.empty
        tokens = encode(tiny_model, "One two three four five")
        tiny_model(torch.tensor([tokens]))
    assert sorted(set(t.table.position)) == [0, len(tokens) - 1]
    fig = t.figure()
    assert isinstance(fig, go.Figure)
    assert fig.data[0].z.shape == (2, 2)  # layers x positions
    with pytest.raises(sl.SteerlensError, match="intervention"):
        t.figure(intervention=3)
    with sl.steer(tiny_model, sl.add(vec(), 1.0)) as steering:
        assert isinstance(steering, list)  # without trace=True: the interventions
    with pytest.raises(TypeError, match="trace"):
        with sl.steer(tiny_model, sl.add(vec(), 1.0), trace="yes"):
            pass
