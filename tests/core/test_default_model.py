"""Integration tests on the offline default model (SmolLM2-135M-Instruct), loaded once."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

import steerlens as sl
from steerlens.core import model_cache
from steerlens.core.tokens import encode

pytestmark = pytest.mark.slow

POSITIVES = [
    "I love this film, it was wonderful.",
    "What a delightful, sunny morning.",
    "The meal was excellent and the staff were kind.",
    "She was thrilled with her brilliant results.",
]
NEGATIVES = [
    "I hate this film, it was dreadful.",
    "What a miserable, gloomy morning.",
    "The meal was awful and the staff were rude.",
    "She was upset with her terrible results.",
]


def test_default_model_shape_and_chat(default_model):
    assert default_model.cfg.n_layers == 30 and default_model.cfg.d_model == 576
    text = sl.format_chat(default_model, "How do I bake bread?")
    assert "How do I bake bread?" in text and text.rstrip().endswith("assistant")


def test_activations_match_hf_hidden_states(default_model):
    texts = [sl.format_chat(default_model, "Name a colour."), "Plain text, no template."]
    acts = sl.collect_activations(default_model, texts, [0, 15, 29], position="mean")
    for row, text in enumerate(texts):
        ids = torch.tensor([encode(default_model, text)])
        with torch.no_grad():
            hidden = default_model.original_model(ids, output_hidden_states=True).hidden_states
        for col, layer in enumerate([0, 15, 29]):
            torch.testing.assert_close(
                acts[row, col], hidden[layer][0].mean(0), atol=1e-3, rtol=1e-4
            )


def test_mean_difference_matches_plain_pytorch(default_model):
    """cosine >= 0.999 with mean(h+) - mean(h-) from HF output_hidden_states."""
    vec = sl.mean_difference(default_model, POSITIVES, NEGATIVES, layers=[8, 12])

    def last(text, layer):
        ids = torch.tensor([encode(default_model, text)])
        with torch.no_grad():
            out = default_model.original_model(ids, output_hidden_states=True)
        return out.hidden_states[layer][0, -1]

    for layer in (8, 12):
        expected = torch.stack([last(t, layer) for t in POSITIVES]).mean(0) - torch.stack(
            [last(t, layer) for t in NEGATIVES]
        ).mean(0)
        cosine = torch.cosine_similarity(vec[layer], expected, dim=0)
        assert cosine >= 0.999
        torch.testing.assert_close(vec[layer], expected, atol=1e-3, rtol=1e-3)


def test_contrastive_pca_matches_numpy_svd(default_model):
    import numpy as np

    vec = sl.contrastive_pca(default_model, POSITIVES, NEGATIVES, layers=[10])
    acts = sl.collect_activations(default_model, POSITIVES + NEGATIVES, [10])[:, 0].numpy()
    diffs = acts[:4] - acts[4:]
    _, _, vt = np.linalg.svd(np.concatenate([diffs, -diffs]), full_matrices=False)
    top = vt[0] * np.sign(diffs.mean(0) @ vt[0])
    assert float(np.dot(vec[10].numpy(), top)) > 0.999


def test_steered_generation_changes_and_restores(default_model):
    vec = sl.mean_difference(default_model, POSITIVES, NEGATIVES, layers=[10])
    before = sl.generate(default_model, "Describe your day in one sentence.", max_new_tokens=20)
    with sl.steer(default_model, sl.add(vec, coeff=6.0)):
        steered = sl.generate(
            default_model, "Describe your day in one sentence.", max_new_tokens=20
        )
    after = sl.generate(default_model, "Describe your day in one sentence.", max_new_tokens=20)
    assert isinstance(steered, str) and steered != before
    assert after == before


def test_kv_cache_equivalence_on_default_model(default_model):
    vec = sl.mean_difference(default_model, POSITIVES, NEGATIVES, layers=[10, 14])
    prompts = ["Tell me about cats.", "What is two plus two?"]
    for rule in ("prompt", "generated", [-1]):
        outs = []
        for cache in (True, False):
            with sl.steer(default_model, sl.add(vec, coeff=4.0, positions=rule)):
                outs.append(
                    sl.generate(default_model, prompts, max_new_tokens=12, use_past_kv_cache=cache)
                )
        assert outs[0] == outs[1], rule


def test_vector_file_round_trip_with_model(default_model, tmp_path):
    vec = sl.mean_difference(default_model, POSITIVES, NEGATIVES, layers=[8, 12])
    vec.save(tmp_path / "v.safetensors")
    back = sl.SteeringVector.load(tmp_path / "v.safetensors", model=default_model)
    assert back.layers == [8, 12] and back.model_name == vec.model_name
    assert back.data_hash == vec.data_hash and back.method == "mean_difference"
    assert all(torch.equal(back[layer], vec[layer]) for layer in back.layers)


def test_project_shape(default_model):
    vec = sl.mean_difference(default_model, POSITIVES, NEGATIVES, layers=[8, 12])
    proj = sl.project(default_model, POSITIVES + NEGATIVES, vec)
    assert proj.shape == (8, 2)
    assert (proj[:4, 1].mean() > proj[4:, 1].mean()).item()


def test_partial_cache_is_rebuilt_not_fatal(tmp_path, monkeypatch):
    """A cache folder without its completion marker (a crash mid-write) or with a broken
    weights file is rebuilt from the GGUF, and the rebuilt model gives the same logits."""
    monkeypatch.setenv("STEERLENS_CACHE", str(tmp_path))
    folder = model_cache.cache_dir(model_cache.default_gguf_path())
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"truncated")
    start = time.perf_counter()
    model = sl.load_model()
    build_seconds = time.perf_counter() - start
    assert json.loads((folder / "steerlens-cache.json").read_text())["source"]
    # A new file, not an in-place truncation: the live model memory-maps the old one.
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(b"corrupt after completion")
    rebuilt = sl.load_model()
    start = time.perf_counter()
    cached = sl.load_model()
    load_seconds = time.perf_counter() - start
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), rebuilt(ids))
        torch.testing.assert_close(model(ids), cached(ids))
    print(f"cache build {build_seconds:.1f}s, cached load {load_seconds:.1f}s")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".partial-")]


def test_named_model_offline_gives_clear_error():
    with pytest.raises(sl.SteerlensError, match="could not load"):
        sl.load_model("no-such-org/no-such-model")


def test_already_built_model_is_returned(default_model):
    assert sl.load_model(default_model) is default_model


def test_answer_pairs_share_the_prompt(default_model):
    pos, neg = sl.answer_pairs(default_model, ["Hi?", "Bye?"], ["No.", "Nope."], ["Yes.", "Yep."])
    prompt = sl.format_chat(default_model, "Hi?")
    assert pos[0] == prompt + "No." and neg[0] == prompt + "Yes."
    with pytest.raises(sl.SteerlensError, match="one per prompt"):
        sl.answer_pairs(default_model, ["Hi?"], ["No."], ["Yes.", "Yep."])


def test_a_gguf_path_loads_like_the_default(default_model):
    """``load_model(<file>.gguf)`` goes through the same dequantised cache as the default."""
    from steerlens.core.model_cache import default_gguf_path

    model = sl.load_model(str(default_gguf_path()))
    assert model.cfg.model_name == default_gguf_path().stem
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), default_model(ids))
