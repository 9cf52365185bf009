"""One forward step of the engine, seen per steered request: which tokens of the flat batch
are whose, at which absolute positions.

vLLM runs every scheduled token of every request in one flat ``[num_tokens, d_model]``
batch: a request's tokens are contiguous (``query_start_loc``), its positions absolute
(0 is its first prompt token, whatever chunk or step this is, and a preempted request
recomputes from 0). This module is the one place that reads the model runner's state
(``input_batch.req_ids``, ``query_start_loc``, ``requests``: vLLM 0.32's GPU/CPU model
runner). Requests carrying the same payload form one ``Group``, steered with one call per
intervention and layer; its ``Positions`` are padded ``[requests, tokens]`` with ``-1``,
exactly what a position rule reads under ``sl.steer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from ..core.positions import Positions
from ..core.roles import ROLES, ChatSpans
from .payload import KEY, TAG, decode


@dataclass(frozen=True)
class Group:
    """The tokens of one step's requests that carry the same interventions."""

    entries: list[Any]
    tags: list[str | None]  # per request, for reads
    where: Positions  # absolute [requests, tokens] (-1 pads), prompt_len, roles
    index: Int[Tensor, "requests tokens"]  # row in the flat batch (0 where padded)


class StepPlanner:
    """Builds each step's groups; keeps each request's chat-role spans and each payload's
    decoded interventions while requests live."""

    def __init__(self, runner: Any, tokenizer_path: str) -> None:
        self._runner = runner
        self._tokenizer_path = tokenizer_path
        self._tokenizer: Any = None
        self._payloads: dict[str, list[Any]] = {}
        self._bounds: dict[str, Tensor] = {}

    def groups(self, positions: Int[Tensor, " tokens"]) -> list[Group]:
        """The steered requests of the step whose flat token positions are ``positions``."""
        runner = self._runner
        count = runner.input_batch.num_reqs
        req_ids = list(runner.input_batch.req_ids[:count])
        starts = runner.query_start_loc.np[: count + 1].tolist()
        if not req_ids or starts[-1] > positions.shape[0]:  # not a step of real requests
            return []
        self._forget(runner.requests)
        positions = positions.cpu()
        members: dict[str, list[int]] = {}
        for row, req_id in enumerate(req_ids):
            extra = runner.requests[req_id].sampling_params.extra_args or {}
            if KEY in extra:
                members.setdefault(extra[KEY], []).append(row)
        return [
            self._group(
                payload, [req_ids[r] for r in rows], [starts[r : r + 2] for r in rows], positions
            )
            for payload, rows in members.items()
        ]

    def _group(
        self, payload: str, req_ids: list[str], spans: list[list[int]], positions: Tensor
    ) -> Group:
        if payload not in self._payloads:
            self._payloads[payload] = decode(payload)
        entries = self._payloads[payload]
        width = max(end - start for start, end in spans)
        absolute = torch.full((len(req_ids), width), -1, dtype=torch.long)
        index = torch.zeros((len(req_ids), width), dtype=torch.long)
        for row, (start, end) in enumerate(spans):
            absolute[row, : end - start] = positions[start:end]
            index[row, : end - start] = torch.arange(start, end)
        states = [self._runner.requests[req_id] for req_id in req_ids]
        prompt_len = torch.tensor([state.num_prompt_tokens for state in states])
        roles = None
        if any(entry.positions.kind in ROLES for entry in entries):
            roles = ChatSpans.from_bounds(torch.stack([self._spans(s) for s in states]))
        extras = [state.sampling_params.extra_args for state in states]
        return Group(
            entries,
            [extra.get(TAG) for extra in extras],
            Positions(absolute, prompt_len, False, roles),
            index,
        )

    def _spans(self, state: Any) -> Tensor:
        """A request's chat-role bounds, from its prompt tokens (once per request)."""
        if state.req_id not in self._bounds:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_path)
            ids = torch.tensor([state.prompt_token_ids])
            spans = ChatSpans(self._tokenizer, ids, torch.ones_like(ids, dtype=torch.bool))
            self._bounds[state.req_id] = spans.bounds()[0]
        return self._bounds[state.req_id]

    def _forget(self, live: dict[str, Any]) -> None:
        """Drop the state of finished requests and payloads no live request carries."""
        for req_id in [r for r in self._bounds if r not in live]:
            del self._bounds[req_id]
        if len(self._payloads) > 64:
            carried = {
                (state.sampling_params.extra_args or {}).get(KEY)
                for state in live.values()
                if state.sampling_params is not None
            }
            for payload in [p for p in self._payloads if p not in carried]:
                del self._payloads[payload]
