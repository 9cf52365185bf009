"""The core contract on every architecture of the matrix (``tests.architectures``), float32
and bfloat16, each number checked against the untouched Hugging Face model (plain PyTorch
hooks, ``tests.reference``) or the naive loop.

The positions rule with and without the KV cache is checked on the same matrix by
``tests/steering/test_model_generate.py``. ``make models-table`` runs both and writes the
coverage table of docs/models.md.
"""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.hookpoints import model_device
from steerlens.core.tokens import encode
from steerlens.steering.readout import next_token_logits
from tests.architectures import ARCHITECTURES, build
from tests.tradeoff.test_sweep import naive, sweep_logits
from tests.user_kinds import Scale

from ..reference import PARALLEL, edit_fn, edited, rows_logits

TEXT = "The quick brown fox jumps over the lazy dog."
TEXTS = ["A short one.", "A somewhat longer sentence, so the batch is left-padded.", "Three."]
LAYER = 1
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: (atol, rtol) on logits against the HF model. bf16 keeps 8 mantissa bits, and the bridge
#: and the HF model round to bf16 at slightly different points (e.g. the resid_mid edit is
#: made on the attention output), so its bound is looser; each check also asserts that the
#: unsteered logits fall outside it, so a steering that did nothing would fail.
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (2e-2, 2e-2)}
PAIRS = [(arch, dtype) for dtype in DTYPES for arch in ARCHITECTURES]
FLOAT32 = [pair for pair in PAIRS if pair[1] == "float32"]
BFLOAT16 = [pair for pair in PAIRS if pair[1] == "bfloat16"]
#: (architecture, dtype) TransformerLens cannot run, even unsteered
UPSTREAM = {
    ("olmo2", "bfloat16"): "TransformerLens 4.3's OLMo 2 bridge fails in bfloat16 even "
    "unsteered: its attention mixes float32 and bf16 (RuntimeError); the HF model runs"
}
SITES = ("resid_pre", "resid_mid", "resid_post")
KINDS = ("add", "ablate", "clamp", "add_norm", "rotate", "rotate_plane", "scale")


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"


def direction_for(model, hf, text):
    """A random direction twice as long as the mean residual at ``LAYER`` (HF states)."""
    with torch.no_grad():
        hidden = hf(torch.tensor([encode(model, text)]), output_hidden_states=True)
    scale = hidden.hidden_states[LAYER][0].float().norm(dim=-1).mean().cpu()
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(7))
    return 2 * scale * direction / direction.norm()


@pytest.fixture(scope="module")
def pair(request, tokenizer):
    """``(arch, dtype name, bridge, untouched HF model, direction [d_model])``, built once per
    module for each architecture and dtype (tests are grouped by it)."""
    arch, dtype = request.param
    model, hf = build(arch, tokenizer, DTYPES[dtype])
    return arch, dtype, model, hf, direction_for(model, hf, TEXT)


def close(actual, expected, dtype, what=""):
    atol, rtol = tolerance(expected, dtype)
    torch.testing.assert_close(
        actual.float().cpu(), expected.float().cpu(), atol=atol, rtol=rtol, msg=lambda m: what + m
    )


def tolerance(expected, dtype) -> tuple[float, float]:
    """``(atol, rtol)``; in bf16 ``atol`` grows to 4 bf16 steps of the largest entry
    (``max|expected| / 64``), the rounding a residual of that size carries."""
    atol, rtol = TOLERANCE[dtype]
    if dtype == "bfloat16":
        atol = max(atol, float(expected.float().abs().max()) / 64)
    return atol, rtol


def within(actual, expected, dtype) -> bool:
    """Whether ``close`` would accept ``actual`` (so a no-op must fail it)."""
    atol, rtol = tolerance(expected, dtype)
    return torch.allclose(actual.float().cpu(), expected.float().cpu(), atol=atol, rtol=rtol)


def plane_for(direction):
    """A second random direction, for rotations in a fixed plane."""
    return torch.randn(direction.shape[-1], generator=torch.Generator().manual_seed(8))


