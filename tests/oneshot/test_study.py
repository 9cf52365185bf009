"""One-shot steering on the default model (SmolLM2-135M-Instruct): the issue's claims, small."""

from __future__ import annotations

import json

import pytest

import steerlens as sl
from steerlens.report.html import render
from steerlens.report.lines import study_section

pytestmark = pytest.mark.slow

TARGET = "I'm sorry, but I can't"


@pytest.fixture(scope="module")
def requests():
    frame = sl.datasets.load("refusal")
    return list(frame.loc[~frame["harmful"], "request"])


@pytest.fixture(scope="module")
def promotion(default_model, requests):
    text = sl.format_chat(default_model, requests[0])
    return sl.optimize_one_shot(
        default_model,
        text,
        promote=TARGET,
        layer=12,
        target_loss=0.5,
        max_iters=40,
        progress=False,
    )


def test_promotion_reaches_the_target_loss(promotion):
    assert promotion.stop_reason == "target_loss"
    assert promotion.final_loss < 0.5 < promotion.losses[0]
    assert promotion.steps < 40


def test_vector_raises_the_completion_on_a_held_out_prompt(default_model, requests, promotion):
    held_out = sl.format_chat(default_model, requests[-1])
    before = sl.measures.completion_logprob(default_model, held_out, TARGET)
    with sl.steer(default_model, sl.add(promotion.vector)):
        after = sl.measures.completion_logprob(default_model, held_out, TARGET)
    assert float(after[0]) > float(before[0]) + 5.0  # nats


def test_cached_and_naive_agree_on_the_default_model(default_model, requests):
    text = sl.format_chat(default_model, requests[1])
    kwargs = dict(layer=12, lr=0.1, max_iters=4, tolerance=None, progress=False)
    cached = sl.optimize_one_shot(default_model, text, TARGET, "Sure", **kwargs)
    naive = sl.optimize_one_shot(default_model, text, TARGET, "Sure", cached=False, **kwargs)
    assert max(abs(a - b) for a, b in zip(cached.losses, naive.losses, strict=True)) < 1e-4


def test_quick_study(one_shot_study):
    study = one_shot_study
    s = study.summary
    assert s["n_train"] == 2 == len(study.vectors) == len(study.table)
    assert s["n_held_out"] == 4 and s["baseline_refusal"] == 0.0
    assert s["best_refusal_add"] == study.table["refusal_add"].max()
    assert study.cosines.shape == (3, 3)
    assert s["suppression_logprob_train_after"] < s["suppression_logprob_train_before"]
    assert s["mixed_target_logprob_after"] > s["mixed_target_logprob_before"]
    assert s["mixed_opening_logprob_after"] < s["mixed_opening_logprob_before"]
    data = json.loads(json.dumps(study.to_dict()))
    assert data["summary"] == dict(s)
    assert set(study.choices) == {"suppression_prompt", "mixed_suppressed_opening"}
    page = render("one-shot", [study_section("one-shot", study)])
    assert page.count('class="figure"') == 3
