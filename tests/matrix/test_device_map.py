"""A tiny model split with ``device_map`` (layer 1 offloaded to disk, the rest on the CPU,
through HF accelerate: the split that runs on this CPU-only machine) steers exactly as the
untouched HF model edited by plain hooks, with each vector copied to its hook's device once."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import steerlens as sl
from steerlens.core.tokens import encode
from tests.architectures import CONFIGS

from ..reference import edit_fn, edited

TEXT = "The quick brown fox jumps over the lazy dog."
LAYER = 1


def split_map(hf_model) -> dict[str, str]:
    """Every top-level module on the CPU, decoder layer ``LAYER`` offloaded to disk."""
    prefix = hf_model.base_model_prefix
    base = hf_model.base_model
    layers = "layers" if hasattr(base, "layers") else "h"
    placement = {f"{prefix}.{name}": "cpu" for name, _ in base.named_children() if name != layers}
    for index in range(len(getattr(base, layers))):
        placement[f"{prefix}.{layers}.{index}"] = "disk" if index == LAYER else "cpu"
    return {**placement, "lm_head": "cpu"}


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def split(arch, tokenizer, tmp_path_factory):
    """``(bridge loaded from a folder with a device map, untouched HF model)``."""
    config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), **CONFIGS[arch])
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).eval()
    folder = tmp_path_factory.mktemp(arch)
    hf.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = sl.load_model(folder, device_map=split_map(hf))
    return model, copy.deepcopy(hf)


@pytest.mark.coverage("device_map split (cpu + disk)")
@pytest.mark.parametrize("site", ["resid_pre", "resid_mid", "resid_post"])
def test_split_model_steers_like_the_hf_model(arch, split, site):
    model, hf = split
    assert "disk" in model.original_model.hf_device_map.values()
    tokens = torch.tensor([encode(model, TEXT)])
    direction = 4.0 * torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    steering = sl.add(sl.SteeringVector({LAYER: direction}, site=site), positions=[0, -1])
    chosen = torch.zeros(tokens.shape[1], dtype=torch.bool)
    chosen[[0, -1]] = True
    add = edit_fn("add", direction, 1.0)
    with torch.no_grad():
        with edited(hf, arch, LAYER, site, lambda x: torch.where(chosen[:, None], add(x), x)):
            expected = hf(tokens).logits
        with sl.steer(model, steering):
            steered = model(tokens)
            model(tokens)  # a second pass reuses the copy
        plain = model(tokens)
    torch.testing.assert_close(steered, expected, atol=1e-4, rtol=1e-4)
    assert (steered - plain).abs().max() > 1e-2
    assert list(steering._copies) == [(LAYER, "cpu")], "one copy per layer and device"


def test_a_loaded_model_keeps_its_placement(tokenizer):
    config = AutoConfig.for_model("llama", vocab_size=len(tokenizer), **CONFIGS["llama"])
    with pytest.raises(sl.SteerlensError, match="already placed"):
        sl.load_model(
            AutoModelForCausalLM.from_config(config), tokenizer=tokenizer, device_map="auto"
        )
