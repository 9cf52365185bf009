"""One self-contained HTML page (plotly.js inlined, no network) from report sections."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
.figure { margin: 1em 0; min-height: 420px; }
"""


@dataclass
class Section:
    """A titled part of the report: paragraphs, tables (by caption; ``""``: none) and
    figures, in that order."""

    title: str
    paragraphs: Sequence[str] = ()
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    figures: Sequence[go.Figure] = ()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def render(title: str, sections: Sequence[Section]) -> str:
    """The page as a string; every figure is a ``div.figure`` drawn by inlined plotly.js."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    n_figure = 0
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        for caption, frame in section.tables.items():
            body += [f"<h3>{html.escape(caption)}</h3>"] if caption else []
            body.append(_table(frame))
        for figure in section.figures:
            n_figure += 1
            div = figure.to_html(
                full_html=False, include_plotlyjs=False, div_id=f"figure-{n_figure}"
            )
            body.append(f'<div class="figure">{div}</div>')
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def write(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the page to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(title, sections), encoding="utf-8")
    return path
