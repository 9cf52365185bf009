"""Which token positions an intervention touches, in absolute positions.

A hook sees ``[batch, pos, d_model]``; under ``generate`` with the KV cache that is
``[batch, 1, d_model]`` after the first step, and left padding shifts every row. The
``PositionTracker`` watches the token ids entering the embedding (and, when the model is
called through ``__call__``, its ``attention_mask`` and KV cache) and gives every hook the
absolute position of each row's tokens, counted from the row's first real token, plus the
prompt length of each row. Position rules then work on those absolute positions, so that
steering is the same with and without the KV cache and with and without padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from ._errors import SteerlensError
from ._forward import position_ids

NAMED_RULES = ("all", "prompt", "generated")


@dataclass(frozen=True)
class Positions:
    """Absolute positions of the tokens a hook sees (``-1`` marks padding)."""

    absolute: Int[Tensor, "batch pos"]
    prompt_len: Int[Tensor, " batch"]
    new_stream: bool


@dataclass(frozen=True)
class PositionRule:
    """``"all"``, ``"prompt"``, ``"generated"``, explicit indices, or a boolean prompt mask.

    Non-negative indices count from the first real token; negative ones from the end of the
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
            raise SteerlensError(
                f"positions: expected one of {NAMED_RULES}, a list of ints or a boolean mask, "
                f"got {positions!r}"
            )
        return PositionRule(positions)
    if isinstance(positions, Tensor) and positions.dtype == torch.bool:
        if positions.ndim != 1 or positions.numel() == 0:
            raise SteerlensError(
                f"positions: a boolean mask must be 1-D and non-empty, got shape "
                f"{tuple(positions.shape)}"
            )
        return PositionRule("mask", mask=tuple(bool(v) for v in positions.tolist()))
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]
    if (
        isinstance(positions, Sequence)
        and positions
        and all(isinstance(i, int) and not isinstance(i, bool) for i in positions)
    ):
        return PositionRule("indices", indices=tuple(sorted(set(positions))))
    raise SteerlensError(
        f"positions: expected one of {NAMED_RULES}, a non-empty list of ints or a 1-D boolean "
        f"tensor, got {positions!r}"
    )


def _cache_length(cache: Any) -> int | None:
    if cache is None:
        return None
    if hasattr(cache, "get_seq_length"):  # Hugging Face cache (TransformerBridge)
        return int(cache.get_seq_length())
    entries = getattr(cache, "entries", None)  # classic HookedTransformer cache
    if entries:
        return int(entries[0].past_keys.shape[1])
    return None


class PositionTracker:
    """Follows the token stream through forward passes and generation steps."""

    def __init__(self, model: Any) -> None:
        self._pending: dict[str, Any] | None = None
        self._model_hook_fired = False
        self._tokens: Tensor | None = None  # [batch, seen] ids of the current stream
        self._mask: Tensor | None = None  # [batch, seen] real-token mask
        self._prompt_len: Tensor | None = None
        self._current: Positions | None = None
        self._handles = [
            model.register_forward_pre_hook(self._on_model_call, with_kwargs=True),
            model.embed.register_forward_pre_hook(self._on_embed, with_kwargs=True),
        ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def positions(self, batch: int, n_pos: int, device: torch.device) -> Positions:
        """Positions of the ``[batch, n_pos]`` tokens a hook sees now."""
        current = self._current
        if current is not None and tuple(current.absolute.shape) == (batch, n_pos):
            return Positions(
                current.absolute.to(device), current.prompt_len.to(device), current.new_stream
            )
        # The stream was not seen (e.g. residual fed in with start_at_layer): no padding.
        absolute = torch.arange(n_pos, device=device).expand(batch, n_pos)
        return Positions(absolute, torch.full((batch,), n_pos, device=device), True)

    def _on_model_call(self, _module: Any, args: tuple, kwargs: dict) -> None:
        self._model_hook_fired = True
        first = args[0] if args else kwargs.get("input")
        mask = kwargs.get("attention_mask")
        mask = None if mask is None else mask.bool().cpu()
        cache = kwargs.get("past_key_values", kwargs.get("past_kv_cache"))
        self._pending = {"mask": mask, "cache_len": _cache_length(cache)}
        if isinstance(first, Tensor) and first.is_floating_point():  # start_at_layer
            batch, n_pos = first.shape[0], first.shape[-2]
            full = mask if mask is not None else torch.ones(batch, n_pos, dtype=torch.bool)
            self._start(None, full)

    def _on_embed(self, _module: Any, args: tuple, kwargs: dict) -> None:
        tokens = args[0] if args else kwargs.get("input_ids", kwargs.get("tokens"))
        if not isinstance(tokens, Tensor) or tokens.is_floating_point() or tokens.ndim != 2:
            return
        tokens = tokens.detach().cpu()
        pending, self._pending = self._pending or {}, None
        mask, cache_len = pending.get("mask"), pending.get("cache_len")
        same_batch = self._tokens is not None and self._tokens.shape[0] == tokens.shape[0]
        classic_cached = not self._model_hook_fired and tokens.shape[1] == 1
        if same_batch and (bool(cache_len) or classic_cached):
            self._extend(tokens, mask)
        elif same_batch and self._continues(tokens):
            new_part = tokens[:, self._tokens.shape[1] :]
            self._extend(new_part, None if mask is None else mask[:, -new_part.shape[1] :], True)
        else:
            self._start(tokens, mask if mask is not None else torch.ones_like(tokens, dtype=bool))

    def _continues(self, tokens: Tensor) -> bool:
        seen = self._tokens.shape[1]
        return tokens.shape[1] > seen and torch.equal(tokens[:, :seen], self._tokens)

    def _start(self, tokens: Tensor | None, mask: Tensor) -> None:
        self._tokens, self._mask = tokens, mask
        self._prompt_len = mask.sum(-1)
        self._current = Positions(_absolute(mask), self._prompt_len, True)

    def _extend(self, tokens: Tensor, mask: Tensor | None, full_rerun: bool = False) -> None:
        new_mask = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask
        new_mask = new_mask[:, -tokens.shape[1] :]
        self._tokens = torch.cat([self._tokens, tokens], dim=1)
        self._mask = torch.cat([self._mask, new_mask], dim=1)
        absolute = _absolute(self._mask)
        if not full_rerun:
            absolute = absolute[:, -tokens.shape[1] :]
        self._current = Positions(absolute, self._prompt_len, False)


def _absolute(mask: Bool[Tensor, "batch pos"]) -> Int[Tensor, "batch pos"]:
    return torch.where(mask, position_ids(mask), torch.full_like(mask, -1, dtype=torch.long))
