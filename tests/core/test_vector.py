"""SteeringVector: validation, algebra (property tests), files (no pickle), repr."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import steerlens as sl
from steerlens import SteeringVector, SteerlensError


def make(layers=(1, 2), d=8, seed=0, **kwargs) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    return SteeringVector({layer: torch.randn(d, generator=gen) for layer in layers}, **kwargs)


floats = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), scale=floats)
def test_add_then_subtract_is_identity(seed, scale):
    a, b = make(seed=seed), make(seed=seed + 1)
    back = (a + b * scale) - b * scale
    for layer in a.layers:
        torch.testing.assert_close(back[layer], a[layer], atol=1e-4, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.floats(0.1, 10))
def test_unit_and_cosine(seed, scale):
    a = make(seed=seed)
    unit = (a * scale).unit()
    assert all(abs(n - 1) < 1e-5 for n in unit.norms().values())
    assert all(abs(c - 1) < 1e-5 for c in a.cosine(a * scale).values())
    assert all(abs(c + 1) < 1e-5 for c in a.cosine(-a).values())


def test_layers_indexing_and_metadata():
    vec = make(layers=(5, 2), method="mean_difference", model_name="m", data_hash="abc")
    assert vec.layers == [2, 5]
    assert vec[5].shape == (8,)
    assert vec.d_model == 8
    with pytest.raises(SteerlensError, match="not in this vector's layers"):
        vec[3]


def test_repr_says_where_it_reads_and_applies_on_one_line():
    vec = make(layers=(8, 12), site="resid_post", method="mean_difference", model_name="m")
    text = repr(vec)
    assert "read and applied at blocks.{8,12}.hook_resid_post" in text
    assert "mean_difference" in text and "last token" in text and "\n" not in text
    assert len(text) < 120 and "basis" not in text
    assert "basis='centred'" in repr(make(layers=(8,), basis="centred"))
    prose = vec.describe()
    assert "blocks.{8,12}.hook_resid_post" in prose and "site=" in prose
    assert f"8: {vec.norms()[8]:.3g}" in prose


@pytest.mark.parametrize(
    ("directions", "message"),
    [
        ({}, "at least one layer"),
        ({1: torch.tensor([1.0, float("nan")])}, "NaN or inf"),
        ({1: torch.tensor([1.0, float("inf")])}, "NaN or inf"),
        ({1: torch.ones(2, 3)}, "1-D tensor|Type-check error"),
        ({1: torch.ones(3), 2: torch.ones(4)}, "disagree on d_model"),
        ({-1: torch.ones(3)}, "ints >= 0"),
        ({1: torch.ones(3, dtype=torch.long)}, "expected floats|Type-check error"),
    ],
)
def test_bad_vectors_are_refused(directions, message):
    # Shape and dtype mistakes meet beartype first under the test suite, steerlens's own
    # check without it; either way they are refused with the reason.
    with pytest.raises((SteerlensError, TypeCheckError), match=message):
        SteeringVector(directions)


def test_unknown_site_suggests():
    with pytest.raises(SteerlensError, match="Did you mean 'resid_post'"):
        make(site="resid_pst")


def test_algebra_refuses_mismatch():
    with pytest.raises(SteerlensError, match="same layers"):
        make(layers=(1,)) + make(layers=(2,))
    with pytest.raises(SteerlensError, match="finite number"):
        make() * float("nan")
    with pytest.raises(SteerlensError, match="zero"):
        SteeringVector({1: torch.zeros(4)}).unit()


def test_save_load_round_trip(tmp_path):
    vec = make(
        layers=(3, 7),
        method="mean_difference",
        model_name="tiny",
        position="mean",
        params={"n_pairs": 4},
        data_hash="deadbeef",
        site="resid_mid",
    )
    path = tmp_path / "v.safetensors"
    vec.save(path)
    back = SteeringVector.load(path)
    assert back.layers == vec.layers and back.site == "resid_mid"
    assert (back.method, back.model_name, back.position) == ("mean_difference", "tiny", "mean")
    assert back.params == {"n_pairs": 4} and back.data_hash == "deadbeef"
    for layer in vec.layers:
        assert torch.equal(back[layer], vec[layer])


def test_load_refuses_truncated_corrupt_and_pickle(tmp_path):
    path = tmp_path / "v.safetensors"
    make().save(path)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-10])
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    pickled = tmp_path / "p.safetensors"
    pickled.write_bytes(pickle.dumps({"layer.1": torch.ones(8)}))
    for bad in (truncated, garbage, pickled):
        with pytest.raises(SteerlensError, match="never unpickles|not a readable"):
            SteeringVector.load(bad)
    with pytest.raises(SteerlensError, match="no file"):
        SteeringVector.load(tmp_path / "missing.safetensors")


def test_load_refuses_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"layer.1": torch.ones(8)}, str(path))
    with pytest.raises(SteerlensError, match="has no steerlens metadata"):
        SteeringVector.load(path)


def test_load_checks_model(tmp_path, tiny_model):
    path = tmp_path / "v.safetensors"
    make(layers=(1,), d=7).save(path)
    with pytest.raises(SteerlensError, match="d_model 7 does not match"):
        SteeringVector.load(path, model=tiny_model)
    make(layers=(9,), d=64).save(path)
    with pytest.raises(SteerlensError, match="out of range"):
        SteeringVector.load(path, model=tiny_model)
    make(layers=(2,), d=64).save(path)
    assert sl.SteeringVector.load(path, model=tiny_model).layers == [2]


def test_basis_is_checked_and_saved(tmp_path):
    with pytest.raises(SteerlensError, match="basis"):
        make(basis="folded")
    path = tmp_path / "v.safetensors"
    make(basis="centred").save(path)
    assert SteeringVector.load(path).basis == "centred"
    from steerlens.core import vector_file

    directions, meta = vector_file.read(path)
    vector_file.write(path, directions, {**meta, "basis": "folded"})
    with pytest.raises(SteerlensError, match="invalid metadata field 'basis'"):
        SteeringVector.load(path)
