"""Projection figures: shapes, traces, and per-token values computed independently."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError
from steerlens.core.tokens import encode
from steerlens.vectors.plots import token_projections


def test_token_projections_match_run_with_cache(tiny_model):
    vec = sl.SteeringVector({1: torch.randn(64), 2: torch.randn(64)})
    text = "Steering vectors read the residual stream."
    values = token_projections(tiny_model, text, vec)
    ids = torch.tensor([encode(tiny_model, text)])
    _, cache = tiny_model.run_with_cache(ids)
    assert values.shape == (ids.shape[1], 2)
    for column, layer in enumerate([1, 2]):
        expected = cache[f"blocks.{layer}.hook_resid_pre"][0] @ (vec[layer] / vec[layer].norm())
        torch.testing.assert_close(values[:, column], expected, atol=1e-4, rtol=1e-4)
    fig = sl.vectors.plot_token_heatmap(tiny_model, text, vec)
    torch.testing.assert_close(torch.tensor(fig.data[0].z), values.T, atol=1e-6, rtol=1e-6)
    assert len(fig.data[0].x) == ids.shape[1]


@pytest.mark.parametrize("kind", ["violin", "line"])
def test_plot_projections(kind):
    proj = torch.tensor([[1.0, 2.0], [1.5, 2.5], [-1.0, -2.0]])
    fig = sl.vectors.plot_projections(proj, ["pos", "pos", "neg"], [3, 7], kind=kind)
    assert [trace.name for trace in fig.data] == ["pos", "neg"]
    if kind == "line":
        assert list(fig.data[0].y) == [1.25, 2.25]


def test_plot_projections_bad_input():
    with pytest.raises(SteerlensError, match="expected shape"):
        sl.vectors.plot_projections(torch.zeros(3, 2), ["a", "b"], [1, 2])
    with pytest.raises(SteerlensError, match="kind"):
        sl.vectors.plot_projections(torch.zeros(2, 2), ["a", "b"], [1, 2], kind="bar")
