"""Which token positions an intervention touches, as rules over absolute positions.

A hook sees ``[batch, pos, d_model]``; under ``generate`` with the KV cache that is
``[batch, 1, d_model]`` after the first step, and left padding shifts every row. Rules
therefore work on absolute positions, counted from each row's first real token, which the
``PositionTracker`` (``core.tracker``) supplies to every hook, together with each row's
prompt length. So steering is the same with and without the KV cache and padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from .errors import SteerlensError, SteerlensTypeError
from .roles import ROLES, ChatSpans
from .validate import is_int, shown

NAMED_RULES = ("all", "prompt", "generated", "last", *ROLES)
#: the words of ``position=`` (where activations are read), refused here with a pointer
READING_WORDS = ("mean",)


@dataclass(frozen=True)
class Positions:
    """Absolute positions of the tokens a hook sees (``-1`` marks padding).

    Attributes:
        absolute: ``[batch, pos]`` position of each token from its row's first real token.
        prompt_len: ``[batch]`` real prompt tokens per row.
        new_stream: True on the first pass over a prompt (rules check their fit then).
        roles: the prompts' chat-role spans (``None`` when the token ids were not seen).
    """

    absolute: Int[Tensor, "batch pos"]
    prompt_len: Int[Tensor, " batch"]
    new_stream: bool
    roles: ChatSpans | None = None


@dataclass(frozen=True)
class PositionRule:
    """``"all"``, ``"prompt"``, ``"generated"``, ``"last"`` (the last prompt token), a chat
    role, explicit indices, or a mask.

    Chat roles (``"instruction"``, ``"post_instruction"``, ``"response"``) are read from each
    row's chat-formatted prompt (``core.roles``); ``"response"`` also covers every generated
    token. Non-negative indices count from the first real token; negative ones from the end of the
    prompt (``-1`` is the last prompt token). A boolean mask covers the prompt's tokens.
    """

    kind: str
    indices: tuple[int, ...] = ()
    mask: tuple[bool, ...] = ()

    def __str__(self) -> str:
        if self.kind == "indices":
            return f"positions {list(self.indices)}"
        if self.kind == "mask":
            return f"positions mask({sum(self.mask)}/{len(self.mask)})"
        return f"{self.kind} positions"

    def label(self) -> Any:
        """A JSON-friendly form of the rule (as a user would write it)."""
        if self.kind == "indices":
            return list(self.indices)
        if self.kind == "mask":
            return list(self.mask)
        return self.kind

    def select(self, where: Positions) -> Bool[Tensor, "batch pos"]:
        """Boolean ``[batch, pos]``: which of the hook's tokens this rule touches."""
        pos, real = where.absolute, where.absolute >= 0
        prompt_len = where.prompt_len[:, None]
        if self.kind == "all":
            return real
        if self.kind == "prompt":
            return real & (pos < prompt_len)
        if self.kind == "generated":
            return real & (pos >= prompt_len)
        if self.kind == "last":
            return real & (pos == prompt_len - 1)
        if self.kind in ROLES:
            return real & self._role(where)
        if self.kind == "indices":
            if where.new_stream:
                self._check_indices(where.prompt_len)
            idx = torch.tensor(self.indices, device=pos.device)
            targets = torch.where(idx[None, :] < 0, prompt_len + idx[None, :], idx[None, :])
            return real & (pos[:, :, None] == targets[:, None, :]).any(-1)
        mask = torch.tensor(self.mask, device=pos.device)
        if where.new_stream and bool((where.prompt_len != len(self.mask)).any()):
            raise SteerlensError(
                f"positions: a boolean mask of length {len(self.mask)} does not match prompt "
                f"lengths {where.prompt_len.tolist()}"
            )
        inside = real & (pos < len(self.mask))
        return inside & mask[pos.clamp(0, len(self.mask) - 1)]

    def _role(self, where: Positions) -> Bool[Tensor, "batch pos"]:
        if where.roles is None:
            raise SteerlensError(
                f"positions: {self.kind!r} needs the prompt's token ids, which this forward "
                "pass did not show (was the residual fed in directly?)"
            )
        start, end = (t.to(where.absolute.device)[:, None] for t in where.roles.span(self.kind))
        inside = where.absolute >= start
        return inside if self.kind == "response" else inside & (where.absolute < end)

    def _check_indices(self, prompt_len: Tensor) -> None:
        shortest = int(prompt_len.min())
        bad = [i for i in self.indices if not -shortest <= i < shortest]
        if bad:
            raise SteerlensError(
                f"positions: indices {bad} are out of range for a prompt of {shortest} tokens "
                f"(valid: -{shortest}..{shortest - 1}); use 'generated' for new tokens"
            )


def position_rule(positions: Any) -> PositionRule:
    """Parse the ``positions=`` argument of ``add``/``ablate``/``clamp``."""
    if isinstance(positions, PositionRule):
        return positions
    if isinstance(positions, str):
        if positions not in NAMED_RULES:
            hint = ""
            if positions.partition(" ")[0] in READING_WORDS:
                hint = (
                    f"; {positions!r} is a word of position= (where collect_activations, project "
                    "and the extractors read), not of positions= (which tokens an intervention "
                    "edits)"
                )
            raise SteerlensError(
                f"positions: expected one of {NAMED_RULES}, a list of ints or a boolean mask, "
                f"got {positions!r}{hint}"
            )
        return PositionRule(positions)
    if isinstance(positions, Tensor) and positions.dtype == torch.bool:
        if positions.ndim != 1 or positions.numel() == 0:
            raise SteerlensError(
                f"positions: a boolean mask must be 1-D and non-empty, got shape "
                f"{tuple(positions.shape)}"
            )
        return PositionRule("mask", mask=tuple(bool(v) for v in positions.tolist()))
    if is_int(positions):
        positions = [positions]
    if isinstance(positions, Sequence) and positions and all(is_int(i) for i in positions):
        if len(set(positions)) != len(positions):
            raise SteerlensError(f"positions: {list(positions)} names a position twice")
        return PositionRule("indices", indices=tuple(sorted(int(i) for i in positions)))
    raise SteerlensTypeError(
        f"positions: expected one of {NAMED_RULES}, a non-empty list of ints or a 1-D boolean "
        f"tensor, got {shown(positions)}"
    )
