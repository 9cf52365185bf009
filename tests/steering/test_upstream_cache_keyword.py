"""The upstream KV-cache bug steerlens works around, watched through the reproduction the
docs give (``docs/snippets/kv_cache_keyword.py``, run as it stands): it must be broken
exactly in the documented version range, fixed by the shim, and left alone outside
``sl.steer``. The reference is the uncached run (a full forward pass per new token)."""

from __future__ import annotations

import runpy
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from packaging.version import Version

import steerlens as sl
from steerlens.steering.cache_keyword import cache_keyword_shim

REPRO = Path(__file__).parents[2] / "docs" / "snippets" / "kv_cache_keyword.py"
#: first transformers release whose decoder layers pass the KV cache as ``cache=``
BROKEN_FROM = Version("5.24")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def repro():
    """The reproduction's globals: ``model``, ``new_token_logits`` and its ``gap``."""
    return runpy.run_path(str(REPRO))


def logit_gap(repro) -> torch.Tensor:
    """``[2]``: the largest |cached - uncached| logit for the first and second new token."""
    run = repro["new_token_logits"]
    return (run(True) - run(False)).abs().amax(dim=(1, 2))


def versions() -> str:
    return f"transformers {version('transformers')}, transformer-lens {version('transformer-lens')}"


def test_bare_model_generate_is_broken_exactly_in_the_documented_range(repro):
    gap = repro["gap"]
    assert gap[0] < TOLERANCE, f"the prompt pass itself differs ({gap[0]:.3g}): another bug"
    broken = bool(gap[1] > TOLERANCE)
    if Version(version("transformers")) >= BROKEN_FROM:
        assert broken, (
            f"bare model.generate now agrees with its uncached run under {versions()}: fixed "
            "upstream. Update the range in docs/upstream.md and BROKEN_FROM here, and once no "
            "supported version needs it, drop steering/cache_keyword.py from steer and generate."
        )
    else:
        assert not broken, (
            f"bare model.generate disagrees with its uncached run (second token, {gap[1]:.3g}) "
            f"under {versions()}, outside the documented range: widen docs/upstream.md and "
            "BROKEN_FROM, and check that cache_keyword_shim still fixes it."
        )


def test_the_shim_makes_cached_generate_match_the_uncached_run(repro):
    with cache_keyword_shim(repro["model"]):
        gap = logit_gap(repro)
    assert gap.amax() < TOLERANCE, f"{versions()}: gap {gap.tolist()} under the shim"


def pytorch_hooks(model) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_steer_shims_inside_its_block_and_patches_nothing_outside(repro):
    model = repro["model"]
    vec = sl.SteeringVector({0: torch.randn(64, generator=torch.Generator().manual_seed(0))})
    before = pytorch_hooks(model)
    with sl.steer(model, sl.add(vec, coeff=0.0)):  # no edit: the bare model's logits
        inside = logit_gap(repro)
    assert inside.amax() < TOLERANCE, f"{versions()}: gap {inside.tolist()} inside sl.steer"
    with pytest.raises(RuntimeError), sl.steer(model, sl.add(vec)):
        raise RuntimeError("user code fails inside the block")
    assert pytorch_hooks(model) == before
    assert torch.equal(logit_gap(repro), repro["gap"]), "the bare model changed after steer"
