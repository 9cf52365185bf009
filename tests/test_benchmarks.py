"""CI checks that the benchmark script runs in its quick mode (targets live in its output)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_quick_mode_runs(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        check=True,
        timeout=900,
    )
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["extraction"]["vs_bare_forward"]["ratio"] > 0
    assert results["steering_overhead"]["one_layer"]["ratio"] > 0
    assert "ours_mib" in results["memory"]["64_texts"]
    assert results["sweep"]["sweep_forwards"] > 0 and results["sweep"]["target_forwards"] > 1
    assert results["one_shot_step"]["cached_vs_full"]["ratio"] > 0
    assert (tmp_path / "bench.md").read_text().startswith("| measure")
