"""optimize_batch: one vector per prompt in one batch, each trajectory equal to its single run."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError

from .test_optimize import reference_loss

# different lengths, so the batch left-pads the shorter prompts
PROMPTS = [
    "The weather today is",
    "My favourite food is a big warm bowl of",
    "Cats",
]
LAYER = 1


def assert_same_trajectory(batched, single):
    assert batched.stop_reason == single.stop_reason
    assert len(batched.losses) == len(single.losses)
    torch.testing.assert_close(batched.losses, single.losses, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched.norms, single.norms, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched.vector[LAYER], single.vector[LAYER], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize(("promote", "suppress"), [(" sunny and warm", None), (" sunny", " rain")])
def test_trajectories_equal_single_runs(tiny_model, promote, suppress, cached):
    common = dict(layer=LAYER, lr=0.2, max_iters=6, tolerance=None, cached=cached, progress=False)
    batched = sl.oneshot.optimize_batch(tiny_model, PROMPTS, promote, suppress, **common)
    assert len(batched) == len(PROMPTS)
    for prompt, res in zip(PROMPTS, batched, strict=True):
        single = sl.optimize_one_shot(tiny_model, prompt, promote, suppress, **common)
        assert_same_trajectory(res, single)
        assert res.settings["prompts"] == [prompt] and res.settings["batch_size"] == 3


def first_below(losses, target):
    return next((k for k, loss in enumerate(losses) if loss < target), None)


def test_rows_stop_on_their_own(tiny_model):
    """Per-row target loss: rows stop at different steps, the others go on unchanged."""
    common = dict(layer=LAYER, lr=0.3, max_iters=8, tolerance=None, progress=False)
    full = [sl.optimize_one_shot(tiny_model, p, " sunny", **common) for p in PROMPTS]
    # a target (a midpoint of visited losses) at which the rows stop at the most distinct steps
    losses = sorted(loss for res in full for loss in res.losses)
    candidates = [(a + b) / 2 for a, b in zip(losses, losses[1:], strict=False)]
    target = max(candidates, key=lambda t: len({first_below(r.losses, t) for r in full}))
    stops = [first_below(r.losses, target) for r in full]
    assert len(set(stops)) > 1, "the test needs rows stopping at different steps"
    batched = sl.oneshot.optimize_batch(tiny_model, PROMPTS, " sunny", target_loss=target, **common)
    for res, single, stop in zip(batched, full, stops, strict=True):
        expected = single.losses if stop is None else single.losses[: stop + 1]
        assert res.losses == pytest.approx(expected, abs=1e-4, rel=1e-4)
        assert res.norms == pytest.approx(single.norms[: len(expected)], abs=1e-4, rel=1e-4)
        assert res.stop_reason == ("max_iters" if stop is None else "target_loss")


def test_first_loss_and_step_against_plain_pytorch(tiny_model):
    """Each row's initial loss is the paper's loss on its prompt alone; its first step is
    Adam's (lr * g / |g|) on that loss's gradient."""
    inits = torch.randn(3, 64, generator=torch.Generator().manual_seed(4))
    res = sl.oneshot.optimize_batch(
        tiny_model,
        PROMPTS,
        " sunny",
        layer=LAYER,
        init=inits,
        lr=0.05,
        max_iters=1,
        tolerance=None,
        progress=False,
    )
    for i, prompt in enumerate(PROMPTS):
        v = inits[i].clone().requires_grad_(True)
        loss = reference_loss(tiny_model, [prompt], [" sunny"], [], v)
        (grad,) = torch.autograd.grad(loss, [v])
        assert res[i].losses[0] == pytest.approx(float(loss.detach()), rel=1e-4, abs=1e-4)
        expected = inits[i] - 0.05 * grad / (grad.abs() + 1e-8)
        torch.testing.assert_close(res[i].vector[LAYER], expected, atol=1e-5, rtol=1e-4)


def test_max_norm_per_row(tiny_model):
    res = sl.oneshot.optimize_batch(
        tiny_model,
        PROMPTS,
        " sunny",
        layer=LAYER,
        lr=1.0,
        max_iters=4,
        max_norm=3.0,
        tolerance=None,
        progress=False,
    )
    for r in res:
        assert max(r.norms) <= 3.0 + 1e-4 and r.norms[-1] == pytest.approx(3.0, abs=1e-4)


def test_bad_input_is_refused(tiny_model):
    with pytest.raises(SteerlensError, match="promote, suppress"):
        sl.oneshot.optimize_batch(tiny_model, PROMPTS, layer=LAYER)
    with pytest.raises(SteerlensError, match="one starting vector per prompt"):
        sl.oneshot.optimize_batch(
            tiny_model, PROMPTS, " a", layer=LAYER, init=torch.zeros(2, 64), progress=False
        )
    with pytest.raises(SteerlensError, match="lr"):
        sl.oneshot.optimize_batch(tiny_model, PROMPTS, " a", layer=LAYER, lr=-1.0)