def intervention(kind, direction, site, positions="all"):
    """``(steerlens intervention, HF closed form)`` of ``kind`` at ``site`` of LAYER; "scale"
    is a user's own kind (``tests.user_kinds``)."""
    vec = sl.SteeringVector({LAYER: direction}, site=site)
    unit = direction / direction.norm()
    where = dict(positions=positions)
    made = {
        "add": lambda: (sl.add(vec, 1.0, **where), 1.0),
        "ablate": lambda: (sl.ablate(vec, **where), 0.0),
        "clamp": lambda: (
            sl.clamp(vec, 0.5 * float(direction.norm()), **where),
            0.5 * float(direction.norm()),
        ),
        "add_norm": lambda: (sl.add(vec, 1.0, preserve_norm=True, **where), 1.0),
        "rotate": lambda: (sl.steering.rotate(vec, 120.0, **where), 120.0),
        "rotate_plane": lambda: (
            sl.steering.rotate(vec, 60.0, plane=plane_for(direction), **where),
            60.0,
        ),
        "scale": lambda: (Scale(unit, -2.0, layers=[LAYER], site=site, **where), -2.0),
    }
    steering, amount = made[kind]()
    plane = plane_for(direction) if kind == "rotate_plane" else None
    return steering, edit_fn(kind.replace("_plane", ""), direction, amount, plane)


def params(pairs):
    """The pairs as pytest params, those TransformerLens cannot run marked xfail."""
    return [pytest.param(pair, marks=upstream(pair), id=pair_id(pair)) for pair in pairs]


def upstream(pair):
    if pair not in UPSTREAM:
        return ()
    return pytest.mark.xfail(reason=UPSTREAM[pair], raises=RuntimeError, strict=True)


def pairs_and_sites():
    for pair in PAIRS:
        for site in SITES:
            marks = upstream(pair)
            if site == "resid_mid" and pair[0] in PARALLEL:
                reason = PARALLEL[pair[0]] + "; sl.steer refuses it with a clear error"
                marks = pytest.mark.xfail(reason=reason, raises=sl.SteerlensError, strict=True)
            yield pytest.param(pair, site, marks=marks, id=f"{pair_id(pair)}-{site}")


@pytest.mark.coverage("every intervention kind")
@pytest.mark.parametrize(("pair", "site"), pairs_and_sites(), indirect=["pair"])
def test_interventions_match_hf_hooks(pair, site):
    """Every kind (add, ablate, clamp, norm-preserving add, rotate in both planes, and a
    user's own Scale) at ``site`` of layer 1 gives the logits of the HF model with the
    closed-form edit made by a plain PyTorch hook (float32, cast back)."""
    arch, dtype, model, hf, direction = pair
    tokens = torch.tensor([encode(model, TEXT)])
    with torch.no_grad():
        plain = hf(tokens).logits[0]
        for kind in KINDS:
            steering, by_hand = intervention(kind, direction, site)
            with sl.steer(model, steering):
                steered = model(tokens.to(model_device(model)))[0]
            with edited(hf, arch, LAYER, site, by_hand):
                expected = hf(tokens).logits[0]
            close(steered, expected, dtype, f"{kind}: ")
            assert not within(plain, expected, dtype), f"{kind} changed too little to check"


@pytest.mark.coverage("activations = HF hidden states")
@pytest.mark.parametrize("pair", params(PAIRS), indirect=True)
def test_activations_equal_hf_hidden_states(pair):
    """``collect_activations`` (left-padded batch) at every layer's resid_pre, last token
    and mean over tokens, equal the HF hidden states of each text run alone."""
    _, dtype, model, hf, _ = pair
    n = model.cfg.n_layers
    last = sl.collect_activations(model, TEXTS, "all", batch_size=len(TEXTS))
    mean = sl.collect_activations(model, TEXTS, "all", position="mean", batch_size=len(TEXTS))
    for row, text in enumerate(TEXTS):
        with torch.no_grad():
            out = hf(torch.tensor([encode(model, text)]), output_hidden_states=True)
        states = torch.stack(out.hidden_states[:n])[:, 0].float()  # [n_layers, pos, d_model]
        close(last[row], states[:, -1], dtype, "last: ")
        close(mean[row], states.mean(1), dtype, "mean: ")


