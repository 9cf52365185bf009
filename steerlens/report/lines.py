"""The research lines the report runs, in one list (``LINES``): a fourth line is one more
``Line`` here. The report reads each line's result only through the ``Study`` contract
(``core.study``): its numbers from ``to_dict()``, its page section from ``describe()``,
``tables()`` and ``figures()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.study import Study, check_study
from ..oneshot.settings import StudySettings
from ..oneshot.study import one_shot_refusal_study
from ..tradeoff.behaviour import refusal_behaviour
from ..tradeoff.pipeline import tradeoff_report
from ..tradeoff.settings import TradeoffSettings
from ..values.pipeline import value_entanglement
from ..values.settings import ValuesSettings
from .html import Section
from .kl_budget import kl_budget_stage
from .settings import ReportContext

#: what the report adds after a line: ``(context, study, numbers) -> (more numbers, sections)``
Extra = Callable[[ReportContext, Study, dict[str, Any]], tuple[dict[str, Any], list[Section]]]


def study_section(title: str, study: Study) -> Section:
    """A study's page section: its description, tables and figures."""
    paragraphs = [p for p in study.describe().split("\n\n") if p]
    return Section(title, paragraphs, study.tables(), list(study.figures().values()))


@dataclass(frozen=True)
class Line:
    """A research line on the report: its key in ``report.json``, its section title, how it
    runs on the report's model (``run``), and what the report adds after it (``extra``)."""

    name: str
    title: str
    run: Callable[[ReportContext], Study]
    extra: Extra | None = None

    def stage(self, context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
        """Run the line; its numbers (``to_dict()``) and page sections. The result is kept
        in ``context.studies[name]`` for later stages."""
        study = check_study(self.name, self.run(context))
        context.studies[self.name] = study
        numbers = study.to_dict()
        sections = [study_section(self.title, study)]
        if self.extra is not None:
            more, extra_sections = self.extra(context, study, numbers)
            numbers, sections = {**numbers, **more}, sections + extra_sections
        return numbers, sections


def _one_shot(context: ReportContext) -> Study:
    quick = context.settings.quick
    return one_shot_refusal_study(context.model, StudySettings.quick() if quick else None)


def _tradeoff(context: ReportContext) -> Study:
    """The refusal vector at the report's layer: refusal on the held-out requests,
    helpfulness on the shipped ``qa`` questions."""
    findings, settings = context.findings(), context.settings
    vector = findings.vector.select([settings.layer])
    behaviour = refusal_behaviour(context.model, findings.held_out)
    config = TradeoffSettings.quick() if settings.quick else TradeoffSettings()
    return tradeoff_report(context.model, vector, behaviour, settings=config)


def _values(context: ReportContext) -> Study:
    config = ValuesSettings.quick() if context.settings.quick else ValuesSettings.report()
    return value_entanglement(context.model, settings=config)


LINES: list[Line] = [
    Line("one_shot", "One-shot optimized refusal vectors", _one_shot),
    Line("tradeoff", "The alignment-helpfulness tradeoff", _tradeoff, extra=kl_budget_stage),
    Line("values", "Value entanglement", _values),
]
