"""One-shot optimization on a tiny random Llama, checked against plain PyTorch on the HF model."""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go
import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError

from ..reference import hf_ids, hf_logits

PROMPTS = ["The weather today is", "My favourite food is a bowl of"]
LAYER = 1


def reference_loss(model, prompts, promote, suppress, vector, *, coldness=0.7, prompt_only=False):
    """The paper's loss, one unpadded example at a time."""
    total = torch.zeros(())
    for prompt in prompts:
        for completion, suppressing in [(c, False) for c in promote] + [
            (c, True) for c in suppress
        ]:
            p_ids, c_ids = hf_ids(model, prompt, completion)
            n_steered = len(p_ids) if prompt_only else None
            logits = hf_logits(model, p_ids + c_ids, vector, LAYER, n_steered)
            probs = torch.softmax(coldness * logits, -1)
            for k, token in enumerate(c_ids):
                p = probs[len(p_ids) - 1 + k, token]
                total = total - torch.log((1 - p if suppressing else p) + 1e-6)
    return total


def random_vector(seed=0, scale=2.0):
    return scale * torch.randn(64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("promote", "suppress", "kind"),
    [
        ([" sunny and warm"], [], "promotion"),
        ([], [" rain"], "suppression"),
        ([" sunny", " a cat"], [" rain"], "mixed"),
    ],
)
@pytest.mark.parametrize("positions", ["all", "prompt"])
def test_loss_matches_plain_pytorch(tiny_model, promote, suppress, kind, positions):
    v = random_vector()
    res = sl.optimize_one_shot(
        tiny_model,
        PROMPTS,
        promote or None,
        suppress or None,
        layer=LAYER,
        init=v,
        max_iters=0,
        positions=positions,
        progress=False,
    )
    with torch.no_grad():
        expected = reference_loss(
            tiny_model, PROMPTS, promote, suppress, v, prompt_only=positions == "prompt"
        )
    assert res.vector.method == f"one_shot_{kind}" and res.stop_reason == "max_iters"
    assert math.isclose(res.losses[0], float(expected), rel_tol=1e-4, abs_tol=1e-4)
    torch.testing.assert_close(res.vector[LAYER], v)


def test_first_step_is_adam_on_the_true_gradient(tiny_model):
    """Adam's first step moves each coordinate by lr * g / (|g| + 1e-8)."""
    v = random_vector(1)
    res = sl.optimize_one_shot(
        tiny_model, PROMPTS[0], " sunny", layer=LAYER, init=v, lr=0.05, max_iters=1, progress=False
    )
    v_ref = v.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        reference_loss(tiny_model, PROMPTS[:1], [" sunny"], [], v_ref), [v_ref]
    )
    expected = v - 0.05 * grad / (grad.abs() + 1e-8)
    torch.testing.assert_close(res.vector[LAYER], expected, atol=1e-5, rtol=1e-4)
    assert res.losses[1] < res.losses[0]


def test_cached_and_naive_trajectories_agree(tiny_model):
    kwargs = dict(layer=2, lr=0.2, max_iters=8, seed=3, tolerance=None, progress=False)
    cached = sl.optimize_one_shot(tiny_model, PROMPTS, " sunny", " rain", cached=True, **kwargs)
    naive = sl.optimize_one_shot(tiny_model, PROMPTS, " sunny", " rain", cached=False, **kwargs)
    assert len(cached.losses) == len(naive.losses) == 9
    for a, b in zip(cached.losses, naive.losses, strict=True):
        assert abs(a - b) < 1e-4
    torch.testing.assert_close(cached.vector[2], naive.vector[2], atol=1e-4, rtol=1e-4)
    assert cached.losses[-1] < cached.losses[0]


def test_model_left_as_found(tiny_model):
    before = {name: p.detach().clone() for name, p in tiny_model.named_parameters()}
    sl.optimize_one_shot(tiny_model, PROMPTS[0], " sunny", layer=LAYER, max_iters=2, progress=False)
    sl.optimize_one_shot(
        tiny_model, PROMPTS[0], " sunny", layer=LAYER, max_iters=2, cached=False, progress=False
    )
    for name, p in tiny_model.named_parameters():
        assert p.grad is None, name
        assert torch.equal(p, before[name]), name
    assert not any(point._forward_hooks for point in tiny_model.hook_dict.values())


def test_max_norm_is_respected(tiny_model):
    res = sl.optimize_one_shot(
        tiny_model,
        PROMPTS[0],
        " sunny",
        layer=LAYER,
        lr=1.0,
        max_iters=6,
        max_norm=3.0,
        tolerance=None,
        progress=False,
    )
    assert res.norms[0] == pytest.approx(1.0, abs=1e-5)  # starting_norm
    assert max(res.norms) <= 3.0 + 1e-4
    assert res.norms[-1] == pytest.approx(3.0, abs=1e-4)  # lr 1 reaches the cap at once
    assert float(res.vector[LAYER].norm()) == pytest.approx(res.norms[-1], abs=1e-5)


