"""The main job's report: stages that run the studies, page sections that render their
results, one self-contained HTML page, and the ``steerlens`` command."""

from .run import run_report as run_report
from .run import write_report as write_report
from .settings import ReportSettings as ReportSettings

__all__ = ["ReportSettings", "run_report", "write_report"]
