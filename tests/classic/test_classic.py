"""The core contract on a classic ``HookedTransformer`` (TransformerLens 3.9.0, installed by
``make test-classic``; skipped where TransformerLens has no ``HookedTransformer``). Tiny
random models from ``HookedTransformerConfig``: a Llama-like (RMSNorm, rotary) and a
GPT-2-like (LayerNorm, learned absolute positions). References are steered by hand with
plain hook functions on TransformerLens's own hook points, or run one row at a time. The
kinds: add, ablate, clamp, norm-preserving add, rotation in each residual's own plane and in
a fixed plane, and a user's own ``Intervention`` subclass (``tests.user_kinds.Scale``)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformer_lens.HookedTransformer")

from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402

import steerlens as sl  # noqa: E402
from steerlens.core.tokens import decode_reply, encode  # noqa: E402
from tests.user_kinds import Scale  # noqa: E402

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


#: a second direction: the fixed plane of ``rotate_plane`` is span(vector, PLANE)
PLANE = torch.randn(SHAPES["d_model"], generator=torch.Generator().manual_seed(4))
KINDS_STEERED = ("add", "ablate", "clamp", "add_norm", "rotate", "rotate_plane", "scale")


def rotated(x, u, b, degrees):
    """``x`` with its component in span(u, b) (orthonormal; ``b`` may differ per position)
    turned to ``degrees`` from u."""
    a, c = (x * u).sum(-1), (x * b).sum(-1)
    radius = torch.sqrt(a**2 + c**2)[..., None]
    turned = math.cos(math.radians(degrees)) * u + math.sin(math.radians(degrees)) * b
    return x - a[..., None] * u - c[..., None] * b + radius * turned


def hand_edit(kind: str, d: torch.Tensor):
    """The closed forms (docs/methods/interventions.md), written here independently of
    steerlens."""
    u = d / d.norm()
    fixed = PLANE - (PLANE @ u) * u
    fixed = fixed / fixed.norm()

    def add_norm(x):
        moved = x + 2.0 * d
        return moved * x.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True)

    def rotate(x):  # in each residual's own plane: b = its unit component off u
        off = x - (x @ u)[..., None] * u
        return rotated(x, u, off / off.norm(dim=-1, keepdim=True), 120.0)

    return {
        "add": lambda x: x + 2.0 * d,
        "ablate": lambda x: x - (x @ u)[..., None] * u,
        "clamp": lambda x: x + (1.5 - x @ u)[..., None] * u,
        "add_norm": add_norm,
        "rotate": rotate,
        "rotate_plane": lambda x: rotated(x, u, fixed, 60.0),
        "scale": lambda x: x + (-2.0 - 1) * (x @ u)[..., None] * u,
    }[kind]


def steering(kind: str, vector, site: str = "resid_pre", positions="all"):
    """The steerlens intervention ``hand_edit(kind, ...)`` writes by hand."""
    where = dict(site=site, positions=positions)
    unit = vector[LAYER] / vector[LAYER].norm()
    return {
        "add": lambda: sl.add(vector, 2.0, **where),
        "ablate": lambda: sl.ablate(vector, **where),
        "clamp": lambda: sl.clamp(vector, 1.5, **where),
        "add_norm": lambda: sl.add(vector, 2.0, preserve_norm=True, **where),
        "rotate": lambda: sl.steering.rotate(vector, 120.0, **where),
        "rotate_plane": lambda: sl.steering.rotate(vector, 60.0, plane=PLANE, **where),
        "scale": lambda: Scale(unit, -2.0, layers=[LAYER], **where),
    }[kind]()


@pytest.mark.parametrize("site", ["resid_pre", "resid_mid", "resid_post"])
@pytest.mark.parametrize("kind", KINDS_STEERED)
def test_interventions_equal_hand_hooks(model, vector, site, kind):
    tokens = torch.tensor([encode(model, PROMPT)])
    edit = hand_edit(kind, vector[LAYER])
    intervention = steering(kind, vector, site)
    with torch.no_grad():
        reference = model.run_with_hooks(
            tokens, fwd_hooks=[(f"blocks.{LAYER}.hook_{site}", lambda x, hook: edit(x))]
        )
        with sl.steer(model, intervention):
            steered = model(tokens)
        plain = model(tokens)
    assert (reference - plain).abs().max() > 1e-3  # the edit changes the output
    torch.testing.assert_close(steered, reference, rtol=1e-5, atol=1e-5)


def reference_tokens(model, ids: list[int], edit, steered) -> list[int]:
    """Greedy tokens, a full forward per step, ``edit`` applied by hand at positions
    ``steered(prompt_len, seq_len)``."""
    seq = list(ids)
    for _ in range(N_NEW):
        chosen = list(steered(len(ids), len(seq)))

        def hook(x, hook, chosen=chosen):
            x = x.clone()
            x[:, chosen] = edit(x[:, chosen])
            return x

        with torch.no_grad():
            logits = model.run_with_hooks(
                torch.tensor([seq]), fwd_hooks=[(f"blocks.{LAYER}.hook_resid_pre", hook)]
            )
        seq.append(int(logits[0, -1].argmax()))
    return seq[len(ids) :]


def generated_both_ways(model, ids: list[int], cache: bool) -> tuple[list[int], str]:
    """Greedy new tokens from ``model.generate`` and the reply of ``sl.generate``."""
    with torch.no_grad():
        own = model.generate(
            torch.tensor([ids]),
            max_new_tokens=N_NEW,
            do_sample=False,
            use_past_kv_cache=cache,
            stop_at_eos=False,
            verbose=False,
        )[0, len(ids) :].tolist()
    text = sl.generate(
        model, PROMPT, chat=False, max_new_tokens=N_NEW, use_past_kv_cache=cache, stop_at_eos=False
    )
    return own, text


@pytest.mark.parametrize("cache", [True, False], ids=["kv_cache", "no_cache"])
@pytest.mark.parametrize("rule", list(RULES))
def test_generation_steers_the_right_positions(model, vector, rule, cache):
    positions, steered = RULES[rule]
    ids = encode(model, PROMPT)
    expected = reference_tokens(model, ids, lambda x: x + vector[LAYER], steered)
    unsteered = reference_tokens(model, ids, lambda x: x, steered)
    if rule != "generated":  # "generated" leaves the first new token alone
        assert expected != unsteered
    with sl.steer(model, sl.add(vector, positions=positions)):
        own, text = generated_both_ways(model, ids, cache)
    assert own == expected, "model.generate"
    assert text == decode_reply(model, expected), "sl.generate"


@pytest.mark.parametrize("cache", [True, False], ids=["kv_cache", "no_cache"])
@pytest.mark.parametrize("rule", ["all", "generated"])
@pytest.mark.parametrize("kind", ["add_norm", "rotate", "rotate_plane", "scale"])
def test_kinds_with_and_without_the_kv_cache(model, vector, kind, rule, cache):
    """The new kinds and a user's own equal their hand-written hooks token for token at the
    positions a rule steers, through both generate paths."""
    positions, steered = RULES[rule]
    ids = encode(model, PROMPT)
    expected = reference_tokens(model, ids, hand_edit(kind, vector[LAYER]), steered)
    if rule == "all":
        assert expected != reference_tokens(model, ids, lambda x: x, steered), "no effect"
    with sl.steer(model, steering(kind, vector, positions=positions)):
        own, text = generated_both_ways(model, ids, cache)
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
