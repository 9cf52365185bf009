"""Steering traces: where ``sl.steer(..., trace=True)`` edited, token by token.

Each steering hook, after its edit, records the rows and absolute positions it changed and
``|Δx|`` there; a pre-hook on the embedding numbers the forward calls (one per generation
step). Recording copies a few small tensors to the CPU per hook, so traces are for looking,
not for long runs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..core.errors import SteerlensError

COLUMNS = ("call", "intervention", "label", "layer", "row", "position", "delta")


class SteeringTrace:
    """What the interventions of one ``sl.steer`` block edited.

    Attributes:
        labels: the ``repr`` of each intervention, in the order given to ``sl.steer``.
        calls: forward calls seen so far.
    """

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.calls = 0
        self._events: list[tuple[int, int, int, Tensor]] = []

    def count_call(self, *_: Any) -> None:
        """A forward pre-hook on the embedding: one more forward call."""
        self.calls += 1

    def record(
        self,
        index: int,
        layer: int,
        selected: Bool[Tensor, "batch pos"],
        absolute: Int[Tensor, "batch pos"],
        delta: Float[Tensor, "batch pos"],
    ) -> None:
        """Intervention ``index`` edited the ``selected`` tokens at ``layer``, each by
        ``|Δx|`` = ``delta``."""
        rows, cols = selected.nonzero(as_tuple=True)
        found = torch.stack(
            [rows.float(), absolute[rows, cols].float(), delta[rows, cols].float()], dim=-1
        )
        self._events.append((max(self.calls - 1, 0), index, layer, found.detach().cpu()))

    @property
    def table(self) -> pd.DataFrame:
        """One row per edited token: ``call`` (forward call, from 0), ``intervention``
        (index), ``label``, ``layer``, ``row`` (batch row), ``position`` (absolute, from the
        row's first real token) and ``delta`` (``|Δx|``, L2 norm of the change)."""
        frames = []
        for call, index, layer, found in self._events:
            frames.append(
                pd.DataFrame(
                    {
                        "call": call,
                        "intervention": index,
                        "label": self.labels[index],
                        "layer": layer,
                        "row": found[:, 0].long().numpy(),
                        "position": found[:, 1].long().numpy(),
                        "delta": found[:, 2].numpy(),
                    }
                )
            )
        if not frames:
            return pd.DataFrame({name: [] for name in COLUMNS})
        return pd.concat(frames, ignore_index=True)

    def figure(self, intervention: int | None = None) -> go.Figure:
        """Position x layer heatmap of the mean ``|Δx|`` over rows and calls, for one
        intervention (its index) or all of them."""
        table = self.table
        if intervention is not None:
            if intervention not in range(len(self.labels)):
                raise SteerlensError(
                    f"intervention: expected an index in 0..{len(self.labels) - 1}, "
                    f"got {intervention!r}"
                )
            table = table[table.intervention == intervention]
        grid = table.pivot_table(index="layer", columns="position", values="delta")
        fig = go.Figure(
            go.Heatmap(
                z=grid.to_numpy(),
                x=list(grid.columns),
                y=list(grid.index),
                colorscale="Viridis",
                colorbar={"title": "mean |Δx|"},
            )
        )
        chosen = self.labels if intervention is None else [self.labels[intervention]]
        fig.update_layout(
            title="Steering trace: " + "; ".join(chosen),
            xaxis_title="absolute position",
            yaxis_title="layer",
        )
        return fig
