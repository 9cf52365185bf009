"""add / ablate / clamp / steer on a tiny random model, checked independently."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlens as sl
from steerlens import SteerlensError
from steerlens.core.tokens import encode
from tests.reference import edited

TEXT = "The quick brown fox jumps over the lazy dog."


def random_vector(layers=(1,), seed=0, scale=1.0, d=64):
    gen = torch.Generator().manual_seed(seed)
    return sl.SteeringVector({layer: scale * torch.randn(d, generator=gen) for layer in layers})


def ids(model, text=TEXT):
    return torch.tensor([encode(model, text)])


def resid(model, layer, site="resid_pre", text=TEXT):
    _, cache = model.run_with_cache(ids(model, text), names_filter=[f"blocks.{layer}.hook_{site}"])
    return cache[f"blocks.{layer}.hook_{site}"][0]


def test_add_matches_plain_pytorch_on_hf_model(tiny_model):
    """Steering at resid_pre of layer 1 == adding c*v to the input of HF decoder layer 1."""
    vec = random_vector()
    hf = tiny_model.original_model

    with edited(hf, "", 1, "resid_pre", lambda x: x + 3.0 * vec[1]), torch.no_grad():
        expected = hf(ids(tiny_model)).logits
    with sl.steer(tiny_model, sl.add(vec, coeff=3.0)), torch.no_grad():
        steered = tiny_model(ids(tiny_model))
    unsteered = tiny_model(ids(tiny_model))
    torch.testing.assert_close(steered, expected, atol=1e-4, rtol=1e-4)
    assert (steered - unsteered).abs().max() > 1e-2


@pytest.mark.parametrize("site", ["resid_pre", "resid_mid", "resid_post"])
def test_ablate_leaves_zero_projection(tiny_model, site):
    vec = random_vector(layers=(0, 2))
    with sl.steer(tiny_model, sl.ablate(vec, site=site)):
        for layer in (0, 2):
            x = resid(tiny_model, layer, site)
            assert (x @ vec[layer] / vec[layer].norm()).abs().max() < 1e-4
    before = resid(tiny_model, 2, site) @ vec[2]
    assert before.abs().max() > 1e-3  # the test would be vacuous otherwise


@settings(max_examples=10, deadline=None)
@given(value=st.floats(-20, 20), seed=st.integers(0, 100))
def test_clamp_sets_projection(tiny_model, value, seed):
    vec = random_vector(seed=seed)
    unit = vec[1] / vec[1].norm()
    with sl.steer(tiny_model, sl.clamp(vec, value=value)):
        x = resid(tiny_model, 1)
    torch.testing.assert_close(x @ unit, torch.full((x.shape[0],), value), atol=1e-3, rtol=1e-4)


def test_add_then_subtract_is_identity(tiny_model):
    vec = random_vector(layers=(1, 2), scale=5.0)
    with torch.no_grad():
        plain = tiny_model(ids(tiny_model))
        with sl.steer(tiny_model, sl.add(vec, 2.5), sl.add(vec, -2.5)):
            both = tiny_model(ids(tiny_model))
    torch.testing.assert_close(both, plain, atol=1e-4, rtol=1e-4)


def test_rank_k_ablation_removes_the_span(tiny_model):
    a, b = random_vector(seed=1), random_vector(seed=2)
    with sl.steer(tiny_model, sl.ablate([a, b])):
        x = resid(tiny_model, 1)
    for v in (a, b, a * 0.3 + b * 2.0):
        assert (x @ v[1]).abs().max() < 1e-3


def test_rank_k_from_tensor_and_dependent_directions(tiny_model):
    rows = torch.randn(3, 64)
    with sl.steer(tiny_model, sl.ablate(rows, layers=[1])):
        x = resid(tiny_model, 1)
    assert (x @ rows.T).abs().max() < 1e-3
    with pytest.raises(SteerlensError, match="linearly dependent"):
        sl.ablate(torch.stack([rows[0], 2 * rows[0]]), layers=[1])


def test_resid_post_equals_next_resid_pre(tiny_model):
    vec = random_vector(layers=(1,), scale=3.0)
    with torch.no_grad():
        with sl.steer(tiny_model, sl.add(vec, site="resid_post")):
            post = tiny_model(ids(tiny_model))
        with sl.steer(tiny_model, sl.add(sl.SteeringVector({2: vec[1]}))):
            pre = tiny_model(ids(tiny_model))
    torch.testing.assert_close(post, pre, atol=1e-4, rtol=1e-4)


def test_resid_mid_edit_is_in_the_path(tiny_model):
    vec = random_vector(layers=(1,), scale=3.0)
    plain_mid = resid(tiny_model, 1, "resid_mid")
    with sl.steer(tiny_model, sl.add(vec, site="resid_mid")):
        mid = resid(tiny_model, 1, "resid_mid")
        post = resid(tiny_model, 1, "resid_post")
        mlp_out = resid(tiny_model, 1, "mlp_out")
    torch.testing.assert_close(mid, plain_mid + vec[1], atol=1e-4, rtol=1e-4)
    assert (post - resid(tiny_model, 1, "resid_post")).abs().max() > 1e-2
    # the edit is in the residual stream the MLP output is added to, not only the MLP input
    torch.testing.assert_close(post - mlp_out, plain_mid + vec[1], atol=1e-4, rtol=1e-4)


def hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@settings(max_examples=10, deadline=None)
@given(raise_inside=st.booleans(), n=st.integers(1, 3))
def test_hooks_always_removed(tiny_model, raise_inside, n):
    before = hook_count(tiny_model)
    interventions = [sl.add(random_vector(layers=(0, 1, 2)), 1.0) for _ in range(n)]
    try:
        with sl.steer(tiny_model, *interventions):
            assert hook_count(tiny_model) > before
            if raise_inside:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert hook_count(tiny_model) == before


def test_error_inside_hook_removes_hooks(tiny_model):
    before = hook_count(tiny_model)
    with pytest.raises(SteerlensError, match="out of range for a prompt"):
        with sl.steer(tiny_model, sl.add(random_vector(), positions=[50])):
            tiny_model(ids(tiny_model))
    assert hook_count(tiny_model) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sl.add(random_vector(d=63)), "d_model 63 does not match"),
        (lambda: sl.add(random_vector(layers=(7,))), "out of range"),
        (lambda: sl.add(random_vector(), site="resid_pr"), "Did you mean 'resid_pre'"),
        (lambda: sl.add(random_vector(), coeff=float("nan")), "finite"),
        (lambda: sl.clamp(random_vector(), value=float("inf")), "finite"),
        (lambda: sl.ablate(sl.SteeringVector({1: torch.zeros(64)})), "zero vector"),
        (lambda: sl.add(random_vector(), layers=[2]), "subset"),
        (lambda: sl.add(random_vector(), positions="middle"), "positions"),
        (lambda: sl.add(random_vector(), positions=[]), "positions"),
        (lambda: sl.add(torch.ones(64)), "layers: required"),
    ],
)
def test_bad_input(tiny_model, make, message):
    with pytest.raises(SteerlensError, match=message), sl.steer(tiny_model, make()):
        pass


def test_steer_refuses_non_interventions(tiny_model):
    """Without beartype (production) steerlens says what it expected; under the test
    suite's beartype the annotation catches it first."""
    from jaxtyping import TypeCheckError

    with pytest.raises((SteerlensError, TypeCheckError), match="Intervention|expected sl.add"):
        with sl.steer(tiny_model, "not an intervention"):
            pass


def test_steer_needs_a_hooked_model():
    with pytest.raises(TypeError, match="TransformerLens model|HookedModel"):
        with sl.steer(torch.nn.Linear(3, 3), sl.add(random_vector())):
            pass


def test_repr_names_site_layers_and_positions():
    text = repr(sl.add(random_vector(layers=(1, 2)), 4.0, positions="prompt"))
    assert text == "add(coeff=4) at blocks.{1,2}.hook_resid_pre, prompt positions"
