"""Leakage statistics: cell-mean contrasts against OLS, bootstrap behaviour, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steerlens as sl
from steerlens import SteerlensError
from steerlens.values.stats import cell_effects


def _ols(rating, target, moral):
    """Independent reference: least squares on [1, t, m, t*m] (numpy lstsq)."""
    design = np.column_stack([np.ones_like(rating), target, moral, target * moral])
    coef = np.linalg.lstsq(design, rating, rcond=None)[0]
    return 2 * coef[2], 2 * coef[1], 4 * coef[3]


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 6), min_size=4, max_size=4),
    seed=st.integers(0, 10_000),
)
def test_cell_contrasts_equal_ols_also_unbalanced(counts, seed):
    rng = np.random.default_rng(seed)
    cells = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    moral = np.concatenate([[m] * n for (m, _), n in zip(cells, counts, strict=True)])
    target = np.concatenate([[t] * n for (_, t), n in zip(cells, counts, strict=True)])
    rating = rng.normal(size=len(moral))
    got = cell_effects(rating, target.astype(float), moral.astype(float), np.ones((1, len(moral))))
    np.testing.assert_allclose(got[0, :3], _ols(rating, target, moral), atol=1e-10)
    share = abs(got[0, 0]) / (abs(got[0, 0]) + abs(got[0, 1]))
    assert got[0, 3] == pytest.approx(share)


def test_weights_are_repeated_rows():
    rng = np.random.default_rng(0)
    moral = np.tile([1, 1, -1, -1], 5).astype(float)
    target = np.tile([1, -1, 1, -1], 5).astype(float)
    rating = rng.normal(size=20)
    weights = rng.integers(1, 4, size=20)
    repeated = np.repeat(np.arange(20), weights)
    got = cell_effects(rating, target, moral, weights[None].astype(float))[0]
    expected = cell_effects(
        rating[repeated], target[repeated], moral[repeated], np.ones((1, len(repeated)))
    )[0]
    np.testing.assert_allclose(got, expected)


def _ratings(n_frames=30, moral_coef=0.2, target_coef=0.5, noise=0.1, seed=0, dimension="grammar"):
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_frames):
        bump = rng.normal(scale=noise)  # a frame effect shared by its four items
        for m in (1, -1):
            for t in (1, -1):
                rating = moral_coef * m + target_coef * t + bump + rng.normal(scale=noise)
                rows.append(
                    {
                        "id": f"{f}-{m}-{t}",
                        "set": "moral_grammar",
                        "frame": f"f{f}",
                        "moral": m,
                        "target": t,
                        "dimension": dimension,
                        "rating": rating,
                        "mass": 1.0,
                    }
                )
    return pd.DataFrame(rows)


def test_leakage_recovers_known_effects():
    table = sl.values.value_leakage(_ratings(), n_boot=500)
    get = table.set_index("statistic")
    assert get.loc["moral_effect", "estimate"] == pytest.approx(0.4, abs=0.05)
    assert get.loc["target_effect", "estimate"] == pytest.approx(1.0, abs=0.05)
    assert get.loc["moral_effect", "ci_low"] < 0.4 < get.loc["moral_effect", "ci_high"]
    assert get.loc["moral_share", "estimate"] == pytest.approx(0.4 / 1.4, abs=0.05)
    assert (table["n_items"] == 120).all() and (table["n_frames"] == 30).all()
    assert table["change"].isna().all()


def test_paired_change_between_conditions():
    before = _ratings(seed=1)
    after = before.assign(rating=before["rating"] - 0.2 * before["moral"])  # leakage removed
    table = sl.values.value_leakage({"before": before, "after": after}, n_boot=500)
    row = table[(table["condition"] == "after") & (table["statistic"] == "moral_effect")].iloc[0]
    assert row["change"] == pytest.approx(-0.4, abs=1e-9)
    # the change is the same in every draw, so its paired interval collapses onto it
    assert row["change_low"] == pytest.approx(-0.4) and row["change_high"] == pytest.approx(-0.4)
    # the unpaired intervals of each condition are much wider than the paired one
    assert row["ci_high"] - row["ci_low"] > 0.01


def test_seeded_and_level():
    a = sl.values.value_leakage(_ratings(), n_boot=300, seed=3)
    b = sl.values.value_leakage(_ratings(), n_boot=300, seed=3)
    pd.testing.assert_frame_equal(a, b)
    narrow = sl.values.value_leakage(_ratings(), n_boot=300, seed=3, level=0.5)
    assert (narrow["ci_high"] - narrow["ci_low"] <= a["ci_high"] - a["ci_low"] + 1e-12).all()


def test_bad_ratings():
    good = _ratings(n_frames=6)
    with pytest.raises(SteerlensError, match="missing columns"):
        sl.values.value_leakage(good.drop(columns=["moral"]), n_boot=100)
    with pytest.raises(SteerlensError, match="NaN"):
        sl.values.value_leakage(good.assign(rating=np.nan), n_boot=100)
    with pytest.raises(SteerlensError, match="same items"):
        sl.values.value_leakage({"before": good, "after": good.iloc[4:]}, n_boot=100)
    with pytest.raises(SteerlensError, match="rated twice"):
        sl.values.value_leakage(pd.concat([good, good.iloc[:1]]), n_boot=100)
    with pytest.raises(SteerlensError, match="n_boot"):
        sl.values.value_leakage(good, n_boot=10)
    with pytest.raises(SteerlensError, match="level"):
        sl.values.value_leakage(good, n_boot=100, level=1.5)
    with pytest.raises(SteerlensError, match="expected a DataFrame"):
        sl.values.value_leakage({}, n_boot=100)
    with pytest.raises(SteerlensError, match="too few frames"):
        one = good[good["frame"] == "f0"]
        sl.values.value_leakage(one.assign(frame=one["id"]), n_boot=100)
