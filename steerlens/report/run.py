"""``steerlens report``: every stage of the pipeline on one loaded model, written as one page.

Writes ``report.html`` (self-contained, plotly.js inlined) and ``report.json`` (every
number, per stage, with each stage's run time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..core.hookpoints import model_name
from ..core.loading import load_model
from ..core.validate import check_instance
from .html import Section, write
from .lines import LINES
from .refusal import refusal_stage
from .settings import ReportContext, ReportSettings

Stage = Callable[[ReportContext], tuple[dict[str, Any], list[Section]]]
#: the refusal stage (its vector feeds the tradeoff line), then every research line
STAGES: list[tuple[str, Stage]] = [
    ("refusal", refusal_stage),
    *((line.name, line.stage) for line in LINES),
]


def run_report(settings: ReportSettings) -> tuple[dict[str, Any], list[Section]]:
    """Run every stage; returns the JSON-ready result and the page's sections."""
    check_instance("settings", settings, ReportSettings, "a ReportSettings")
    started = time.perf_counter()
    model = load_model(settings.model)
    context = ReportContext(model, settings)
    result: dict[str, Any] = {"model": model_name(model), "quick": settings.quick}
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
            f"{'quick' if settings.quick else 'full'} run of {result['seconds']} s ({timing}).",
        ],
    )
    return result, [setup, *sections]


def write_report(settings: ReportSettings) -> tuple[dict[str, Any], Path]:
    """Run the report and write ``report.json`` and ``report.html`` under ``settings.out``."""
    check_instance("settings", settings, ReportSettings, "a ReportSettings")
    result, sections = run_report(settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    (settings.out / "report.json").write_text(json.dumps(result, indent=2))
    page = write(settings.out / "report.html", "steerlens report", sections)
    return result, page
