"""The benchmark script runs end to end (``--tiny``: a random model, every comparison once).

The real benchmark is ``make bench``; its numbers are not checked here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_script_runs_on_a_tiny_model(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--out", str(tmp_path)],
        check=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["tiny"] is True and "memory" not in results and "report" not in results
    assert results["extraction"]["vs_bare_forward"]["ratio"] > 0
    assert results["steering_overhead"]["one_layer"]["ratio"] > 0
    assert results["steered_generate"]["vs_hf_generate_hook"]["ratio"] > 0
    assert 0 <= results["steered_generate"]["same_first_8_words"] <= 1
    assert results["sweep"]["sweep_forwards"] > 0 and results["sweep"]["target_forwards"] > 1
    # a step's time is t(N steps) - t(0 steps): at the tiny size its sign is timing noise
    assert math.isfinite(results["one_shot_step"]["cached_vs_full"]["ratio"])
    assert results["one_shot_batch"]["vs_sequential"]["ratio"] > 0
    assert results["one_shot_batch"]["vs_sequential_full_forward"]["ratio"] > 0
    assert results["shared_opening"]["vs_suffix_replay"]["ratio"] > 0
    table = (tmp_path / "bench.md").read_text()
    assert table.startswith("| measure") and "shared_opening: vs_suffix_replay" in table
