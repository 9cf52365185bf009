"""orthogonalize_weights: the edited model equals the original under ablation at every
residual write point, its residual has no component along the direction, the original is
left untouched, and the edited weights survive a save and load."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.hookpoints import SITES
from steerlens.steering import save_model
from tests.architectures import build

TOKENS = torch.tensor([[1, 50, 60, 70, 80, 90], [1, 7, 300, 4000, 12, 5]])


def direction():
    return torch.randn(64, generator=torch.Generator().manual_seed(4))


def ablated_everywhere(model, u):
    """sl.ablate of u at every residual site the architecture has, at every layer."""
    sites = [s for s in SITES if f"blocks.0.hook_{s}" in model.hook_dict]
    every = range(model.cfg.n_layers)
    return [sl.ablate(sl.SteeringVector({layer: u for layer in every}, site=s)) for s in sites]


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma", "gpt_neox"])  # gpt2/gemma: tied
def test_edited_model_equals_ablation_at_every_write(tokenizer, name):
    model, untouched = build(name, tokenizer)
    u = direction()
    edited = sl.orthogonalize_weights(model, u, layer=0)
    with torch.no_grad(), sl.steer(model, *ablated_everywhere(model, u)):
        reference = model(TOKENS)
    with torch.no_grad():
        got, cache = edited.run_with_cache(TOKENS)
        original = model(TOKENS)
        hf_logits = untouched(TOKENS).logits
    scale = reference.abs().max()
    assert (got - reference).abs().max() / scale < 1e-4
    assert (original - reference).abs().max() / scale > 1e-2  # the direction mattered
    torch.testing.assert_close(original, hf_logits, rtol=1e-4, atol=1e-4)  # copy, not edit
    unit = u / u.norm()
    for layer in range(model.cfg.n_layers):
        for site in ("resid_pre", "resid_post"):
            resid = cache[f"blocks.{layer}.hook_{site}"]
            assert ((resid @ unit).abs() / resid.norm(dim=-1)).max() < 1e-5


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_edited_weights_save_and_load_back(tokenizer, name, tmp_path):
    model, _ = build(name, tokenizer)
    edited = sl.orthogonalize_weights(model, sl.SteeringVector({0: direction()}), inplace=True)
    assert edited is model
    save_model(edited, tmp_path)
    loaded = sl.load_model(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(TOKENS), edited(TOKENS), rtol=1e-5, atol=1e-5)


def test_post_sublayer_norms_are_refused(tokenizer):
    model, _ = build("gemma2", tokenizer)
    with pytest.raises(sl.SteerlensError, match="norm after the sublayer"):
        sl.orthogonalize_weights(model, direction(), layer=0)


def test_several_layers_need_a_choice(tiny_model):
    vec = sl.SteeringVector({0: direction(), 1: direction()})
    with pytest.raises(sl.SteerlensError, match="name the one"):
        sl.orthogonalize_weights(tiny_model, vec)
