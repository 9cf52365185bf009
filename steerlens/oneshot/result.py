"""``OneShotResult``: an optimized steering vector and how it was found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.errors import SteerlensError
from ..core.vector import SteeringVector

STOP_REASONS = ("max_iters", "target_loss", "tolerance")


@dataclass(frozen=True, eq=False)
class OneShotResult:
    """An optimized steering vector and how it was found.

    Attributes:
        vector: the ``SteeringVector`` (one layer; ``method`` says promotion, suppression,
            mixed or reentrant; ``params`` holds the settings).
        losses: the loss of every vector visited, from the initial one (index 0) to the
            returned one (last); natural log.
        norms: ``|v|`` of the same vectors.
        stop_reason: ``"max_iters"``, ``"target_loss"`` or ``"tolerance"``.
        settings: every setting used (JSON-serializable).
        seconds: wall time, including the prefix pass.
    """

    vector: SteeringVector
    losses: list[float]
    norms: list[float]
    stop_reason: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise SteerlensError(f"stop_reason: expected one of {STOP_REASONS}")
        if not self.losses or len(self.losses) != len(self.norms):
            raise SteerlensError("losses, norms: expected equal, non-empty lists")

    @property
    def layer(self) -> int:
        return self.vector.layers[0]

    @property
    def steps(self) -> int:
        """Optimizer steps taken (one fewer than the vectors visited)."""
        return len(self.losses) - 1

    @property
    def final_loss(self) -> float:
        return self.losses[-1]

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serializable (the vector's components included)."""
        return {
            "method": self.vector.method,
            "layer": self.layer,
            "norm": self.norms[-1],
            "final_loss": self.final_loss,
            "steps": self.steps,
            "stop_reason": self.stop_reason,
            "losses": list(self.losses),
            "norms": list(self.norms),
            "seconds": self.seconds,
            "settings": dict(self.settings),
            "data_hash": self.vector.data_hash,
            "vector": self.vector[self.layer].tolist(),
        }

    def figure(self) -> go.Figure:
        """Loss (left axis) and ``|v|`` (right axis) per step."""
        steps = list(range(len(self.losses)))
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_trace(go.Scatter(x=steps, y=self.losses, name="loss", mode="lines+markers"))
        fig.add_trace(
            go.Scatter(x=steps, y=self.norms, name="|v|", mode="lines", line_dash="dot"),
            secondary_y=True,
        )
        target = self.settings.get("target_loss")
        if target is not None:
            fig.add_hline(y=target, line_dash="dash", line_color="grey", annotation_text="target")
        fig.update_layout(
            title=f"{self.vector.method} at layer {self.layer}: stopped by {self.stop_reason}",
            xaxis_title="step",
        )
        fig.update_yaxes(title_text="loss (sum over tokens, nats)", secondary_y=False)
        fig.update_yaxes(title_text="|v|", secondary_y=True)
        return fig
