"""Intervention objects on a tiny random model: a user's own kind (``tests.user_kinds``),
norm-preserving addition and rotation, each against its closed form made by a plain PyTorch
hook on the untouched Hugging Face decoder layer, with every position rule under the KV
cache, in left-padded batches, under ``sl.when``, and composed with the shipped kinds."""

from __future__ import annotations

import math

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from tests.user_kinds import Scale

TEXT = "The quick brown fox jumps over the lazy dog."
PROMPTS = ["Name a colour", "Tell me a story about the sea and a little boat"]
LAYER = 1


def direction(seed: int, scale: float = 1.0) -> torch.Tensor:
    d = torch.randn(64, generator=torch.Generator().manual_seed(seed))
    return scale * d / d.norm()


def unit(d: torch.Tensor) -> torch.Tensor:
    """Unit norm along the last axis (each row of a matrix)."""
    return d / d.norm(dim=-1, keepdim=True)


# closed forms, written from DESIGN §12 independently of steerlens
def add_norm_by_hand(d, c):
    def edit(x):
        moved = x + c * d
        return moved * x.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True)

    return edit


def rotate_by_hand(d, degrees, plane=None):
    u, theta = unit(d), math.radians(degrees)

    def edit(x):
        if plane is None:
            off = x - (x @ u)[..., None] * u
            b = off / off.norm(dim=-1, keepdim=True)
            return x.norm(dim=-1, keepdim=True) * (math.cos(theta) * u + math.sin(theta) * b)
        b = plane - (plane @ u) * u
        b = b / b.norm()
        a, c = x @ u, x @ b
        r = torch.sqrt(a**2 + c**2)[..., None]
        return (
            x
            - a[..., None] * u
            - c[..., None] * b
            + r * (math.cos(theta) * u + math.sin(theta) * b)
        )

    return edit


def scale_by_hand(u, f):
    return lambda x: x + (f - 1) * (x @ u)[..., None] * u


def kinds():
    """name -> (intervention at LAYER resid_pre, closed form)."""
    d, b = direction(1, 6.0), direction(2)
    vec = sl.SteeringVector({LAYER: d})
    u = unit(d)
    return {
        "add_norm": (sl.add(vec, 3.0, preserve_norm=True), add_norm_by_hand(d, 3.0)),
        "rotate": (sl.steering.rotate(vec, 60.0), rotate_by_hand(d, 60.0)),
        "rotate_plane": (
            sl.steering.rotate(vec, 120.0, plane=b, layers=[LAYER]),
            rotate_by_hand(d, 120.0, b),
        ),
        "scale": (Scale(u, 3.0, layers=[LAYER], site="resid_pre"), scale_by_hand(u, 3.0)),
    }


def hf_logits(model, tokens, edit=None):
    """Logits ``[pos, d_vocab]`` of the untouched HF model, ``edit`` on layer LAYER's input."""
    hf = model.original_model
    handle = None
    if edit is not None:
        handle = hf.model.layers[LAYER].register_forward_pre_hook(
            lambda _m, args, kwargs: ((edit(args[0]), *args[1:]), kwargs), with_kwargs=True
        )
    try:
        with torch.no_grad():
            return hf(tokens).logits[0]
    finally:
        if handle is not None:
            handle.remove()


def relative(a, b) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("name", list(kinds()))
def test_each_kind_equals_its_closed_form(tiny_model, name):
    intervention, by_hand = kinds()[name]
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    expected = hf_logits(tiny_model, tokens, by_hand)
    assert relative(hf_logits(tiny_model, tokens), expected) > 1e-3, "the edit does nothing"
    with sl.steer(tiny_model, intervention), torch.no_grad():
        steered = tiny_model(tokens)[0]
    assert relative(steered, expected) < 1e-4


def resid(model, tokens, intervention, site="resid_pre", layer=LAYER):
    name = f"blocks.{layer}.hook_{site}"
    with sl.steer(model, intervention), torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[name])
    return cache[name][0]


