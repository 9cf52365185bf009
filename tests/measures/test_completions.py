"""Completion log-probabilities and the transfer report on a tiny random Llama."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError

from ..reference import hf_ids, hf_logits

PROMPTS = ["The weather today is", "My favourite food is a bowl of", "Hi"]


def reference_logprob(model, prompt, completion, vector=None, layer=1):
    p_ids, c_ids = hf_ids(model, prompt, completion)
    v = torch.zeros(64) if vector is None else vector
    logp = torch.log_softmax(hf_logits(model, p_ids + c_ids, v, layer), -1)
    return float(sum(logp[len(p_ids) - 1 + k, t] for k, t in enumerate(c_ids)))


def test_completion_logprob_matches_plain_pytorch(tiny_model):
    got = sl.measures.completion_logprob(tiny_model, PROMPTS, " sunny and warm", batch_size=2)
    assert got.shape == (3,)
    with torch.no_grad():
        expected = [reference_logprob(tiny_model, p, " sunny and warm") for p in PROMPTS]
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-4, rtol=1e-4)


def test_completion_logprob_per_prompt_and_under_steering(tiny_model):
    v = 2.0 * torch.randn(64, generator=torch.Generator().manual_seed(0))
    completions = [" a", " rice and beans", " there"]
    with sl.steer(tiny_model, sl.add(v, layers=[1])):
        got = sl.measures.completion_logprob(tiny_model, PROMPTS, completions)
    with torch.no_grad():
        expected = [
            reference_logprob(tiny_model, p, c, v)
            for p, c in zip(PROMPTS, completions, strict=True)
        ]
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-4, rtol=1e-4)


def test_single_prompt_string(tiny_model):
    assert sl.measures.completion_logprob(tiny_model, "Hi", " there").shape == (1,)


@pytest.mark.parametrize(
    ("prompts", "completion", "match"),
    [
        ([], " a", "prompts"),
        (PROMPTS, "", "non-empty string"),
        (PROMPTS, [" a", " b"], "one per prompt"),
    ],
)
def test_completion_logprob_bad_input(tiny_model, prompts, completion, match):
    with pytest.raises(SteerlensError, match=match):
        sl.measures.completion_logprob(tiny_model, prompts, completion)


def test_transfer_report(tiny_model):
    vec = sl.SteeringVector({1: 3.0 * torch.randn(64, generator=torch.Generator().manual_seed(2))})
    rep = sl.measures.transfer_report(
        tiny_model, vec, PROMPTS, " sunny", chat=False, coeff=2.0, max_new_tokens=4, batch_size=2
    )
    table = rep.table
    assert list(table["prompt"]) == PROMPTS
    base = sl.measures.completion_logprob(tiny_model, PROMPTS, " sunny")
    with sl.steer(tiny_model, sl.add(vec, coeff=2.0)):
        steered = sl.measures.completion_logprob(tiny_model, PROMPTS, " sunny")
        replies = sl.generate(tiny_model, PROMPTS, chat=False, max_new_tokens=4)
    torch.testing.assert_close(torch.tensor(table["logprob_unsteered"].values), base.double())
    torch.testing.assert_close(torch.tensor(table["logprob_steered"].values), steered.double())
    assert list(table["completion_steered"]) == replies
    change = float((steered - base).mean())  # float32 log-probs: agree to their precision
    assert rep.summary["mean_logprob_change"] == pytest.approx(change, abs=1e-5)
    for column in ("starts_with", "contains", "refusal"):
        for name in ("unsteered", "steered"):
            assert rep.summary[f"{column}_{name}"] == table[f"{column}_{name}"].mean()
    assert json.loads(json.dumps(rep.to_dict()))["summary"]["n_prompts"] == 3
    assert isinstance(rep.figure(), go.Figure)


def test_transfer_report_clamp_and_intervention_agree(tiny_model):
    vec = sl.SteeringVector({1: torch.randn(64, generator=torch.Generator().manual_seed(3))})
    kwargs = dict(chat=False, max_new_tokens=3)
    by_value = sl.measures.transfer_report(tiny_model, vec, PROMPTS, " a", clamp=2.5, **kwargs)
    given = sl.measures.transfer_report(
        tiny_model, sl.clamp(vec, value=2.5), PROMPTS, " a", **kwargs
    )
    assert by_value.table.equals(given.table)
    assert "clamp(value=2.5)" in by_value.summary["intervention"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(coeff=1.0, clamp=1.0), "not both"),
        (dict(target=""), "target"),
        (dict(vector=sl.add(torch.ones(64), layers=[1]), coeff=2.0), "coeff"),
    ],
)
def test_transfer_report_bad_input(tiny_model, kwargs, match):
    args = {"vector": sl.SteeringVector({1: torch.ones(64)}), "target": " a", **kwargs}
    with pytest.raises(SteerlensError, match=match):
        sl.measures.transfer_report(
            tiny_model, args.pop("vector"), PROMPTS, args.pop("target"), chat=False, **args
        )


def test_baseline_reuse_gives_the_same_report(tiny_model):
    first = sl.SteeringVector({1: torch.randn(64, generator=torch.Generator().manual_seed(4))})
    second = sl.SteeringVector({2: torch.randn(64, generator=torch.Generator().manual_seed(5))})
    kwargs = dict(chat=False, max_new_tokens=3)
    base = sl.measures.transfer_report(tiny_model, first, PROMPTS, " a", **kwargs)
    fresh = sl.measures.transfer_report(tiny_model, second, PROMPTS, " a", **kwargs)
    reused = sl.measures.transfer_report(tiny_model, second, PROMPTS, " a", baseline=base, **kwargs)
    assert reused.table.drop(columns="logprob_unsteered").equals(
        fresh.table.drop(columns="logprob_unsteered")
    )
    torch.testing.assert_close(
        torch.tensor(reused.table["logprob_unsteered"].values),
        torch.tensor(fresh.table["logprob_unsteered"].values),
    )
    with pytest.raises(SteerlensError, match="baseline.*max_new_tokens"):
        sl.measures.transfer_report(
            tiny_model, second, PROMPTS, " a", chat=False, max_new_tokens=4, baseline=base
        )
    with pytest.raises(SteerlensError, match="baseline.*prompts"):
        sl.measures.transfer_report(tiny_model, second, PROMPTS[:2], " a", baseline=base, **kwargs)
