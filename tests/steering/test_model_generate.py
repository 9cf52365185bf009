"""Both generate paths inside ``sl.steer`` on every architecture: TransformerLens's own
``model.generate`` and ``sl.generate`` give the same greedy tokens with and without the KV
cache, for every position rule (and ``model.generate`` the same logits, which greedy tokens
of a random model can hide). The reference is the uncached run (a full forward pass per
token), which the KV-cache keyword mismatch cannot reach."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import decode_reply, encode
from tests.architectures import ARCHITECTURES, build

PROMPT = "Once upon a time there"  # 5 tokens, 6 where the model prepends BOS
N_NEW = 3  # the first token comes from the prompt pass; the next two read the KV cache
#: rule name -> the ``positions=`` argument for a prompt of ``n`` tokens
RULES = {
    "all": lambda n: "all",
    "prompt": lambda n: "prompt",
    "generated": lambda n: "generated",
    "indices": lambda n: [1, -1],
    "mask": lambda n: torch.arange(n) % 3 != 1,
}
LAYERS = (0, 1)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request, tokenizer):
    """``(bridge, prompt tokens [1, pos], steering vector, unsteered tokens)``."""
    model, _ = build(request.param, tokenizer)
    tokens = torch.tensor([encode(model, PROMPT)])
    unsteered, _ = model_generate(model, tokens, cache=False)
    return model, tokens, vector_for(model, tokens), unsteered


def vector_for(model, tokens) -> sl.SteeringVector:
    """A random direction per layer, twice as long as the mean residual there (large
    enough to change the greedy tokens, small enough not to drown the prompt)."""
    names = [f"blocks.{layer}.hook_resid_pre" for layer in LAYERS]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=names)
    gen = torch.Generator().manual_seed(3)
    directions = {}
    for layer, name in zip(LAYERS, names, strict=True):
        direction = torch.randn(cache[name].shape[-1], generator=gen)
        directions[layer] = 2 * cache[name].norm(dim=-1).mean() * direction / direction.norm()
    return sl.SteeringVector(directions)


def model_generate(model, tokens, cache: bool) -> tuple[list[int], torch.Tensor]:
    """The new tokens and their logits ``[N_NEW, d_vocab]``."""
    with torch.no_grad():
        out = model.generate(
            tokens,
            max_new_tokens=N_NEW,
            do_sample=False,
            use_past_kv_cache=cache,
            stop_at_eos=False,
            verbose=False,
            output_logits=True,
        )
    return out.sequences[0, tokens.shape[1] :].tolist(), torch.stack(out.logits)[:, 0]


def steerlens_generate(model, cache: bool) -> str:
    return sl.generate(
        model, PROMPT, chat=False, max_new_tokens=N_NEW, use_past_kv_cache=cache, stop_at_eos=False
    )


@pytest.mark.coverage("positions: KV cache = no cache")
@pytest.mark.parametrize("rule", RULES)
def test_both_generate_paths_agree_with_the_uncached_run(arch, rule):
    model, tokens, vec, unsteered = arch
    with sl.steer(model, sl.add(vec, positions=RULES[rule](tokens.shape[1]))):
        uncached, reference = model_generate(model, tokens, cache=False)
        cached, logits = model_generate(model, tokens, cache=True)
        assert cached == uncached, "model.generate"
        torch.testing.assert_close(logits, reference, rtol=0, atol=1e-4)
        text = decode_reply(model, uncached)
        assert steerlens_generate(model, cache=True) == text, "sl.generate, KV cache"
        assert steerlens_generate(model, cache=False) == text, "sl.generate, no KV cache"
    assert uncached != unsteered, "steering changed nothing, so the comparison means nothing"


def new_kind(kind, vec, positions):
    """The kinds beyond add, at the vector's layers: norm-preserving add, rotations, and a
    user's own kind (``tests.user_kinds.Scale``)."""
    from tests.user_kinds import Scale

    first = vec.layers[0]
    made = {
        "add_norm": lambda: sl.add(vec, 1.0, preserve_norm=True, positions=positions),
        "rotate": lambda: sl.steering.rotate(vec, 120.0, positions=positions),
        "rotate_plane": lambda: sl.steering.rotate(
            vec, 60.0, plane=vec[first].roll(1), positions=positions
        ),
        "scale": lambda: Scale(
            vec[first] / vec[first].norm(), -2.0, layers=vec.layers, positions=positions
        ),
    }
    return made[kind]()


@pytest.mark.coverage("every kind: KV cache = no cache")
@pytest.mark.parametrize("kind", ["add_norm", "rotate", "rotate_plane", "scale"])
def test_every_kind_gives_the_same_tokens_with_the_kv_cache(arch, kind):
    """Generated positions only, the rule the KV cache makes hardest (positions are the
    machinery's, not the kind's: every rule x kind runs on the tiny Llama in
    tests/steering/test_intervention_kinds.py)."""
    model, tokens, vec, unsteered = arch
    with sl.steer(model, new_kind(kind, vec, "generated")):
        uncached, reference = model_generate(model, tokens, cache=False)
        cached, logits = model_generate(model, tokens, cache=True)
        assert cached == uncached
        torch.testing.assert_close(logits, reference, rtol=0, atol=1e-4)
        assert steerlens_generate(model, cache=True) == decode_reply(model, uncached)
    assert not torch.allclose(reference, unsteered_logits(model, tokens)), "no effect"


def unsteered_logits(model, tokens):
    return model_generate(model, tokens, cache=False)[1]
