"""The core contract on a classic ``HookedTransformer`` (TransformerLens 3.9.0, installed by
``make test-classic``; skipped where TransformerLens has no ``HookedTransformer``). Tiny
random models from ``HookedTransformerConfig``: a Llama-like (RMSNorm, rotary) and a
GPT-2-like (LayerNorm, learned absolute positions). References are steered by hand with
plain hook functions on TransformerLens's own hook points, or run one row at a time."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformer_lens.HookedTransformer")

from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402

import steerlens as sl  # noqa: E402
from steerlens.core.tokens import decode_reply, encode  # noqa: E402

LAYER = 1
PROMPT = "Once upon a time there"
N_NEW = 4
SHAPES = dict(n_layers=3, d_model=64, d_head=16, n_heads=4, d_mlp=128, n_ctx=256, seed=0)
KINDS = {
    "llama_like": dict(
        act_fn="silu", normalization_type="RMS", positional_embedding_type="rotary", gated_mlp=True
    ),
    "gpt2_like": dict(act_fn="gelu_new", normalization_type="LN"),
}
#: rule -> (``positions=`` argument, the positions it steers given prompt length ``p``)
RULES = {
    "all": ("all", lambda p, n: range(n)),
    "prompt": ("prompt", lambda p, n: range(min(p, n))),
    "generated": ("generated", lambda p, n: range(p, n)),
    "indices": ([1, -1], lambda p, n: [1, p - 1]),
}


@pytest.fixture(scope="module", params=list(KINDS))
def model(request, tokenizer):
    cfg = HookedTransformerConfig(d_vocab=len(tokenizer), **SHAPES, **KINDS[request.param])
    return HookedTransformer(cfg, tokenizer=tokenizer).eval()


@pytest.fixture(scope="module")
def vector(model):
    """A random direction at ``LAYER``, twice the mean residual norm there (large enough to
    change greedy tokens)."""
    name = f"blocks.{LAYER}.hook_resid_pre"
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([encode(model, PROMPT)]), names_filter=[name])
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(3))
    scale = 2 * cache[name].norm(dim=-1).mean() / direction.norm()
    return sl.SteeringVector({LAYER: scale * direction})


def hand_edit(kind: str, d: torch.Tensor):
    u = d / d.norm()
    return {
        "add": lambda x: x + 2.0 * d,
        "ablate": lambda x: x - (x @ u)[..., None] * u,
        "clamp": lambda x: x + (1.5 - x @ u)[..., None] * u,
    }[kind]


@pytest.mark.parametrize("site", ["resid_pre", "resid_mid", "resid_post"])
@pytest.mark.parametrize("kind", ["add", "ablate", "clamp"])
def test_interventions_equal_hand_hooks(model, vector, site, kind):
    tokens = torch.tensor([encode(model, PROMPT)])
    edit = hand_edit(kind, vector[LAYER])
    intervention = {
        "add": lambda: sl.add(vector, 2.0, site=site),
        "ablate": lambda: sl.ablate(vector, site=site),
        "clamp": lambda: sl.clamp(vector, 1.5, site=site),
    }[kind]()
    with torch.no_grad():
        reference = model.run_with_hooks(
            tokens, fwd_hooks=[(f"blocks.{LAYER}.hook_{site}", lambda x, hook: edit(x))]
        )
        with sl.steer(model, intervention):
            steered = model(tokens)
        plain = model(tokens)
    assert (reference - plain).abs().max() > 1e-3  # the edit changes the output
    torch.testing.assert_close(steered, reference, rtol=1e-5, atol=1e-5)


def reference_tokens(model, ids: list[int], d: torch.Tensor, steered) -> list[int]:
    """Greedy tokens, a full forward per step, ``d`` added by hand at positions
    ``steered(prompt_len, seq_len)``."""
    seq = list(ids)
    for _ in range(N_NEW):
        chosen = list(steered(len(ids), len(seq)))

        def hook(x, hook, chosen=chosen):
            x = x.clone()
            x[:, chosen] += d
            return x

        with torch.no_grad():
            logits = model.run_with_hooks(
                torch.tensor([seq]), fwd_hooks=[(f"blocks.{LAYER}.hook_resid_pre", hook)]
            )
        seq.append(int(logits[0, -1].argmax()))
    return seq[len(ids) :]


@pytest.mark.parametrize("cache", [True, False], ids=["kv_cache", "no_cache"])
@pytest.mark.parametrize("rule", list(RULES))
def test_generation_steers_the_right_positions(model, vector, rule, cache):
    positions, steered = RULES[rule]
    ids = encode(model, PROMPT)
    expected = reference_tokens(model, ids, vector[LAYER], steered)
    unsteered = reference_tokens(model, ids, torch.zeros_like(vector[LAYER]), steered)
    if rule != "generated":  # "generated" leaves the first new token alone
        assert expected != unsteered
    with torch.no_grad(), sl.steer(model, sl.add(vector, positions=positions)):
        own = model.generate(
            torch.tensor([ids]),
            max_new_tokens=N_NEW,
            do_sample=False,
            use_past_kv_cache=cache,
            stop_at_eos=False,
            verbose=False,
        )[0, len(ids) :].tolist()
        text = sl.generate(
            model,
            PROMPT,
            chat=False,
            max_new_tokens=N_NEW,
            use_past_kv_cache=cache,
            stop_at_eos=False,
        )
    assert own == expected, "model.generate"
    assert text == decode_reply(model, expected), "sl.generate"


@pytest.mark.parametrize("positions", ["prompt", [1, -1]])
def test_a_left_padded_batch_equals_one_row_at_a_time(model, vector, positions):
    texts = ["The cat sat on the mat and looked out", "Hi there", "Tell me a story"]
    with sl.steer(model, sl.add(vector, positions=positions)):
        batched = sl.collect_activations(model, texts, [LAYER + 1], position="mean")
        alone = torch.cat(
            [sl.collect_activations(model, [t], [LAYER + 1], position="mean") for t in texts]
        )
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)


def test_load_model_takes_the_classic_model_as_it_is(model):
    assert sl.load_model(model) is model
    with pytest.raises(sl.SteerlensError, match="compatibility_mode"):
        sl.load_model(model, compatibility_mode=True)


def test_processed_weights_give_centred_vectors(tokenizer):
    """``process_weights_`` (what ``HookedTransformer.from_pretrained`` does) centres a
    LayerNorm model's writing weights: vectors read there record the centred basis."""
    cfg = HookedTransformerConfig(d_vocab=len(tokenizer), **SHAPES, **KINDS["gpt2_like"])
    processed = HookedTransformer(cfg, tokenizer=tokenizer).eval()
    positives, negatives = ["I love it", "Great day"], ["I hate it", "Awful day"]
    before = sl.mean_difference(processed, positives, negatives, layers=[LAYER])
    processed.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
    after = sl.mean_difference(processed, positives, negatives, layers=[LAYER])
    assert (before.basis, after.basis) == ("plain", "centred")
    assert float(after[LAYER].mean().abs()) < 1e-6 * float(after[LAYER].norm())
    with pytest.raises(sl.SteerlensError, match="residual basis"):
        sl.project(processed, positives, before)
