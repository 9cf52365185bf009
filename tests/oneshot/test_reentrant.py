"""Reentrant steering on a tiny random Llama, KL checked against plain PyTorch on the HF model."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError

from ..reference import hf_ids, hf_logits

PROMPT = "The weather today is"
COMPLETION = " sunny and warm"


def first_vector(layer=0, seed=0, scale=3.0):
    v = scale * torch.randn(64, generator=torch.Generator().manual_seed(seed))
    return sl.SteeringVector({layer: v})


def reference_kl(model, first, later_layer, v_later, over="completion"):
    """sum_k KL(p_k || q_k), each run unpadded on the HF model with a decoder-layer pre-hook."""
    p_ids, c_ids = hf_ids(model, PROMPT, COMPLETION)
    ids = p_ids + c_ids
    (layer,) = first.layers
    logp = torch.log_softmax(hf_logits(model, ids, first[layer], layer), -1)
    logq = torch.log_softmax(hf_logits(model, ids, v_later, later_layer), -1)
    rows = slice(len(p_ids) - 1, len(ids) - 1) if over == "completion" else slice(0, len(ids) - 1)
    return float((logp.exp() * (logp - logq))[rows].sum())


@pytest.mark.parametrize("over", ["completion", "all"])
def test_kl_matches_plain_pytorch(tiny_model, over):
    first = first_vector()
    init = 0.5 * torch.randn(64, generator=torch.Generator().manual_seed(5))
    res = sl.oneshot.reentrant(
        tiny_model,
        first,
        PROMPT,
        COMPLETION,
        later_layer=2,
        over=over,
        init=init,
        max_iters=0,
        progress=False,
    )
    with torch.no_grad():
        expected = reference_kl(tiny_model, first, 2, init, over)
    assert res.losses[0] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_reentrant_lowers_kl_and_cached_equals_naive(tiny_model):
    first = first_vector()
    kwargs = dict(later_layer=1, lr=0.3, max_iters=15, tolerance=None, progress=False)
    res = sl.oneshot.reentrant(tiny_model, first, PROMPT, COMPLETION, **kwargs)
    naive = sl.oneshot.reentrant(tiny_model, first, PROMPT, COMPLETION, cached=False, **kwargs)
    assert res.losses == pytest.approx(naive.losses, abs=1e-4)
    with torch.no_grad():
        unsteered = reference_kl(tiny_model, first, 1, torch.zeros(64))
        final = reference_kl(tiny_model, first, 1, res.vector[1])
    assert final == pytest.approx(res.losses[-1], rel=1e-3, abs=1e-4)
    assert final < 0.5 * unsteered
    assert res.vector.method == "one_shot_reentrant" and res.vector.layers == [1]
    assert res.settings["first_layer"] == 0


def test_accepts_a_one_shot_result(tiny_model):
    first = sl.optimize_one_shot(
        tiny_model, PROMPT, COMPLETION, layer=0, max_iters=2, progress=False
    )
    res = sl.oneshot.reentrant(
        tiny_model, first, PROMPT, COMPLETION, later_layer=2, max_iters=1, progress=False
    )
    assert res.settings["first_method"] == "one_shot_promotion"


@pytest.mark.parametrize(
    ("vector", "kwargs", "match"),
    [
        (first_vector(layer=1), dict(later_layer=1), "must come after"),
        (first_vector(layer=1), dict(later_layer=0), "must come after"),
        (first_vector(), dict(later_layer=3), "out of range"),
        (first_vector() + first_vector(seed=1), dict(later_layer=2, over="every"), "over"),
        (
            sl.SteeringVector({0: torch.ones(64), 1: torch.ones(64)}),
            dict(later_layer=2),
            "one layer",
        ),
        (
            sl.SteeringVector({0: torch.ones(64)}, site="resid_post"),
            dict(later_layer=2),
            "resid_pre",
        ),
        (sl.SteeringVector({0: torch.ones(8)}), dict(later_layer=2), "d_model"),
    ],
)
def test_bad_input(tiny_model, vector, kwargs, match):
    with pytest.raises(SteerlensError, match=match):
        sl.oneshot.reentrant(tiny_model, vector, PROMPT, COMPLETION, progress=False, **kwargs)


def test_empty_completion_is_refused(tiny_model):
    with pytest.raises(SteerlensError, match="completion"):
        sl.oneshot.reentrant(tiny_model, first_vector(), PROMPT, "", later_layer=2, progress=False)
