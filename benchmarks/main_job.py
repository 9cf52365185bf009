"""The main job's time: the full ``steerlens report`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPORT_COMMAND = "from steerlens.report.cli import main; main()"


def report_time() -> dict:
    """``steerlens report`` (the full main job) in a subprocess, written to a temporary
    folder: total and per-stage seconds as its report.json records them, and the load
    average before and after."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", REPORT_COMMAND, "report", "--out", out], check=True)
        seconds = time.perf_counter() - start
        report = json.loads((Path(out) / "report.json").read_text())
    stages = {
        name: part["stage_seconds"]
        for name, part in report.items()
        if isinstance(part, dict) and "stage_seconds" in part
    }
    return {
        "wall_s": seconds,
        "report_seconds": report["seconds"],
        "stage_seconds": stages,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
