"""``steerlens report``: the main job on the offline default model.

Runs each stage of the pipeline on one loaded model and writes ``report.html`` (one
self-contained page, plotly.js inlined) and ``report.json`` (every number, per stage, with
each stage's run time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import steerlens as sl

from ._html import Section, write
from ._report_refusal import refusal_stage
from ._report_tradeoff import tradeoff_stage

Stage = Callable[[dict[str, Any]], tuple[dict[str, Any], list[Section]]]


def one_shot_stage(context: dict[str, Any]) -> tuple[dict[str, Any], list[Section]]:
    """One-shot promotion vectors from single prompts, their transfer and cosines."""
    study = sl.one_shot_refusal_study(context["model"], quick=context["args"].quick)
    return study.to_dict(), study.sections()


def values_stage(context: dict[str, Any]) -> tuple[dict[str, Any], list[Section]]:
    """Value entanglement before and after ablating the morality direction."""
    from ._values import QUICK_SETTINGS, REPORT_SETTINGS

    settings = QUICK_SETTINGS if context["args"].quick else REPORT_SETTINGS
    study = sl.value_entanglement(context["model"], **settings)
    return study.to_dict(), study.sections()


STAGES: list[tuple[str, Stage]] = [
    ("refusal", refusal_stage),
    ("one_shot", one_shot_stage),
    ("tradeoff", tradeoff_stage),
    ("values", values_stage),
]


def run_report(args: argparse.Namespace) -> tuple[dict[str, Any], list[Section]]:
    """Run every stage; returns the JSON-ready result and the page's sections."""
    started = time.perf_counter()
    model = sl.load_model(args.model)
    context: dict[str, Any] = {"args": args, "model": model}
    result: dict[str, Any] = {"model": sl._hooks.model_name(model), "quick": args.quick}
    sections: list[Section] = []
    for name, stage in tqdm(STAGES, desc="report", unit="stage"):
        stage_started = time.perf_counter()
        numbers, stage_sections = stage(context)
        numbers["stage_seconds"] = round(time.perf_counter() - stage_started, 1)
        result[name] = numbers
        sections += stage_sections
    result["seconds"] = round(time.perf_counter() - started, 1)
    timing = ", ".join(f"{name} {result[name]['stage_seconds']} s" for name, _ in STAGES)
    setup = Section(
        "Setup",
        [
            f"Model {result['model']} on {model.cfg.device}; "
            f"{'quick' if args.quick else 'full'} run of {result['seconds']} s ({timing}).",
        ],
    )
    return result, [setup, *sections]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="steerlens", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="run the pipeline and write a report")
    report.add_argument("--quick", action="store_true", help="a small, fast run (for tests)")
    report.add_argument("--out", type=Path, default=Path("report"), help="output directory")
    report.add_argument("--model", default=None, help="model name (default: offline SmolLM2)")
    report.add_argument("--layer", type=int, default=17, help="layer to steer at")
    report.add_argument("--coeff", type=float, default=0.8, help="steering coefficient")
    report.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args(argv)
    result, sections = run_report(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(result, indent=2))
    page = write(args.out / "report.html", "steerlens report", sections)
    print(f"refusal rate by coefficient: {result['refusal']['refusal_rate']}")
    print(f"wrote {page} and {args.out / 'report.json'} in {result['seconds']} s")
