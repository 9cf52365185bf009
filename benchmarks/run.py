"""steerlens benchmarks: measured ratios on this machine, written to JSON and markdown.

Run with ``make bench`` (or ``python benchmarks/run.py [--quick]``). Each measure times the
steerlens path and its baseline in the same process, alternating repeats, and reports the
median ratio. Absolute times drift on a shared machine; the ratios are the targets.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import HERE, SMOKE, machine
from main_job import report_time
from memory import bench_memory
from models import tiny_model
from oneshot_speed import bench_one_shot_batch, bench_one_shot_step
from steering_speed import (
    bench_extraction,
    bench_shared_opening,
    bench_steered_generate,
    bench_steering_overhead,
    bench_sweep,
)
from table import markdown

BENCHES = {
    "extraction": bench_extraction,
    "steering_overhead": bench_steering_overhead,
    "steered_generate": bench_steered_generate,
    "sweep": bench_sweep,
    "shared_opening": bench_shared_opening,
    "one_shot_step": bench_one_shot_step,
    "one_shot_batch": bench_one_shot_batch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (smoke test)")
    parser.add_argument("--report", action="store_true", help="also time `steerlens report`")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHES), help="run only these measures (no memory)"
    )
    args = parser.parse_args()
    import steerlens as sl

    quick = args.quick or args.tiny
    SMOKE["on"] = args.tiny
    model = tiny_model() if args.tiny else sl.load_model()
    results = {"machine": machine(), "quick": quick, "tiny": args.tiny}
    results["load_average_start"] = os.getloadavg()
    for name, bench in BENCHES.items():
        if not args.only or name in args.only:
            results[name] = bench(model, quick)
    if not args.tiny and not args.only:  # memory loads the default model in subprocesses
        results["memory"] = bench_memory(quick)
    if args.report:
        results["report"] = report_time()
    results["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    (args.out / "bench.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
