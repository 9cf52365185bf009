"""Position rules under generate: same tokens with and without the KV cache and padding."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode

PROMPTS = ["Once upon a time there was", "Paris is the capital of", "1, 2, 3, 4,"]
RULES = [
    "all",
    "prompt",
    "generated",
    "last",
    [1, -1],
    torch.tensor([True, False, True, False, False, True]),
]
MASK_PROMPT = "Once upon a time there"  # 6 tokens with BOS, for the boolean mask rule


def vector(scale=8.0):
    gen = torch.Generator().manual_seed(3)
    return sl.SteeringVector({layer: scale * torch.randn(64, generator=gen) for layer in (0, 1)})


def prompts_for(rule):
    return [MASK_PROMPT] if isinstance(rule, torch.Tensor) else PROMPTS


def run(model, prompts, rule, cache):
    with sl.steer(model, sl.add(vector(), positions=rule)):
        return sl.generate(model, prompts, chat=False, max_new_tokens=8, use_past_kv_cache=cache)


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_kv_cache_gives_the_same_tokens(tiny_model, rule):
    prompts = prompts_for(rule)
    assert len(encode(tiny_model, MASK_PROMPT)) == 6
    with_cache = [run(tiny_model, [p], rule, True)[0] for p in prompts]
    without = [run(tiny_model, [p], rule, False)[0] for p in prompts]
    assert with_cache == without
    plain = [sl.generate(tiny_model, p, chat=False, max_new_tokens=8) for p in prompts]
    assert with_cache != plain  # steering did something, so the comparison means something


@pytest.mark.parametrize("rule", RULES, ids=str)
@pytest.mark.parametrize("cache", [True, False])
def test_left_padded_batch_equals_single_runs(tiny_model, rule, cache):
    prompts = prompts_for(rule)
    if len(prompts) == 1:
        prompts = prompts * 2
    batched = run(tiny_model, prompts, rule, cache)
    singles = [run(tiny_model, [p], rule, cache)[0] for p in prompts]
    assert batched == singles


def manual_greedy(model, prompt, steer_from, steer_to, n_new=8):
    """Reference: full forward each step, adding the vector at absolute positions
    [steer_from, steer_to) by a plain torch hook (no steerlens position logic)."""
    vec = vector()
    tokens = torch.tensor([encode(model, prompt)])
    handles = []
    for layer in (0, 1):

        def hook(_m, _i, out, layer=layer):
            out = out.clone()
            out[:, steer_from:steer_to] += vec[layer]
            return out

        handles.append(
            model.hook_dict[f"blocks.{layer}.hook_resid_pre"].register_forward_hook(hook)
        )
    try:
        for _ in range(n_new):
            with torch.no_grad():
                nxt = model(tokens)[0, -1].argmax()
            tokens = torch.cat([tokens, nxt.view(1, 1)], dim=1)
    finally:
        for h in handles:
            h.remove()
    new = tokens[0, len(encode(model, prompt)) :].tolist()
    return model.tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.parametrize("rule", ["prompt", "generated", "all", "last"])
def test_rules_match_a_manual_reference(tiny_model, rule):
    prompt = PROMPTS[0]
    n = len(encode(tiny_model, prompt))
    span = {"prompt": (0, n), "generated": (n, None), "all": (0, None), "last": (n - 1, n)}[rule]
    expected = manual_greedy(tiny_model, prompt, *span)
    eos = tiny_model.tokenizer.eos_token
    got = run(tiny_model, [prompt], rule, True)[0]
    assert got == expected.split(eos)[0] if eos else expected


def test_boolean_mask_length_must_match_prompt(tiny_model):
    with pytest.raises(sl.SteerlensError, match="boolean mask"):
        run(tiny_model, ["A short one"], torch.tensor([True] * 9), True)


def test_reading_and_steering_words_are_told_apart(tiny_model):
    """``position=`` (reading) and ``positions=`` (steering) name each other's words."""
    with pytest.raises(sl.SteerlensError, match="is a word of positions="):
        sl.collect_activations(tiny_model, ["hi"], layers=[1], position="all")
    with pytest.raises(sl.SteerlensError, match="is a word of position="):
        sl.add(vector(), positions="mean")
    assert str(sl.add(vector(), positions="last").positions) == "last positions"