def test_stop_reasons(tiny_model):
    common = dict(layer=LAYER, lr=0.3, seed=1, progress=False)
    full = sl.optimize_one_shot(
        tiny_model, PROMPTS[0], " sunny", max_iters=6, tolerance=None, **common
    )
    assert full.stop_reason == "max_iters" and len(full.losses) == 7 == len(full.norms)
    # target loss: stops at the first vector whose loss is below it
    target = (full.losses[2] + full.losses[3]) / 2
    assert full.losses[2] > target > full.losses[3]
    early = sl.optimize_one_shot(
        tiny_model, PROMPTS[0], " sunny", max_iters=6, target_loss=target, **common
    )
    assert early.stop_reason == "target_loss"
    assert early.losses == pytest.approx(full.losses[:4], abs=1e-5)
    # tolerance: a huge one stops after the first step
    flat = sl.optimize_one_shot(
        tiny_model, PROMPTS[0], " sunny", max_iters=6, tolerance=1e9, **common
    )
    assert flat.stop_reason == "tolerance" and len(flat.losses) == 2


def test_result_serialises_and_plots(tiny_model):
    res = sl.optimize_one_shot(
        tiny_model,
        PROMPTS,
        " sunny",
        " rain",
        layer=-1,
        max_iters=2,
        target_loss=0.5,
        progress=False,
    )
    data = json.loads(json.dumps(res.to_dict()))
    assert data["layer"] == 2 and data["method"] == "one_shot_mixed"
    assert data["losses"] == res.losses and len(data["vector"]) == 64
    assert data["settings"]["promote"] == [" sunny"] and data["settings"]["coldness"] == 0.7
    assert res.vector.params["lr"] == 0.1 and res.vector.data_hash
    fig = res.figure()
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    assert list(fig.data[0].y) == res.losses


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(promote=""), "promote"),
        (dict(promote=[]), "promote"),
        (dict(suppress="   "), None),  # whitespace is a real token: allowed
        (dict(promote=None, suppress=None), "promote, suppress"),
        (dict(promote=" hi", layer=3), "out of range"),
        (dict(promote=" hi", layer=-4), "out of range"),
        (dict(promote=" hi", lr=0.0), "lr"),
        (dict(promote=" hi", max_iters=-1), "max_iters"),
        (dict(promote=" hi", max_norm=float("nan")), "max_norm"),
        (dict(promote=" hi", coldness=0.0), "coldness"),
        (dict(promote=" hi", positions="completion"), "positions"),
        (dict(promote=" hi", init=torch.zeros(3)), "init"),
        (dict(promote=" hi", init=torch.full((64,), float("nan"))), "NaN"),
    ],
)
def test_bad_input(tiny_model, kwargs, match):
    kwargs = {"layer": LAYER, "max_iters": 0, "progress": False, **kwargs}
    if match is None:
        sl.optimize_one_shot(tiny_model, PROMPTS[0], **kwargs)
        return
    with pytest.raises(SteerlensError, match=match):
        sl.optimize_one_shot(tiny_model, PROMPTS[0], **kwargs)


def test_bad_prompts(tiny_model):
    with pytest.raises(SteerlensError, match="prompt"):
        sl.optimize_one_shot(tiny_model, [], " hi", layer=LAYER, progress=False)


@pytest.mark.filterwarnings("ignore::UserWarning")  # TL notes the edited ln_final output
def test_non_finite_loss_stops_with_a_clear_message(tiny_model):
    """A model whose logits turn NaN: the loop stops with a clear error, not a NaN vector."""

    def poison(_module, _inputs, output):
        return output * float("nan")

    handle = tiny_model.hook_dict["ln_final.hook_normalized"].register_forward_hook(poison)
    try:
        with pytest.raises(SteerlensError, match=r"loss: became nan at step 0 .*Lower lr"):
            sl.optimize_one_shot(tiny_model, PROMPTS[0], " sunny", layer=LAYER, progress=False)
    finally:
        handle.remove()


def test_non_finite_gradient_stops_with_a_clear_message(tiny_model):
    """A residual pushed past float32's range: NaN gradient, a clear error."""
    huge = torch.full((64,), 3e38)
    with pytest.raises(SteerlensError, match=r"gradient became NaN or inf at step 0"):
        sl.optimize_one_shot(
            tiny_model, PROMPTS[0], " sunny", layer=LAYER, init=huge, progress=False
        )
