"""The sweep engine (``steering.sweep``): every prompt under every variant equals a full
forward under ``sl.steer`` of that variant, by both strategies, with several variants per
pass, for any mix of interventions (tiny model)."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.suffix import unembed
from steerlens.core.tokens import encode
from steerlens.steering.readout import next_token_logits
from steerlens.steering.sweep import ReplayBatch, SweepOutput, SweepPlan, run_sweep
from steerlens.steering.sweep.replay import SuffixReplay
from steerlens.steering.sweep.shared_opening import SharedOpening, opening_length

PROMPTS = [
    "A short one.",
    "A somewhat longer sentence with more tokens in it, to force left padding.",
    "Three.",
]
OPENING = "Q: what colour is the sky? A: blue. Q: how many legs has a cat? A: four. Q: "
FEW_SHOT = [OPENING + "what is ice? A:", OPENING + "which animal says moo all day? A:"]


def vector(seed: int, layers=(1, 2)) -> sl.SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    return sl.SteeringVector({layer: torch.randn(64, generator=gen) for layer in layers})


def variants():
    """Four kinds at different layers and positions, and the unsteered model."""
    return (
        sl.ablate(vector(0)),
        None,
        sl.add(vector(1), 2.0, layers=[2], positions="prompt"),
        sl.clamp(vector(2), 1.5, layers=[1]),
        sl.add(vector(3), -3.0, layers=[1], positions="last"),
    )


def steered_logits(model, variant, prompts):
    if variant is None:
        return next_token_logits(model, prompts, batch_size=1)
    with sl.steer(model, variant):
        return next_token_logits(model, prompts, batch_size=1)


def every_token():
    """Kinds that edit every token (the shared opening needs that)."""
    return (sl.ablate(vector(0)), sl.clamp(vector(2), 1.5, layers=[1]), sl.add(vector(1), 2.0))


def logits_plan(model, variants, **options) -> SweepPlan:
    return SweepPlan(variants, readout=lambda h: unembed(model, h[:, None])[:, 0], **options)


@pytest.fixture(scope="module")
def expected(tiny_model):
    """Full forwards under sl.steer of each variant (computed once for every max_rows)."""
    return {
        "replay": [steered_logits(tiny_model, v, PROMPTS) for v in variants()],
        "shared": [steered_logits(tiny_model, v, FEW_SHOT) for v in (*every_token(), None)],
    }


@pytest.mark.parametrize("max_rows", [1, 4, 64])
def test_suffix_replay_equals_steered_forwards(tiny_model, expected, max_rows):
    plan = logits_plan(tiny_model, variants(), batch_size=2, max_rows=max_rows)
    sequences = [encode(tiny_model, p) for p in PROMPTS]
    out = SuffixReplay(tiny_model, plan).run(sequences)
    assert out.steered.shape == (5, 3, tiny_model.cfg.d_vocab)
    for k, logits in enumerate(expected["replay"]):
        torch.testing.assert_close(out.steered[k], logits, atol=2e-4, rtol=1e-4)
    assert torch.equal(out.steered[1], out.base)  # the unsteered variant is the prefix pass


@pytest.mark.parametrize("max_rows", [1, 3, 64])
def test_shared_opening_equals_steered_forwards(tiny_model, expected, max_rows):
    plan = logits_plan(tiny_model, every_token(), max_rows=max_rows, share_opening=True)
    sequences = [encode(tiny_model, p) for p in FEW_SHOT]
    out = SharedOpening(tiny_model, plan, opening_length(sequences)).run(sequences)
    for k, logits in enumerate(expected["shared"][:-1]):
        torch.testing.assert_close(out.steered[k], logits, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(out.base, expected["shared"][-1], atol=2e-4, rtol=1e-4)


def test_run_sweep_takes_the_shared_opening_when_asked(tiny_model, monkeypatch):
    taken = []
    empty = SweepOutput(torch.zeros(3, 2), torch.zeros(2))
    monkeypatch.setattr(SharedOpening, "run", lambda self, _: taken.append(self.opening) or empty)
    plan = logits_plan(tiny_model, every_token(), share_opening=True)
    run_sweep(tiny_model, [encode(tiny_model, p) for p in FEW_SHOT], plan)
    assert taken and taken[0] > 20


@pytest.mark.parametrize(
    "make", [sl.clamp, sl.steering.rotate], ids=["clamp value", "rotation angle"]
)
def test_a_family_of_any_kind_sweeps_like_coefficients(tiny_model, make):
    vec = vector(4, layers=(1,))
    values = [0.0, 30.0]
    res = sl.tradeoff.sweep(tiny_model, vec, values, PROMPTS, family=lambda a: make(vec, a))
    for k, value in enumerate(values):  # a clamp to 0 or a 0° rotation is not unsteered
        expected = steered_logits(tiny_model, make(vec, value), PROMPTS)
        torch.testing.assert_close(res.logits(k), expected, atol=2e-4, rtol=1e-4)
    assert not res.normalized and res.layers == (1,)
    with pytest.raises(sl.SteerlensError, match="family"):
        sl.tradeoff.sweep(tiny_model, vec, values, PROMPTS, family=lambda a: a)


def test_replay_batch_tile_and_take_keep_rows(tiny_model):
    tokens = torch.tensor([encode(tiny_model, "Hello there friend")] * 2)
    batch = ReplayBatch.open(tiny_model, tokens, torch.ones_like(tokens, dtype=torch.bool), 1)
    with torch.no_grad():
        once = batch.final(batch.prefix.resid)
        tiled = batch.tile(3)
        torch.testing.assert_close(tiled.final(tiled.prefix.resid), once.repeat(3, 1, 1))
        taken = batch.take(torch.tensor([1]))
        torch.testing.assert_close(taken.final(taken.prefix.resid), once[1:])
    torch.testing.assert_close(once, batch.prefix.final)
    assert batch.select(sl.add(vector(0), positions="last").positions)[:, -1].all()


def test_plans_are_checked():
    with pytest.raises(sl.SteerlensError, match="non-empty list"):
        SweepPlan(())
    with pytest.raises(sl.SteerlensError, match="max_rows"):
        SweepPlan((None,), max_rows=0)
    assert SweepPlan((None,)).first_layer is None
    assert SweepPlan(variants()).first_layer == 1
