"""The method page's own-kind example (``docs/snippets/scale_kind.py``), run as it stands on
the default model: its asserts check that ``f = 0`` equals ``sl.ablate`` and that a trace of
``positions="generated"`` lists exactly the generated tokens fed back."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SNIPPET = Path(__file__).parents[2] / "docs" / "snippets" / "scale_kind.py"


def test_the_documented_kind_runs_as_written():
    found = runpy.run_path(str(SNIPPET))
    assert repr(found["half"]) == (
        "Scale(f=0.5) at blocks.{17}.hook_resid_pre, generated positions"
    )
    assert found["reply"].strip()
