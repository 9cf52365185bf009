"""Conflicting interventions are reported; commuting ones are not."""

from __future__ import annotations

import warnings

import pytest
import torch

import steerlens as sl


def vec(*rows, layer=1):
    return [sl.SteeringVector({layer: torch.tensor(r, dtype=torch.float32)}) for r in rows]


def test_ablate_after_add_on_the_same_direction_conflicts():
    a, b = vec([1.0, 0, 0, 0], [1.0, 1.0, 0, 0])
    conflicts = sl.steering.find_conflicts([sl.add(a, 2.0), sl.ablate(b)])
    assert len(conflicts) == 1
    found = conflicts[0]
    assert (found.earlier, found.later, found.layer, found.site) == (0, 1, 1, "resid_pre")
    assert found.overlap == pytest.approx(2**-0.5, abs=1e-6)  # cos 45 degrees


def test_rank_k_overlap_is_the_projection_onto_the_span():
    a, b, c = vec([1.0, 1.0, 1.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0])
    (found,) = sl.steering.find_conflicts([sl.clamp(a, 1.0), sl.ablate([b, c])])
    assert found.overlap == pytest.approx((2 / 3) ** 0.5, abs=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: [sl.add(a, 1.0), sl.add(b, 3.0)],  # additions commute
        lambda a, b: [sl.ablate(a), sl.add(a, 1.0)],  # add after ablate is deliberate
        lambda a, b: [sl.add(a, 1.0), sl.ablate(vec([0, 0, 1.0, 0])[0])],  # orthogonal
        lambda a, b: [sl.add(a, 1.0), sl.ablate(b, site="resid_post")],  # other site
        lambda a, b: [sl.add(a, 1.0), sl.ablate(vec([1.0, 0, 0, 0], layer=2)[0])],  # other layer
    ],
)
def test_commuting_interventions_are_not_reported(make):
    a, b = vec([1.0, 0, 0, 0], [1.0, 1.0, 0, 0])
    assert sl.steering.find_conflicts(make(a, b)) == []


def test_steer_warns_and_still_applies(tiny_model):
    gen = torch.Generator().manual_seed(0)
    a = sl.SteeringVector({1: torch.randn(64, generator=gen)})
    with pytest.warns(sl.steering.SteeringConflictWarning, match="removes 100% of the direction"):
        with sl.steer(tiny_model, sl.add(a, 5.0), sl.ablate(a)):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("error", sl.steering.SteeringConflictWarning)
        with sl.steer(tiny_model, sl.ablate(a), sl.add(a, 5.0)):
            pass
