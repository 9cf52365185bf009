"""The self-contained HTML page: plotly inlined, figures drawn in a real browser."""

from __future__ import annotations

import os

import pandas as pd
import plotly.graph_objects as go
import pytest

from steerlens.report.html import Section, render, write

from ..browser import check_page, chromium


def sections(n_figures=2):
    figures = [go.Figure(go.Scatter(x=[0, 1, 2], y=[i, 2, 1])) for i in range(n_figures)]
    table = pd.DataFrame({"coeff": [0.5, 1.0], "rate": [0.1, 0.6]})
    return [Section("Results", ["A paragraph with <markup> to escape."], {"rates": table}, figures)]


def test_page_is_self_contained():
    page = render("steerlens <report>", sections())
    assert "&lt;markup&gt;" in page and "&lt;report&gt;" in page
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1]  # nothing loaded from the net
    assert page.count('<div class="figure">') == 2


def require_chromium():
    if chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("chromium is not installed")


def test_figures_render_in_chromium(tmp_path):
    require_chromium()
    page = write(tmp_path / "r.html", "check", sections(3))
    result = check_page(page, tmp_path / "shot.png")
    assert result.errors == []
    assert result.figures == 3 and result.rendered == 3
    assert (tmp_path / "shot.png").stat().st_size > 10_000


def test_a_broken_figure_is_detected(tmp_path):
    """The check is not vacuous: a script error and an undrawn figure are both reported."""
    require_chromium()
    page = tmp_path / "broken.html"
    good = render("check", sections(1))
    page.write_text(
        good.replace(
            "</body>",
            '<div class="figure"><div id="x"></div></div><script>undefinedCall();</script></body>',
        )
    )
    result = check_page(page, tmp_path / "shot.png")
    assert result.figures == 2 and result.rendered == 1
    assert result.errors and "undefinedCall" in result.errors[0]
