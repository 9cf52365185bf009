"""The ``steerlens`` command: ``steerlens report [--quick] [--out DIR]`` runs the main job;
``steerlens serve [--model PATH] [--vector NAME=FILE ...] [vLLM options]`` serves a steered
model (``steerlens.vllm.serve``, imported only then: it needs vLLM)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .run import write_report
from .settings import ReportSettings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from ..vllm.serve import main as serve

        serve(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="steerlens", description="Steer and read language models through hook points."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="vLLM's OpenAI-compatible server, steered per request")
    report = commands.add_parser("report", help="run the pipeline and write a report")
    report.add_argument("--quick", action="store_true", help="a small, fast run (for tests)")
    report.add_argument("--out", type=Path, default=Path("report"), help="output directory")
    report.add_argument("--model", default=None, help="model name (default: offline SmolLM2)")
    report.add_argument("--layer", type=int, default=17, help="layer to steer at")
    report.add_argument("--coeff", type=float, default=0.8, help="steering coefficient")
    report.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args(argv)
    settings = ReportSettings(
        quick=args.quick,
        out=args.out,
        model=args.model,
        layer=args.layer,
        coeff=args.coeff,
        max_new_tokens=args.max_new_tokens,
    )
    result, page = write_report(settings)
    print(f"refusal rate by coefficient: {result['refusal']['refusal_rate']}")
    print(f"wrote {page} and {settings.out / 'report.json'} in {result['seconds']} s")
