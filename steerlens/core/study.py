"""``Study``: the contract every research line's result meets, so that the report, a notebook
and a fourth line rely on the same members.

- ``summary``: the headline numbers, ``dict[str, float]`` (counts too; texts go elsewhere);
- ``seconds``: the run's wall time, a float (per-stage times are in ``to_dict()``, under
  ``"seconds_by_stage"``);
- ``figures()``: ``dict[str, go.Figure]``, by name;
- ``tables()``: ``dict[str, pd.DataFrame]``, the tables a reader looks at first;
- ``describe()``: what was run and found, in sentences (paragraphs split by blank lines);
- ``to_dict()``: every number, JSON-ready (``json_safe``): what the report writes.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .errors import SteerlensError
from .validate import shown

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


@runtime_checkable
class Study(Protocol):
    """What a research line returns (module docstring); ``check_study`` checks one."""

    summary: dict[str, float]
    seconds: float

    def figures(self) -> dict[str, go.Figure]: ...

    def tables(self) -> dict[str, pd.DataFrame]: ...

    def describe(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_study(name: str, study: Any) -> Any:
    """``study`` if it meets the ``Study`` contract's cheap parts (members present,
    ``summary`` a dict of str -> float, ``seconds`` a float), else a ``SteerlensError``."""
    if not isinstance(study, Study):
        members = ("summary", "seconds", "figures", "tables", "describe", "to_dict")
        missing = [m for m in members if not hasattr(study, m)]
        raise SteerlensError(f"{name}: a Study needs {missing}, got {shown(study)}")
    summary = study.summary
    if not isinstance(summary, dict):
        raise SteerlensError(f"{name}.summary: expected a dict of floats, got {shown(summary)}")
    bad = {k: v for k, v in summary.items() if not isinstance(k, str) or not isinstance(v, float)}
    if bad:
        raise SteerlensError(f"{name}.summary: expected str -> float items, got {shown(bad)}")
    if not isinstance(study.seconds, float):
        raise SteerlensError(f"{name}.seconds: expected a float, got {shown(study.seconds)}")
    return study


def json_safe(value: Any) -> Any:
    """Plain Python types for ``json.dumps``; NaN and inf become None, keys strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Stopwatch:
    """Wall time of a run and of its stages: ``lap(name)`` ends the stage ``name``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """Record the time since the last lap (or the start), to 0.1 s (never below 0, which
        the rounding of earlier laps could give)."""
        self.laps[name] = max(0.0, round(self.elapsed() - sum(self.laps.values()), 1))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def seconds(self) -> float:
        """The time since the start, to 0.1 s."""
        return round(self.elapsed(), 1)
