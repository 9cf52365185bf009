"""Layer scan and linear probe, against sklearn/numpy computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import steerlens as sl
from steerlens import SteerlensError
from steerlens.vectors.evaluation import separation, split_pairs

GOOD = ["good", "great", "lovely", "fine", "nice", "superb", "happy", "kind", "bright", "warm"]
BAD = ["bad", "awful", "nasty", "poor", "grim", "dreadful", "sad", "cruel", "dark", "cold"]
POS = [f"The day was {w} and the people were {w}." for w in GOOD]
NEG = [f"The day was {w} and the people were {w}." for w in BAD]


def test_separation_on_known_gaussians():
    rng = np.random.default_rng(0)
    d = np.zeros(8)
    d[0] = 1.0
    pos, neg = rng.normal(size=(4000, 8)), rng.normal(size=(4000, 8))
    pos[:, 0] += 2.0  # Cohen's d = 2 along d, AUROC = Phi(2 / sqrt 2) = 0.921
    result = separation(d, (pos[:2000], neg[:2000]), (pos[2000:], neg[2000:]))
    assert abs(result["cohens_d"] - 2.0) < 0.1
    assert abs(result["auroc"] - 0.921) < 0.01
    assert abs(result["accuracy"] - 0.841) < 0.02  # Phi(1)


def test_split_keeps_pairs_together():
    train, test = split_pairs(10, 0.3, 0)
    assert len(test) == 3 and sorted(np.r_[train, test]) == list(range(10))
    with pytest.raises(SteerlensError, match="at least 2"):
        split_pairs(4, 0.25, 0)


def test_layer_scan_matches_hand_computation(tiny_model):
    scan = sl.layer_scan(tiny_model, POS, NEG, layers=[1, 2], test_size=0.3, seed=1)
    acts = sl.collect_activations(tiny_model, POS + NEG, [1, 2]).double().numpy()
    train, test = split_pairs(10, 0.3, 1)
    for column, layer in enumerate([1, 2]):
        pos, neg = acts[:10, column], acts[10:, column]
        direction = pos[train].mean(0) - neg[train].mean(0)
        scores = np.r_[pos[test] @ direction, neg[test] @ direction]
        expected = roc_auc_score(np.r_[np.ones(3), np.zeros(3)], scores)
        assert scan.table.loc[layer, "auroc"] == pytest.approx(expected)
        assert scan.table.loc[layer, "norm"] == pytest.approx(np.linalg.norm(direction), rel=1e-5)
    assert {"random_auroc", "cos_prev", "cos_next", "cohens_d"} <= set(scan.table.columns)
    assert scan.vector.layers == [1, 2] and scan.best_layer in (1, 2)
    assert len(scan.figure().data) == 2


def test_linear_probe_matches_sklearn(tiny_model):
    vec, table = sl.vectors.linear_probe(tiny_model, POS, NEG, layers=[2], test_size=0.3, seed=1)
    acts = sl.collect_activations(tiny_model, POS + NEG, [2]).double().numpy()[:, 0]
    train, test = split_pairs(10, 0.3, 1)
    probe = LogisticRegression(max_iter=2000).fit(
        np.concatenate([acts[:10][train], acts[10:][train]]), np.r_[np.ones(7), np.zeros(7)]
    )
    x_test = np.concatenate([acts[:10][test], acts[10:][test]])
    assert table.loc[2, "accuracy"] == pytest.approx(
        probe.score(x_test, np.r_[np.ones(3), np.zeros(3)])
    )
    np.testing.assert_allclose(vec[2].numpy(), probe.coef_[0], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    ("positives", "negatives", "kwargs", "message"),
    [
        ([], [], {}, "at least one text"),
        (POS, NEG[:-1], {}, "paired by index"),
        (POS, NEG, {"layers": [9]}, "out of range"),
        (POS, NEG, {"method": "magic"}, "method"),
        (POS, NEG, {"test_size": 1.5}, "test_size"),
        (POS[:3], NEG[:3], {}, "at least 2"),
    ],
)
def test_bad_input(tiny_model, positives, negatives, kwargs, message):
    with pytest.raises(SteerlensError, match=message):
        sl.layer_scan(tiny_model, positives, negatives, **{"layers": [1], **kwargs})


def test_linear_probe_refuses_bad_regularisation(tiny_model):
    with pytest.raises(SteerlensError, match=r"C: expected a number in \(0, inf\)"):
        sl.vectors.linear_probe(tiny_model, POS, NEG, layers=[1], C=0.0)


@pytest.mark.slow
def test_refusal_scan_beats_random_baseline(default_model):
    from steerlens.measures.refusal import refusal_pairs

    frame = sl.datasets.load("refusal").sample(24, random_state=0)
    pos, neg = refusal_pairs(default_model, frame)
    scan = sl.layer_scan(default_model, pos, neg, layers=[4, 10, 16, 22])
    best = scan.table.loc[scan.best_layer]
    assert best["auroc"] > 0.95
    assert best["cohens_d"] > abs(best["random_cohens_d"]) + 2.0
