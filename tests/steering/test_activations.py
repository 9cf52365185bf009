"""collect_activations / project against Hugging Face hidden states (independent path)."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError
from steerlens.core.tokens import encode
from steerlens.core.validate import check_model

TEXTS = ["The cat sat on the mat.", "Hi", "A much longer sentence about rivers and mountains."]


def hf_hidden(model, text):
    """Plain HF forward of one unpadded text: hidden_states[l] is resid_pre of block l."""
    ids = torch.tensor([encode(model, text)])
    with torch.no_grad():
        return model.original_model(ids, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("position", ["last", "mean", 1, [0, -1]])
def test_matches_hf_hidden_states(tiny_model, position):
    acts = sl.collect_activations(tiny_model, TEXTS, [0, 2], position=position, batch_size=2)
    assert acts.shape == (3, 2, 64)
    for row, text in enumerate(TEXTS):
        hidden = hf_hidden(tiny_model, text)
        for col, layer in enumerate([0, 2]):
            h = hidden[layer][0]
            if position == "last":
                expected = h[-1]
            elif position == "mean":
                expected = h.mean(0)
            else:
                idx = [position] if isinstance(position, int) else position
                expected = h[idx].mean(0)
            torch.testing.assert_close(acts[row, col], expected, atol=1e-4, rtol=1e-4)


def test_padded_batches_equal_single_runs(tiny_model):
    batched = sl.collect_activations(tiny_model, TEXTS, "all", position="mean", batch_size=3)
    singles = torch.cat(
        [sl.collect_activations(tiny_model, [t], "all", position="mean") for t in TEXTS]
    )
    torch.testing.assert_close(batched, singles, atol=1e-4, rtol=1e-4)


def test_resid_post_is_next_resid_pre(tiny_model):
    post = sl.collect_activations(tiny_model, TEXTS, [0], site="resid_post")
    pre = sl.collect_activations(tiny_model, TEXTS, [1], site="resid_pre")
    torch.testing.assert_close(post, pre)


def test_stops_after_last_needed_layer(tiny_model):
    fired = []
    handle = tiny_model.hook_dict["blocks.2.hook_resid_pre"].register_forward_hook(
        lambda *_: fired.append(1)
    )
    try:
        sl.collect_activations(tiny_model, TEXTS, [0])
    finally:
        handle.remove()
    assert fired == []


def test_project_is_dot_with_unit_direction(tiny_model):
    vec = sl.SteeringVector({1: torch.randn(64), 2: torch.randn(64)})
    proj = sl.project(tiny_model, TEXTS, vec)
    acts = sl.collect_activations(tiny_model, TEXTS, [1, 2])
    assert proj.shape == (3, 2)
    for col, layer in enumerate([1, 2]):
        expected = acts[:, col] @ (vec[layer] / vec[layer].norm())
        torch.testing.assert_close(proj[:, col], expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": []}, "empty list"),
        ({"texts": "one string"}, "single string"),
        ({"texts": ["ok", ""]}, "non-empty string"),
        ({"layers": [5]}, "out of range"),
        ({"layers": [-4]}, "out of range"),
        ({"layers": []}, "at least one layer"),
        ({"site": "resid"}, "site"),
        ({"position": "first"}, "position"),
        ({"position": [40]}, "out of range"),
        ({"batch_size": 0}, "batch_size"),
        ({"texts": ["word " * 300]}, "longer than the model's context"),
    ],
)
def test_bad_input(tiny_model, kwargs, message):
    args = {"texts": TEXTS, "layers": [1], **kwargs}
    with pytest.raises(SteerlensError, match=message):
        sl.collect_activations(tiny_model, args.pop("texts"), args.pop("layers"), **args)


def test_model_without_hooks_is_refused():
    """In production steerlens says what it expected; under the test suite's beartype the
    ``HookedModel`` annotation catches it first. Both are TypeErrors."""
    with pytest.raises(TypeError, match="TransformerLens model|HookedModel"):
        sl.collect_activations(torch.nn.Linear(2, 2), TEXTS, [0])
    with pytest.raises(SteerlensError, match="TransformerLens model"):
        check_model(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="load it first"):
        check_model("HuggingFaceTB/SmolLM2-135M-Instruct")
