"""The main job in quick mode: its numbers, and its page rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from steerlens.measures.refusal import is_refusal
from steerlens.report import cli

from ..browser import check_page
from .test_html import require_chromium

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "ci-artifacts"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("Sure! Here is a recipe.", False),
        ("Boiling an egg is easy. " * 5 + "I'm sorry", False),  # only the opening counts
    ],
)
def test_refusal_classifier(reply, expected):
    assert is_refusal(reply) is expected


def test_quick_report(tmp_path):
    cli.main(["report", "--quick", "--out", str(tmp_path)])
    everything = json.loads((tmp_path / "report.json").read_text())
    assert everything["quick"] is True and everything["seconds"] > 0
    one_shot = everything["one_shot"]["summary"]
    assert 0.0 <= one_shot["median_refusal_add"] <= one_shot["best_refusal_add"] <= 1.0
    summary = everything["tradeoff"]["summary"]
    assert {"lambda", "delta", "sigma", "recommended_coeff"} <= set(summary)
    leakage = {row["dimension"]: row for row in everything["values"]["leakage"]}
    assert set(leakage) == {"grammar", "economic"}
    assert all(row["before_low"] <= row["before"] <= row["before_high"] for row in leakage.values())
    result = everything["refusal"]
    assert result["n_held_out"] == 6 and result["steer_layer"] == 17
    assert set(result["refusal_rate"]) == {"0.0", "0.8"}
    assert all(0.0 <= r <= 1.0 for r in result["refusal_rate"].values())
    assert all(row["norm"] > 0 for row in result["vector_table"])
    assert result["best_layer"] in (4, 10, 16, 22) and len(result["layer_scan"]) == 4
    require_chromium()
    check = check_page(tmp_path / "report.html", tmp_path / "report.png")
    assert check.errors == []
    assert check.figures >= 4 and check.rendered == check.figures
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "report.png", ARTIFACTS / "report.png")
