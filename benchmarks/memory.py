"""Peak memory of extraction: ours against keeping ``run_with_cache`` (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

from common import HERE

MEMORY_SCRIPT = """
import os, sys, torch
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {bench!r})
import steerlens as sl
from common import texts
model = sl.load_model()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) after loading
base = status("VmRSS")
items = texts({n}, 24, 3)
layers = [5, 10, 15, 20]
if {mode!r} == "ours":
    sl.collect_activations(model, items, layers, batch_size=32, progress=False)
else:
    names = [f"blocks.{{l}}.hook_resid_pre" for l in layers]
    kept = []
    for i in range(0, len(items), 32):
        _, cache = model.run_with_cache(items[i:i + 32], names_filter=names)
        kept.append({{k: v for k, v in cache.items()}})
print(status("VmHWM") - base)
"""


def bench_memory(quick: bool) -> dict:
    """Extra peak RSS (MiB) of extracting texts at 4 layers: ours vs keeping run_with_cache."""
    out = {}
    for n in [64] if quick else [128, 512]:
        row = {}
        for mode in ("ours", "run_with_cache"):
            script = MEMORY_SCRIPT.format(bench=str(HERE), n=n, mode=mode)
            done = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            )
            row[mode + "_mib"] = float(done.stdout.strip().splitlines()[-1])
        out[f"{n}_texts"] = row
    return out
