"""``OneShotStudy``: what the one-shot refusal study measured, with its figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..measures.transfer import TransferReport
from .result import OneShotResult


@dataclass(frozen=True, eq=False)
class OneShotStudy:
    """Results of ``one_shot_refusal_study`` (see the module docstring).

    Attributes:
        table: one row per promotion vector (training prompt, steps, stop reason, loss,
            norm, held-out refusal rates by addition and by clamp, log-prob change).
        cosines: pairwise cosines of the promotion vectors, plus the mean-difference row.
        summary: headline numbers (best and median refusal rates, baseline, cosines,
            suppression and mixed log-prob changes).
        vectors: the promotion results, in training-prompt order.
        reports: the transfer reports (``"add i"``, ``"clamp i"``, ``"suppression"``,
            ``"mixed"``).
        settings: every setting used.
        seconds: wall time.
    """

    table: pd.DataFrame
    cosines: pd.DataFrame
    summary: Mapping[str, Any]
    vectors: Sequence[OneShotResult]
    reports: Mapping[str, TransferReport]
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serializable."""
        return {
            "summary": dict(self.summary),
            "table": self.table.to_dict(orient="records"),
            "cosines": {str(k): v for k, v in self.cosines.to_dict(orient="index").items()},
            "vectors": [v.to_dict() for v in self.vectors],
            "reports": {k: r.to_dict() for k, r in self.reports.items()},
            "settings": dict(self.settings),
            "seconds": self.seconds,
        }

    def figures(self) -> list[go.Figure]:
        """Loss curves, held-out refusal rate per vector, and the cosine matrix."""
        losses = go.Figure(
            [
                go.Scatter(y=v.losses, mode="lines+markers", name=f"prompt {i}")
                for i, v in enumerate(self.vectors)
            ]
        )
        losses.update_layout(
            title="Promotion loss per step, one vector per training prompt",
            xaxis_title="step",
            yaxis_title="loss (nats, coldness 0.7)",
        )
        rates = go.Figure(
            [
                go.Bar(x=self.table.index.astype(str), y=self.table[col], name=name)
                for col, name in (("refusal_add", "addition"), ("refusal_clamp", "clamp"))
            ]
        )
        rates.add_hline(y=self.summary["baseline_refusal"], line_dash="dot")
        rates.update_layout(
            title=f"Held-out refusal rate ({self.summary['n_held_out']} harmless requests)",
            xaxis_title="training prompt",
            yaxis_title="fraction refused",
            yaxis_range=[0, 1.05],
        )
        cos = go.Figure(
            go.Heatmap(
                z=self.cosines.to_numpy(),
                x=list(map(str, self.cosines.columns)),
                y=list(map(str, self.cosines.index)),
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
            )
        )
        cos.update_layout(title="Cosine similarity of the one-shot vectors")
        return [losses, rates, cos]
