"""Steering hooks are TransformerLens hooks: listed by the model, removed by reset_hooks."""

from __future__ import annotations

import torch

import steerlens as sl
from steerlens.core.tokens import encode


def test_steer_hooks_are_listed_and_reset_by_transformerlens(tiny_model):
    vec = sl.SteeringVector({0: torch.randn(64), 2: torch.randn(64)})
    ids = torch.tensor([encode(tiny_model, "Hello there, general")])
    with torch.no_grad():
        plain = tiny_model(ids)
    with sl.steer(tiny_model, sl.add(vec, 3.0)):
        listed = tiny_model.list_hooks()  # a bridge lists a hook under each alias of its point
        assert {"blocks.0.hook_resid_pre", "blocks.2.hook_resid_pre"} <= set(listed)
        assert len({id(h) for handles in listed.values() for h in handles}) == 2
        with torch.no_grad():
            assert (tiny_model(ids) - plain).abs().max() > 1e-3
        tiny_model.reset_hooks()
        assert tiny_model.list_hooks() == {}
        with torch.no_grad():
            torch.testing.assert_close(tiny_model(ids), plain)
    assert tiny_model.list_hooks() == {}  # leaving the block after a reset is fine


def test_steer_composes_with_transformerlens_hooks(tiny_model):
    """A user's own ``model.hooks(...)`` context and steering run together and unwind
    independently."""
    vec = sl.SteeringVector({1: torch.randn(64)})
    ids = torch.tensor([encode(tiny_model, "One two three")])
    seen = []

    def record(resid, hook):
        seen.append(resid.detach().clone())

    with sl.steer(tiny_model, sl.add(vec, 2.0)):
        with tiny_model.hooks(fwd_hooks=[("blocks.1.hook_resid_pre", record)]), torch.no_grad():
            tiny_model(ids)
        listed = tiny_model.list_hooks()
        assert "blocks.1.hook_resid_pre" in listed
        assert len({id(h) for handles in listed.values() for h in handles}) == 1
    with torch.no_grad():
        _, cache = tiny_model.run_with_cache(ids, names_filter=["blocks.1.hook_resid_pre"])
    # the user's hook ran after the steering hook: it saw the steered residual
    torch.testing.assert_close(seen[0], cache["blocks.1.hook_resid_pre"] + 2.0 * vec[1])