def test_rotate_90_is_a_norm_preserving_ablation(tiny_model):
    d = direction(1, 6.0)
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    before = resid(tiny_model, tokens, sl.add(d, 0.0, layers=[LAYER]))
    after = resid(tiny_model, tokens, sl.steering.rotate(d, 90.0, layers=[LAYER]))
    ablated = resid(tiny_model, tokens, sl.ablate(d, layers=[LAYER]))
    assert float((before @ unit(d)).abs().min()) > 1e-3  # there was something to remove
    torch.testing.assert_close(after @ unit(d), torch.zeros(len(after)), atol=1e-5, rtol=0)
    torch.testing.assert_close(after.norm(dim=-1), before.norm(dim=-1), atol=1e-4, rtol=1e-5)
    # the same direction as the ablation, with the norm the residual had
    torch.testing.assert_close(unit(after), unit(ablated), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("degrees", [0.0, 30.0, 135.0, 180.0])
def test_rotate_sets_the_angle_and_keeps_the_norm(tiny_model, degrees):
    d = direction(3)
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    before = resid(tiny_model, tokens, sl.add(d, 0.0, layers=[LAYER]))
    after = resid(tiny_model, tokens, sl.steering.rotate(d, degrees, layers=[LAYER]))
    cosine = (after @ d) / after.norm(dim=-1)
    torch.testing.assert_close(
        cosine, torch.full_like(cosine, math.cos(math.radians(degrees))), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(after.norm(dim=-1), before.norm(dim=-1), atol=1e-4, rtol=1e-5)


def test_rotate_in_a_fixed_plane_leaves_the_rest(tiny_model):
    d, b = direction(4), direction(5)
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    before = resid(tiny_model, tokens, sl.add(d, 0.0, layers=[LAYER]))
    after = resid(tiny_model, tokens, sl.steering.rotate(d, 45.0, plane=b, layers=[LAYER]))
    q, _ = torch.linalg.qr(torch.stack([d, b]).T)
    inside = lambda x: x @ q  # noqa: E731 - coordinates in the plane [pos, 2]
    outside = lambda x: x - inside(x) @ q.T  # noqa: E731
    torch.testing.assert_close(outside(after), outside(before), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        inside(after).norm(dim=-1), inside(before).norm(dim=-1), atol=1e-5, rtol=1e-5
    )
    cosine = (after @ d) / inside(after).norm(dim=-1)
    torch.testing.assert_close(
        cosine, torch.full_like(cosine, math.cos(math.pi / 4)), atol=1e-5, rtol=0
    )


def test_preserve_norm_keeps_each_residual_norm(tiny_model):
    d = direction(6, 10.0)
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    before = resid(tiny_model, tokens, sl.add(d, 0.0, layers=[LAYER]))
    after = resid(tiny_model, tokens, sl.add(d, 2.0, layers=[LAYER], preserve_norm=True))
    torch.testing.assert_close(after.norm(dim=-1), before.norm(dim=-1), atol=1e-4, rtol=1e-5)
    assert float((unit(after) - unit(before)).norm(dim=-1).min()) > 1e-2


def test_kinds_compose_in_the_order_given(tiny_model):
    """add, then a user's Scale, then rotate at the same hook = the three closed forms in turn."""
    d, b = direction(7, 4.0), direction(8)
    u = unit(b)
    steps = [
        (sl.add(d, 1.5, layers=[LAYER]), lambda x: x + 1.5 * d),
        (Scale(u, 0.25, layers=[LAYER]), scale_by_hand(u, 0.25)),
        (sl.steering.rotate(d, 70.0, layers=[LAYER]), rotate_by_hand(d, 70.0)),
    ]
    tokens = torch.tensor([encode(tiny_model, TEXT)])

    def all_three(x):
        for _, by_hand in steps:
            x = by_hand(x)
        return x

    expected = hf_logits(tiny_model, tokens, all_three)
    with pytest.warns(
        sl.steering.SteeringConflictWarning, match="intervention 2 .* of intervention 0"
    ):
        with sl.steer(tiny_model, *[i for i, _ in steps]), torch.no_grad():
            steered = tiny_model(tokens)[0]
    assert relative(steered, expected) < 1e-4


RULES = {
    "all": "all",
    "prompt": "prompt",
    "generated": "generated",
    "indices": [1, -1],
    "role": "post_instruction",
}


OPTIONS = dict(max_new_tokens=4, stop_at_eos=False)


@pytest.fixture(scope="module")
def along_mean(tiny_model):
    """``(unit mean residual direction at LAYER, its norm, unsteered replies)``: kinds along
    it change the greedy tokens of the random model."""
    texts = [sl.format_chat(tiny_model, p) for p in PROMPTS]
    mean = sl.collect_activations(tiny_model, texts, [LAYER], position="mean")[:, 0].mean(0)
    plain = [sl.generate(tiny_model, p, **OPTIONS) for p in PROMPTS]
    return unit(mean), float(mean.norm()), plain


def strong(name, d, norm, positions):
    """The new kinds and the user's, along ``d`` at LAYER."""
    vec, where = sl.SteeringVector({LAYER: d}), dict(positions=positions)
    make = {
        "add_norm": lambda: sl.add(vec, -3.0 * norm, preserve_norm=True, **where),
        "rotate": lambda: sl.steering.rotate(vec, 150.0, **where),
        "rotate_plane": lambda: sl.steering.rotate(vec, 150.0, plane=direction(2), **where),
        "scale": lambda: Scale(d, -3.0, layers=[LAYER], **where),
    }
    return make[name]()


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("name", ["add_norm", "rotate", "rotate_plane", "scale"])
def test_the_kv_cache_and_padding_change_nothing(tiny_model, along_mean, name, rule):
    """For every new kind and position rule: cached = uncached tokens, and a left-padded
    batch gives each row the tokens it gets alone (the shipped add / ablate / clamp:
    tests/steering/test_positions.py and the matrix)."""
    d, norm, plain = along_mean
    with sl.steer(tiny_model, strong(name, d, norm, RULES[rule])):
        alone = [sl.generate(tiny_model, p, use_past_kv_cache=False, **OPTIONS) for p in PROMPTS]
        cached = [sl.generate(tiny_model, p, **OPTIONS) for p in PROMPTS]
        batched = sl.generate(tiny_model, PROMPTS, **OPTIONS)
    assert alone != plain, "the steering changed nothing, so the comparison means nothing"
    assert cached == alone
    assert batched == alone


def test_a_user_kind_under_when_steers_only_the_rows_that_meet_it(tiny_model):
    cond = sl.SteeringVector({LAYER: direction(11)})
    texts = [sl.format_chat(tiny_model, p) for p in PROMPTS]
    proj = sl.project(tiny_model, texts, cond, position="mean")[:, 0]
    threshold = float(proj.mean())
    meets = (proj > threshold).tolist()
    behaviour = Scale(unit(direction(12)), -4.0, layers=[LAYER, 2])
    options = dict(max_new_tokens=5, stop_at_eos=False)
    with sl.steer(tiny_model, behaviour):
        steered = [sl.generate(tiny_model, p, **options) for p in PROMPTS]
    plain = [sl.generate(tiny_model, p, **options) for p in PROMPTS]
    assert steered != plain
    with sl.steer(tiny_model, sl.when(cond, threshold, behaviour)):
        batched = sl.generate(tiny_model, PROMPTS, **options)
    assert batched == [s if m else p for s, p, m in zip(steered, plain, meets, strict=True)]


def test_repr_says_what_and_where():
    d = direction(1)
    assert repr(Scale(d, 3.0, layers=[1, 2], site="resid_mid", positions="generated")) == (
        "Scale() at blocks.{1,2}.hook_resid_mid, generated positions"
    )
    assert repr(sl.steering.rotate(d, 60.0, layers=[1])) == (
        "rotate(degrees=60) at blocks.{1}.hook_resid_pre, all positions"
    )
    assert repr(sl.add(d, 2.0, preserve_norm=True, layers=[0])).startswith(
        "add(coeff=2, preserve_norm) at blocks.{0}"
    )


class DoubleInPlace(sl.steering.Intervention):
    """A user's kind that edits its argument in place (``x *= 2``)."""

    def edit(self, x, layer):
        x *= 2.0
        return x


def test_a_kind_editing_in_place_still_steers_only_its_positions(tiny_model):
    """``edit`` gets a copy: before it did, ``x *= 2`` reached the positions the machinery
    keeps unsteered (every position was doubled) and the trace saw no change."""
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    before = resid(tiny_model, tokens, sl.add(direction(1), 0.0, layers=[LAYER]))
    with sl.steer(tiny_model, DoubleInPlace(layers=[LAYER], positions=[1]), trace=True) as t:
        with torch.no_grad():
            _, cache = tiny_model.run_with_cache(
                tokens, names_filter=[f"blocks.{LAYER}.hook_resid_pre"]
            )
    after = cache[f"blocks.{LAYER}.hook_resid_pre"][0]
    expected = before.clone()
    expected[1] *= 2.0
    torch.testing.assert_close(after, expected)
    assert t.table.position.tolist() == [1]
    assert float(t.table.delta.iloc[0]) == pytest.approx(float(before[1].norm()), rel=1e-5)


class Broken(sl.steering.Intervention):
    def edit(self, x, layer):
        return x[..., :3]


class NoEdit(sl.steering.Intervention):
    pass


def test_a_user_kind_that_misbehaves_is_named(tiny_model):
    tokens = torch.tensor([encode(tiny_model, TEXT)])
    with pytest.raises(sl.SteerlensError, match=r"Broken\(\) at .*shaped like x"):
        with sl.steer(tiny_model, Broken(layers=[1])):
            tiny_model(tokens)
    with pytest.raises(NotImplementedError, match="NoEdit: implement edit"):
        with sl.steer(tiny_model, NoEdit(layers=[1])):
            tiny_model(tokens)
    assert not any(point.fwd_hooks for point in tiny_model.hook_dict.values())
    with pytest.raises(sl.SteerlensError, match="site"):
        Scale(direction(1), 2.0, layers=[1], site="resid_middle")
    with pytest.raises(sl.SteerlensError, match="out of range"):
        with sl.steer(tiny_model, Scale(direction(1), 2.0, layers=[7])):
            pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sl.steering.rotate(direction(1), float("nan"), layers=[1]), "degrees"),
        (lambda: sl.steering.rotate(direction(1), 400.0, layers=[1]), "degrees"),
        (
            lambda: sl.steering.rotate(direction(1), 30.0, plane=direction(1), layers=[1]),
            "dependent",
        ),
        (
            lambda: sl.steering.rotate(direction(1), 30.0, plane=torch.ones(8), layers=[1]),
            "d_model",
        ),
        (lambda: sl.add(direction(1), 1.0, preserve_norm=1, layers=[1]), "preserve_norm"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises((sl.SteerlensError, TypeError), match=message):
        make()