@pytest.mark.coverage("left-padded batch = rows alone")
@pytest.mark.parametrize("pair", params(PAIRS), indirect=True)
def test_padded_batch_equals_rows_alone(pair):
    """Steered next-token logits of a left-padded batch equal the HF model's on each row
    alone, edited at the row's own positions (all, or the first and last token), learned
    absolute positions (GPT-2) included: add, rotate and a user's own kind."""
    arch, dtype, model, hf, direction = pair
    rows = [encode(model, text) for text in TEXTS]
    assert len({len(row) for row in rows}) > 1, "the batch must need padding"
    for kind in ("add", "rotate", "scale"):
        for positions in ("all", [0, -1]):
            steering, by_hand = intervention(kind, direction, "resid_pre", positions)
            with sl.steer(model, steering):
                batched = next_token_logits(model, TEXTS, batch_size=len(TEXTS))
            expected = []
            for row in rows:
                chosen = torch.zeros(len(row), dtype=torch.bool)
                chosen[[0, -1] if positions != "all" else slice(None)] = True

                def edit(x, chosen=chosen, by_hand=by_hand):
                    return torch.where(chosen.to(x.device)[:, None], by_hand(x), x)

                with edited(hf, arch, LAYER, "resid_pre", edit):
                    expected.append(rows_logits(hf, [row])[0])
            close(batched, torch.stack(expected), dtype, f"{kind}, positions={positions}: ")


@pytest.mark.coverage("sweep = naive loop")
@pytest.mark.parametrize("pair", params(FLOAT32), indirect=True)
def test_sweep_equals_naive_loop(pair):
    """Two layers: the first through the prefix pass, the second through per-row hooks."""
    _, dtype, model, _, direction = pair
    vec = sl.SteeringVector({LAYER: direction, LAYER + 1: direction.flip(0)})
    coeffs = [-1.5, 2.0]
    res = sl.tradeoff.sweep(model, vec, coeffs, TEXTS, normalize=False, max_rows=4)
    expected = naive(model, vec, coeffs, TEXTS)
    torch.testing.assert_close(sweep_logits(res), expected, atol=2e-4, rtol=1e-4)
    assert (expected[0] - expected[-1]).abs().max() > 1e-2


@pytest.mark.coverage("one-shot cached = naive")
@pytest.mark.parametrize("pair", params(FLOAT32), indirect=True)
def test_one_shot_cached_equals_naive(pair):
    """The optimization trajectory of the cached path (prefix once) equals the naive one
    (full forward per step), as tests/oneshot checks on the tiny Llama."""
    _, _, model, _, _ = pair
    prompts = ["The weather today is", "My favourite food is a bowl of"]
    kwargs = dict(layer=LAYER, lr=0.2, max_iters=1, seed=3, tolerance=None, progress=False)
    cached = sl.optimize_one_shot(model, prompts, " sunny", " rain", cached=True, **kwargs)
    slow = sl.optimize_one_shot(model, prompts, " sunny", " rain", cached=False, **kwargs)
    assert cached.losses == pytest.approx(slow.losses, abs=1e-4)
    torch.testing.assert_close(cached.vector[LAYER], slow.vector[LAYER], atol=1e-4, rtol=1e-4)
    assert cached.losses[-1] != cached.losses[0]


@pytest.mark.coverage("vectors float32 in files")
@pytest.mark.parametrize("pair", params(BFLOAT16), indirect=True)
def test_vectors_read_in_low_precision_stay_float32(pair, tmp_path):
    """A vector read on a bf16 model is float32, equals the difference of the HF hidden
    states' means (in float32), and is stored as F32 in its file."""
    from safetensors import safe_open

    _, dtype, model, hf, _ = pair
    texts = [*TEXTS, TEXT]
    vec = sl.mean_difference(model, texts[:2], texts[2:], [LAYER], batch_size=2)
    with torch.no_grad():
        last = [
            hf(torch.tensor([encode(model, t)]), output_hidden_states=True)
            .hidden_states[LAYER][0, -1]
            .float()
            .cpu()
            for t in texts
        ]
    close(vec[LAYER], (last[0] + last[1] - last[2] - last[3]) / 2, dtype)
    assert vec[LAYER].dtype == torch.float32
    vec.save(tmp_path / "v.safetensors")
    with safe_open(str(tmp_path / "v.safetensors"), "pt") as handle:
        names = handle.keys()
        assert {handle.get_slice(name).get_dtype() for name in names} == {"F32"}
    assert sl.SteeringVector.load(tmp_path / "v.safetensors")[LAYER].dtype == torch.float32
