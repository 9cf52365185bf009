"""Compatibility mode: vectors record the residual basis they were read in, and apply across
bases exactly or raise. A plain and a compatibility-mode bridge are booted from copies of the
same Hugging Face weights (norm gains and biases perturbed, so folding them is not a no-op);
the reference is the untouched Hugging Face model, steered by a plain PyTorch pre-hook."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import steerlens as sl
from steerlens.core import vector_file
from steerlens.core.basis import residual_basis
from steerlens.core.tokens import encode
from tests.architectures import CONFIGS
from tests.reference import edited

LAYER = 1
POSITIVES = ["I love this, it is wonderful", "What a great and happy day", "Lovely work"]
NEGATIVES = ["I hate this, it is awful", "What a terrible and sad day", "Dreadful work"]
TEXTS = ["The cat sat on the mat", "Once upon a time there", "Tell me about the sea"]


def boot_pair(name: str, tokenizer):
    """``(plain, compat, untouched HF model)`` from one set of random weights."""
    config = AutoConfig.for_model(name, vocab_size=len(tokenizer), **CONFIGS[name])
    torch.manual_seed(0)
    hf_model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for param_name, param in hf_model.named_parameters():
            if "ln" in param_name or "norm" in param_name:
                param.add_(0.3 * torch.randn_like(param))
    untouched, for_compat = copy.deepcopy(hf_model), copy.deepcopy(hf_model)
    plain = sl.load_model(hf_model, tokenizer=tokenizer)
    compat = sl.load_model(for_compat, tokenizer=tokenizer, compatibility_mode=True)
    return plain, compat, untouched


@pytest.fixture(scope="module")
def gpt2(tokenizer):
    return boot_pair("gpt2", tokenizer)


@pytest.fixture(scope="module")
def llama(tokenizer):
    return boot_pair("llama", tokenizer)


def hf_logits(hf_model, ids, edit=None) -> torch.Tensor:
    """Last-token logits ``[d_vocab]`` centred over the vocabulary (compatibility mode
    centres the unembedding, which shifts each position's logits by a constant), with
    ``edit`` applied to the input of decoder layer ``LAYER`` (= ``resid_pre``)."""

    with edited(hf_model, "", LAYER, "resid_pre", edit or (lambda x: x)), torch.no_grad():
        logits = hf_model(torch.tensor([ids])).logits[0, -1]
    return logits - logits.mean()


def steered_logits(model, ids, intervention) -> torch.Tensor:
    with torch.no_grad(), sl.steer(model, intervention):
        logits = model(torch.tensor([ids]))[0, -1]
    return logits - logits.mean()


def hf_projections(hf_model, model, u) -> torch.Tensor:
    """``[n_texts]``: each text's last-token ``resid_pre`` at ``LAYER`` (the Hugging Face
    hidden state) dotted with ``u``."""
    with torch.no_grad():
        hidden = [
            hf_model(torch.tensor([encode(model, t)]), output_hidden_states=True).hidden_states[
                LAYER
            ][0, -1]
            for t in TEXTS
        ]
    return torch.stack(hidden) @ u


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_the_residual_basis_follows_the_weights(gpt2, llama):
    plain, compat, _ = gpt2
    assert residual_basis(plain) == "plain"
    assert residual_basis(compat) == "centred"
    # RMSNorm: TransformerLens folds the gains but does not centre the writing weights
    assert residual_basis(llama[1]) == "plain"
    ids = torch.tensor([encode(plain, TEXTS[0])])
    names = [f"blocks.{LAYER}.hook_{site}" for site in ("resid_pre", "resid_mid", "resid_post")]
    with torch.no_grad():
        _, plain_cache = plain.run_with_cache(ids, names_filter=names)
        _, compat_cache = compat.run_with_cache(ids, names_filter=names)
    for name in names:
        expected = plain_cache[name] - plain_cache[name].mean(-1, keepdim=True)
        torch.testing.assert_close(compat_cache[name], expected, rtol=1e-4, atol=1e-5)


def test_constructors_record_the_basis_and_files_keep_it(gpt2, tmp_path):
    plain, compat, _ = gpt2
    from_plain = sl.mean_difference(plain, POSITIVES, NEGATIVES, layers=[LAYER])
    from_compat = sl.mean_difference(compat, POSITIVES, NEGATIVES, layers=[LAYER])
    pca = sl.contrastive_pca(compat, POSITIVES, NEGATIVES, layers=[LAYER])
    assert (from_plain.basis, from_compat.basis, pca.basis) == ("plain", "centred", "centred")
    from_compat.save(tmp_path / "v.safetensors")
    assert sl.SteeringVector.load(tmp_path / "v.safetensors").basis == "centred"
    meta = {"site": "resid_pre", "method": "manual", "model_name": None, "position": "last"}
    vector_file.write(
        tmp_path / "old.safetensors",
        from_plain.directions,
        {**meta, "params": {}, "data_hash": None},
    )  # a file written before the field existed
    assert sl.SteeringVector.load(tmp_path / "old.safetensors").basis == "plain"
    with pytest.raises(sl.SteerlensError, match="basis"):
        from_plain + from_compat


def test_adding_a_plain_vector_on_the_compat_model_matches_the_plain_model(gpt2):
    plain, compat, untouched = gpt2
    vec = sl.mean_difference(plain, POSITIVES, NEGATIVES, layers=[LAYER])
    ids = encode(plain, TEXTS[1])
    reference = hf_logits(untouched, ids, lambda x: x + 4.0 * vec[LAYER])
    assert relative(reference, hf_logits(untouched, ids)) > 1e-2  # the steering does something
    assert relative(steered_logits(compat, ids, sl.add(vec, 4.0)), reference) < 1e-4
    assert relative(steered_logits(plain, ids, sl.add(vec, 4.0)), reference) < 1e-4


def test_a_compat_vector_ablates_clamps_and_projects_the_same_on_the_plain_model(gpt2):
    plain, compat, untouched = gpt2
    vec = sl.mean_difference(compat, POSITIVES, NEGATIVES, layers=[LAYER])
    u = vec[LAYER] / vec[LAYER].norm()
    ids = encode(plain, TEXTS[2])
    edits = {
        "ablate": (sl.ablate(vec), lambda x: x - (x @ u)[..., None] * u),
        "clamp": (sl.clamp(vec, 3.0), lambda x: x + (3.0 - x @ u)[..., None] * u),
    }
    for kind, (intervention, by_hand) in edits.items():
        reference = hf_logits(untouched, ids, by_hand)
        for model in (plain, compat):
            assert relative(steered_logits(model, ids, intervention), reference) < 1e-4, kind
    expected = hf_projections(untouched, plain, u)
    for model in (plain, compat):
        got = sl.project(model, TEXTS, vec)[:, 0]
        assert relative(got, expected) < 1e-4


def test_a_plain_vector_cannot_be_projected_on_a_centred_model(gpt2):
    plain, compat, _ = gpt2
    vec = sl.mean_difference(plain, POSITIVES, NEGATIVES, layers=[LAYER])
    with pytest.raises(sl.SteerlensError, match="'plain' residual basis.*'centred'"):
        sl.project(compat, TEXTS, vec)
    for intervention in (sl.ablate(vec), sl.clamp(vec, 1.0)):
        with (
            pytest.raises(sl.SteerlensError, match="'plain' residual basis.*'centred'"),
            sl.steer(compat, intervention),
        ):
            pass
    centred = sl.SteeringVector({LAYER: vec[LAYER] - vec[LAYER].mean()})  # zero mean: exact
    assert sl.project(compat, TEXTS, centred).shape == (len(TEXTS), 1)


def test_rms_models_keep_the_plain_basis_in_compatibility_mode(llama):
    plain, compat, untouched = llama
    vec = sl.mean_difference(plain, POSITIVES, NEGATIVES, layers=[LAYER])
    assert sl.mean_difference(compat, POSITIVES, NEGATIVES, layers=[LAYER]).basis == "plain"
    u = vec[LAYER] / vec[LAYER].norm()
    ids = encode(plain, TEXTS[0])
    reference = hf_logits(untouched, ids, lambda x: x - (x @ u)[..., None] * u)
    assert relative(steered_logits(compat, ids, sl.ablate(vec)), reference) < 1e-4
    assert (
        relative(sl.project(compat, TEXTS, vec)[:, 0], hf_projections(untouched, plain, u)) < 1e-4
    )


def test_kinds_that_read_the_norm_refuse_the_other_basis(gpt2):
    """Rotating in the residual's own plane and norm-preserving addition read |x|, which a
    centred residual no longer carries: refused across bases, even for a centred vector.
    A rotation in a fixed plane of zero-mean directions reads projections only: exact."""
    plain, compat, untouched = gpt2
    vec = sl.mean_difference(compat, POSITIVES, NEGATIVES, layers=[LAYER])
    for intervention in (sl.steering.rotate(vec, 60.0), sl.add(vec, 2.0, preserve_norm=True)):
        assert not intervention.basis_invariant()
        with (
            pytest.raises(sl.SteerlensError, match=r"'centred' residual basis.*'plain'"),
            sl.steer(plain, intervention),
        ):
            pass
    b = torch.randn(vec.d_model, generator=torch.Generator().manual_seed(1))
    b = b - b.mean()
    rotation = sl.steering.rotate(vec, 60.0, plane=b, layers=[LAYER])
    assert rotation.basis_invariant()
    u = vec[LAYER] / vec[LAYER].norm()
    b_hat = (b - (b @ u) * u) / (b - (b @ u) * u).norm()

    def by_hand(x):
        a, c = x @ u, x @ b_hat
        r = torch.sqrt(a**2 + c**2)[..., None]
        turned = r * (0.5 * u + 3**0.5 / 2 * b_hat)
        return x - a[..., None] * u - c[..., None] * b_hat + turned

    ids = encode(plain, TEXTS[0])
    reference = hf_logits(untouched, ids, by_hand)
    assert relative(reference, hf_logits(untouched, ids)) > 1e-3
    for model in (plain, compat):
        assert relative(steered_logits(model, ids, rotation), reference) < 1e-4
