"""The engine side: a vLLM worker extension that steers and reads per request.

``sl.vllm.load`` starts vLLM with ``worker_extension_cls`` naming ``SteerlensWorker``
(vLLM's public way to add methods to its workers for ``collective_rpc``), then calls
``steerlens_install`` once: hooks go on this worker's decoder layers (``residual``), and a
pre-hook on the model builds each step's plan (``step``): for every (layer, site), the
interventions and reads of the step's requests and the flat token rows they touch. A
request's interventions run in the order given, reads at their place in that order, as
under ``sl.steer``. ``steerlens_take`` hands the reads of finished requests back.

Nothing is caught here: an error in an intervention stops the engine loudly rather than
leaving a request silently unsteered (``sl.vllm.generate`` validates every list first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from . import residual
from .reads import Read, ReadStore
from .step import Group, StepPlanner


@dataclass(frozen=True)
class Action:
    """One entry at one (layer, site) of a step: its flat token rows, and for a read the
    request tag and absolute position of each row."""

    entry: Any
    layer: int
    index: Int[Tensor, " rows"]
    order: int
    tags: list[str | None] | None = None
    positions: Int[Tensor, " rows"] | None = None


class Steering:
    """One worker's hooks and the current step's plan."""

    def __init__(self, runner: Any, architecture: str) -> None:
        self.reads = ReadStore()
        self._planner = StepPlanner(runner, runner.model_config.tokenizer)
        self._plan: dict[tuple[int, str], list[Action]] = {}
        model = runner.get_model()
        residual.before_forward(model, self._new_step)
        residual.install(
            residual.decoder_layers(model),
            residual.MID_NORM[architecture],
            self._edit,
            lambda layer, site: (layer, site) in self._plan,
        )

    def _new_step(self, positions: Int[Tensor, " tokens"]) -> None:
        self._plan = {}
        for group in self._planner.groups(positions):
            self._add(group)

    def _add(self, group: Group) -> None:
        where = group.where
        real = where.absolute >= 0
        in_prompt = where.absolute < where.prompt_len[:, None]
        for order, entry in enumerate(group.entries):
            reads = isinstance(entry, Read)
            selected = entry.positions.select(where) & (real & in_prompt if reads else real)
            if not bool(selected.any()):
                continue
            rows, cols = selected.nonzero(as_tuple=True)
            index = group.index[rows, cols]
            tags = [group.tags[r] for r in rows.tolist()] if reads else None
            positions = where.absolute[rows, cols] if reads else None
            for layer in entry.layers:
                action = Action(entry, layer, index, order, tags, positions)
                self._plan.setdefault((layer, entry.site), []).append(action)

    def _edit(self, layer: int, site: str, stream: Tensor) -> Tensor | None:
        touched = []
        for action in self._plan[(layer, site)]:
            rows = stream.index_select(0, action.index)
            if action.tags is not None:
                self._record(action, rows)
                continue
            stream.index_copy_(0, action.index, action.entry.apply(rows, action.layer))
            touched.append(action.index)
        if not touched:
            return None
        return touched[0] if len(touched) == 1 else torch.cat(touched).unique()

    def _record(self, action: Action, rows: Tensor) -> None:
        for tag in sorted({t for t in action.tags if t is not None}):
            mine = torch.tensor([t == tag for t in action.tags])
            self.reads.add(
                tag, action.order, action.entry.reduce, rows[mine], action.positions[mine]
            )


class SteerlensWorker:
    """Mixed into vLLM's worker class (``worker_extension_cls``); adds the two
    ``collective_rpc`` methods steerlens calls."""

    def steerlens_install(self, architecture: str) -> int:
        """Hook this worker's decoder layers; returns how many it holds."""
        runner = self.model_runner
        if getattr(self, "steerlens", None) is None:
            self.steerlens = Steering(runner, architecture)
        return len(residual.decoder_layers(runner.get_model()))

    def steerlens_take(self, tags: list[str]) -> bytes:
        """The reads of the requests tagged ``tags`` (``torch.save`` bytes)."""
        return self.steerlens.reads.take(tags)
