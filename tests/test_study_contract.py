"""The three research lines return results with one contract (``steerlens.core.study``):
what the report and the notebooks rely on, checked on one result of each line."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import plotly.graph_objects as go
import pytest

from steerlens import SteerlensError
from steerlens.core.study import Study, check_study, json_safe
from steerlens.report.html import render
from steerlens.report.lines import LINES, study_section

RESULTS = [
    "tradeoff_result",
    "values_result",
    pytest.param("one_shot_study", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("fixture", RESULTS)
def test_every_line_meets_the_study_contract(fixture, request):
    study = request.getfixturevalue(fixture)
    assert isinstance(study, Study) and check_study(fixture, study) is study
    summary = study.summary
    assert summary and all(isinstance(v, float) for v in summary.values())
    assert isinstance(study.seconds, float) and study.seconds > 0
    figures = study.figures()
    assert figures and all(isinstance(f, go.Figure) and f.data for f in figures.values())
    tables = study.tables()
    assert tables and all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    paragraphs = study.describe().split("\n\n")
    assert all(p.strip() for p in paragraphs)
    data = json.loads(json.dumps(study.to_dict(), allow_nan=False))
    assert data["summary"] == json_safe(summary)
    assert data["seconds"] == pytest.approx(study.seconds)
    stages = data["seconds_by_stage"]
    assert stages and all(t >= 0 for t in stages.values())
    assert sum(stages.values()) == pytest.approx(study.seconds, abs=0.1 * len(stages) + 0.1)
    page = render("check", [study_section("check", study)])
    assert page.count('class="figure"') == len(figures) and page.count("<table") == len(tables)


def test_the_report_registers_each_line_once():
    names = [line.name for line in LINES]
    assert names == ["one_shot", "tradeoff", "values"] and len(set(names)) == len(names)


class _Almost:
    """A result that breaks the contract in one way at a time."""

    def __init__(self, **changes):
        self.summary, self.seconds = {"x": 1.0}, 1.0
        self.__dict__.update(changes)

    def figures(self):
        return {}

    def tables(self):
        return {}

    def describe(self):
        return ""

    def to_dict(self):
        return {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"summary": {"x": 1}}, "summary: expected str -> float"),
        ({"summary": pd.Series({"x": 1.0})}, "summary: expected a dict"),
        ({"seconds": {"total": 1.0}}, "seconds: expected a float"),
    ],
)
def test_a_result_off_the_contract_is_named(changes, message):
    with pytest.raises(SteerlensError, match=message):
        check_study("line", _Almost(**changes))
    with pytest.raises(SteerlensError, match=r"needs \['figures', 'tables'"):
        check_study("line", SimpleNamespace(summary={}, seconds=1.0, describe=str, to_dict=dict))
