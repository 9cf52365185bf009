"""What ``steerlens report`` runs: the settings of the main job and the context its stages
share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.validate import check_bool, check_int, check_number, check_text
from ..oneshot.study import StudySettings
from ..tradeoff.settings import TradeoffSettings
from ..values.settings import ValuesSettings


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

    @property
    def one_shot(self) -> StudySettings:
        return StudySettings.quick() if self.quick else StudySettings()

    @property
    def tradeoff(self) -> TradeoffSettings:
        return TradeoffSettings.quick() if self.quick else TradeoffSettings()

    @property
    def values(self) -> ValuesSettings:
        return ValuesSettings.quick() if self.quick else ValuesSettings.report()


@dataclass
class ReportContext:
    """What the stages share: the model, the settings, and what earlier stages found."""

    model: Any
    settings: ReportSettings
    found: dict[str, Any] = field(default_factory=dict)
