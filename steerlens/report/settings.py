"""What ``steerlens report`` runs: the settings of the main job and the context its stages
share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import SteerlensError
from ..core.study import Study
from ..core.validate import check_bool, check_int, check_number, check_text
from ..core.vector import SteeringVector


@dataclass(frozen=True)
class ReportSettings:
    """The main job's settings (the command line sets them; ``quick()`` is the test run).

    Attributes:
        quick: the small run.
        out: output directory for ``report.html`` and ``report.json``.
        model: a model for ``sl.load_model`` (None: the offline default).
        layer: the layer the refusal direction is steered at.
        coeff: the steering coefficient of the refusal stage's generations.
        max_new_tokens: tokens per steered generation in the refusal stage.
        kl_budget: the tradeoff stage's KL budget (nats per token) for ``sl.calibrate``.
        kl_texts: how many shipped neutral texts ``sl.calibrate`` measures KL on.
    """

    quick: bool = False
    out: Path = Path("report")
    model: str | None = None
    layer: int = 17
    coeff: float = 0.8
    max_new_tokens: int = 24
    kl_budget: float = 1.0
    kl_texts: int = 4

    def __post_init__(self) -> None:
        check_bool("quick", self.quick)
        object.__setattr__(self, "out", Path(self.out))
        if self.model is not None:
            check_text("model", self.model)
        check_int("layer", self.layer, low=4)
        check_number("coeff", self.coeff)
        check_int("max_new_tokens", self.max_new_tokens, low=1)
        check_number("kl_budget", self.kl_budget, low=0.0, open_low=True)
        check_int("kl_texts", self.kl_texts, low=1, high=16)


@dataclass(frozen=True, eq=False)
class RefusalFindings:
    """What the refusal stage hands on: the mean-difference refusal vector (its layers
    around the report's) and the held-out requests (rows of the ``refusal`` set)."""

    vector: SteeringVector
    held_out: pd.DataFrame


@dataclass
class ReportContext:
    """What the stages share: the model, the settings, the refusal stage's findings and the
    research lines' results (by line name)."""

    model: Any
    settings: ReportSettings
    refusal: RefusalFindings | None = None
    studies: dict[str, Study] = field(default_factory=dict)

    def findings(self) -> RefusalFindings:
        """The refusal stage's findings (it runs first)."""
        if self.refusal is None:
            raise SteerlensError("report: the refusal stage must run before this stage")
        return self.refusal
