"""Non-finite activations under steering are never silent (``sl.steer(..., on_nonfinite=)``)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.steering import SteeringNonFiniteWarning
from tests.reference import edited


@pytest.fixture(scope="module")
def models(tiny_model):
    """The tiny model in float32 and a bfloat16 copy."""
    bf16 = copy.deepcopy(tiny_model).to(torch.bfloat16)
    return {"float32": tiny_model, "bfloat16": bf16}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_overflowing_coefficient_raises_in_generate(models, dtype, use_cache):
    model = models[dtype]
    vec = sl.SteeringVector({1: torch.ones(64)})  # 1e39 * 1 overflows float32 and bf16
    with pytest.raises(sl.SteerlensError, match="NaN or inf.*coeff=1e\\+39"):
        with sl.steer(model, sl.add(vec, 1e39)):
            sl.generate(model, "Hello", max_new_tokens=3, use_past_kv_cache=use_cache)
    assert model.list_hooks() == {} and not model._forward_hooks  # everything removed
    assert isinstance(sl.generate(model, "Hello", max_new_tokens=2), str)  # model still usable


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_overflow_raises_in_a_plain_forward_pass(models, dtype):
    model = models[dtype]
    ids = torch.tensor([encode(model, "Hello there")])
    vec = sl.SteeringVector({2: torch.ones(64)})
    with pytest.raises(sl.SteerlensError, match="NaN or inf"):
        with sl.steer(model, sl.add(vec, 1e39)), torch.no_grad():
            model(ids)


def test_warn_mode_warns_once_and_returns(models):
    model = models["float32"]
    vec = sl.SteeringVector({1: torch.ones(64)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sl.steer(model, sl.add(vec, 1e39), on_nonfinite="warn"):
            reply = sl.generate(model, "Hello", max_new_tokens=3)
    assert isinstance(reply, str)
    assert [type(w.message) for w in caught].count(SteeringNonFiniteWarning) == 1


def test_finite_steering_is_untouched(models):
    """The check changes nothing when every value is finite: logits equal those of a plain
    PyTorch hook on the Hugging Face model doing the same addition."""
    model = models["float32"]
    ids = torch.tensor([encode(model, "Hello there")])
    direction = torch.randn(64)
    hf = model.original_model
    with edited(hf, "", 1, "resid_pre", lambda x: x + 2.0 * direction), torch.no_grad():
        expected = hf(ids).logits
    with sl.steer(model, sl.add(sl.SteeringVector({1: direction}), 2.0)), torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_bad_on_nonfinite_is_refused(models):
    vec = sl.SteeringVector({1: torch.ones(64)})
    with pytest.raises(sl.SteerlensError, match="on_nonfinite.*Did you mean 'warn'"):
        with sl.steer(models["float32"], sl.add(vec), on_nonfinite="warm"):
            pass
