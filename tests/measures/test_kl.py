"""Per-token KL of steered next-token distributions, against plain PyTorch on the HF model."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.measures.kl import neutral_texts
from tests.reference import edited

TEXTS = ["The river runs north.", "Bread is made from flour, water and salt.", "Hi"]


def test_token_kl_matches_a_hand_computation(tiny_model):
    vec = sl.SteeringVector({1: 5.0 * torch.randn(64, generator=torch.Generator().manual_seed(2))})
    kls = sl.measures.token_kl(tiny_model, {"add": sl.add(vec)}, TEXTS, batch_size=2)["add"]
    expected = []
    hf = tiny_model.original_model
    for text in TEXTS:
        ids = torch.tensor([encode(tiny_model, text)])

        with torch.no_grad():
            base = hf(ids).logits[0].double().log_softmax(-1)
            with edited(hf, "", 1, "resid_pre", lambda x: x + vec[1]):
                steered = hf(ids).logits[0].double().log_softmax(-1)
        expected.append((base.exp() * (base - steered)).sum(-1))
    expected = torch.cat(expected)
    assert kls.shape == expected.shape  # one value per real token, input order
    torch.testing.assert_close(kls, expected, atol=1e-6, rtol=1e-4)
    means = sl.measures.mean_kl(tiny_model, {"add": sl.add(vec)}, TEXTS)
    assert means["add"] == pytest.approx(float(expected.mean()), abs=1e-6)


def test_neutral_set_is_shipped():
    texts = neutral_texts()
    assert len(texts) == 16 and all(len(t) > 60 for t in texts)
    frame = sl.datasets.load("neutral")
    assert list(frame.columns) == ["id", "text"] and frame["id"].is_unique
