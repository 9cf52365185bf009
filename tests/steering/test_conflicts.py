"""Conflicting interventions are reported; commuting ones are not."""

from __future__ import annotations

import warnings

import pytest
import torch

import steerlens as sl
from tests.typechecks import without_type_checks


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


def test_a_rotation_rewrites_its_direction_and_its_plane():
    a, b, c = vec([1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0])
    (found,) = sl.steering.find_conflicts([sl.add(b, 1.0), sl.steering.rotate(b, 30.0)])
    assert found.overlap == pytest.approx(1.0)
    # a fixed plane span(a, c) rewrites c too, but not b
    plane = sl.steering.rotate(a, 30.0, plane=c[1])
    found = sl.steering.find_conflicts([sl.add(c, 1.0), sl.add(b, 1.0), plane])
    assert [(f.earlier, f.later) for f in found] == [(0, 2)]


def test_kinds_that_say_nothing_are_not_reported():
    """A user's kind declares neither what it touches nor what it removes."""
    from tests.user_kinds import Scale

    (a,) = vec([1.0, 0, 0, 0])
    scale = Scale(torch.tensor([1.0, 0, 0, 0]), 0.0, layers=[1])  # f = 0 removes along a
    assert sl.steering.find_conflicts([sl.add(a, 1.0), scale]) == []
    assert sl.steering.find_conflicts([scale, sl.ablate(a)]) == []


def test_one_intervention_is_refused_not_silently_conflict_free():
    (a,) = vec([1.0, 0, 0, 0])
    with pytest.raises(TypeError, match=r"expected a list.*find_conflicts\(\[a, b\]\)"):
        sl.steering.find_conflicts(sl.add(a, 1.0))
    with (
        without_type_checks(),
        pytest.raises(TypeError, match=r"interventions\[1\]: expected an Intervention"),
    ):
        sl.steering.find_conflicts([sl.add(a, 1.0), "ablate"])
