"""``OneShotStudy``: what the one-shot refusal study measured, with its figures (a ``Study``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..core.study import json_safe
from ..measures.transfer import TransferReport
from .result import OneShotResult


@dataclass(frozen=True, eq=False, kw_only=True)
class OneShotStudy:
    """Results of ``one_shot_refusal_study`` (see the module docstring); a ``Study``.

    Attributes:
        table: one row per promotion vector (training prompt, steps, stop reason, loss,
            norm, held-out refusal rates by addition and by clamp, log-prob change).
        cosines: pairwise cosines of the promotion vectors, plus the mean-difference row.
        summary: headline numbers (best and median refusal rates, baseline, cosines,
            suppression and mixed log-prob changes), all floats.
        choices: the texts the study picked (``suppression_prompt``,
            ``mixed_suppressed_opening``).
        vectors: the promotion results, in training-prompt order.
        reports: the transfer reports (``"add i"``, ``"clamp i"``, ``"suppression"``,
            ``"mixed"``).
        settings: every setting used, with the training and held-out prompts.
        seconds: wall time; ``seconds_by_stage``: per stage.
    """

    table: pd.DataFrame
    cosines: pd.DataFrame
    summary: dict[str, float]
    choices: dict[str, str]
    vectors: Sequence[OneShotResult]
    reports: Mapping[str, TransferReport]
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_by_stage: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        return json_safe(
            {
                "summary": dict(self.summary),
                "choices": dict(self.choices),
                "table": self.table.to_dict(orient="records"),
                "cosines": {str(k): v for k, v in self.cosines.to_dict(orient="index").items()},
                "vectors": [v.to_dict() for v in self.vectors],
                "reports": {k: r.to_dict() for k, r in self.reports.items()},
                "settings": dict(self.settings),
                "seconds": self.seconds,
                "seconds_by_stage": dict(self.seconds_by_stage),
            }
        )

    def describe(self) -> str:
        """The headline numbers in a sentence."""
        s = self.summary
        return (
            f"One promotion vector per training prompt at layer {s['layer']:g}; "
            f"held-out refusal rate by addition: best {s['best_refusal_add']:.2f}, median "
            f"{s['median_refusal_add']:.2f}; by clamp: best {s['best_refusal_clamp']:.2f}, "
            f"median {s['median_refusal_clamp']:.2f} (unsteered {s['baseline_refusal']:.2f}); "
            f"median pairwise cosine {s['median_pairwise_cosine']:.3f}; run took "
            f"{self.seconds:.0f} s."
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """``vectors`` (one row per promotion vector), ``cosines``, and
        ``suppression and mixed`` (their numbers and the texts they used)."""
        extra = {k: v for k, v in self.summary.items() if k.startswith(("suppression", "mixed"))}
        frame = pd.DataFrame({"value": pd.Series({**self.choices, **extra}, dtype=object)})
        return {
            "vectors": self.table.drop(columns="prompt"),
            "cosines": self.cosines,
            "suppression and mixed": frame,
        }

    def figures(self) -> dict[str, go.Figure]:
        """``losses`` per step, held-out ``refusal_rates`` per vector, and ``cosines``."""
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
            title=f"Held-out refusal rate ({self.summary['n_held_out']:g} harmless requests)",
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
        return {"losses": losses, "refusal_rates": rates, "cosines": cos}
