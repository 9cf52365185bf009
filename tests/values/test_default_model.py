"""Value entanglement on the default model (quick settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import steerlens as sl
from steerlens.values import ValuesSettings
from steerlens.values.ratings import DEFAULT_PROMPTS, rate, rate_conditions

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
QUICK = ValuesSettings.quick(progress=False)


@pytest.fixture(scope="module")
def ent(default_model):
    return sl.value_entanglement(default_model, settings=QUICK)


def test_quick_run_on_the_default_model(ent):
    leak = ent.leakage
    assert list(leak.index) == ["grammar", "economic"]
    for name in ("before", "after", "after_selective"):
        assert (leak[f"{name}_low"] <= leak[name]).all() and (
            leak[name] <= leak[f"{name}_high"]
        ).all()
    assert len(ent.items) == 2 * 4 * QUICK.max_frames
    assert ent.ratings["rating"].between(-1, 1).all() and (ent.ratings["mass"] > 0).all()
    assert set(ent.ablate_layers) <= set(QUICK.layers)
    side = ent.side_effects
    assert {"helpfulness p_correct", "neutral KL (nats/token)"} <= set(side.index)
    assert (side.loc["neutral KL (nats/token)", ["after", "after_selective"]] >= 0).all()
    json.dumps(ent.to_dict())


def test_the_model_discriminates_moral_value(ent):
    """The premise of the rating prompts: the moral rating tracks moral labels (on the full
    set its CI excludes 0 by far; with 4 frames per set only the pooled estimate is checked)."""
    rows = ent.ratings[
        (ent.ratings["condition"] == "before") & (ent.ratings["dimension"] == "moral")
    ]
    means = rows.groupby("moral")["rating"].mean()
    assert means[1] - means[-1] > 0.1


def test_projection_after_ablation_is_zero(ent):
    after = ent.projections[ent.projections["condition"] == "after"]
    before = ent.projections[ent.projections["condition"] == "before"]
    assert after["moral_projection"].abs().max() < 1e-3 * before["moral_projection"].abs().max()


def test_shared_prefix_ratings_on_the_default_model(default_model, ent):
    texts = list(ent.items["text"].iloc[:3])
    prompt = DEFAULT_PROMPTS["grammar"]
    got = rate_conditions(default_model, texts, prompt, {"a": sl.ablate(ent.vectors["plain"])})
    with sl.steer(default_model, sl.ablate(ent.vectors["plain"])):
        full = rate(default_model, texts, prompt)[0]
    np.testing.assert_allclose(got["a"][0], full, atol=1e-4)
    torch.testing.assert_close(
        torch.from_numpy(got["before"][0]),
        torch.from_numpy(rate(default_model, texts, prompt)[0]),
        atol=1e-4,
        rtol=0,
    )
