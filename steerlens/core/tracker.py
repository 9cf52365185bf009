"""The position tracker: absolute positions of the tokens every hook sees.

It watches the token ids entering the embedding (and, when the model is called through
``__call__``, its ``attention_mask`` and KV cache) and gives every hook the absolute position
of each row's tokens, counted from the row's first real token, plus each row's prompt length.
Its two hooks are plain PyTorch pre-hooks on the model and its embedding (they read, never
edit), removed by ``remove``.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from .forward import position_ids
from .positions import PositionRule, Positions
from .roles import ChatSpans


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
        self._selections: dict[tuple, tuple[Tensor, bool, bool]] = {}
        self._tokenizer = getattr(model, "tokenizer", None)
        self._roles: ChatSpans | None = None
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
                current.absolute.to(device),
                current.prompt_len.to(device),
                current.new_stream,
                current.roles,
            )
        if self._mask is not None and tuple(self._mask.shape) == (batch, n_pos):
            # The whole stream re-fed as a residual (classic ``generate`` without the KV
            # cache calls ``forward`` on all embeddings so far, bypassing ``__call__``).
            absolute = _absolute(self._mask).to(device)
            return Positions(absolute, self._prompt_len.to(device), False, self._roles)
        # The stream was not seen (e.g. residual fed in with start_at_layer): no padding.
        absolute = torch.arange(n_pos, device=device).expand(batch, n_pos)
        return Positions(absolute, torch.full((batch,), n_pos, device=device), True)

    def selection(
        self, rule: PositionRule, batch: int, n_pos: int, device: torch.device
    ) -> tuple[Bool[Tensor, "batch pos"], bool, bool]:
        """``(selected on device, any, all)``: the tokens ``rule`` touches now. Computed on
        the CPU and copied to ``device`` once per forward step, so hooks never wait on it."""
        key = (rule, batch, n_pos, str(device))
        if key not in self._selections:
            selected = rule.select(self.positions(batch, n_pos, torch.device("cpu")))
            flags = bool(selected.any()), bool(selected.all())
            if torch.device(device).type == "cuda":  # pinned: the copy does not block
                selected = selected.pin_memory()
            found = (selected.to(device, non_blocking=True), *flags)
            self._selections[key] = found
        return self._selections[key]

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
        known = tokens is not None and self._tokenizer is not None
        self._roles = ChatSpans(self._tokenizer, tokens, mask) if known else None
        self._current = Positions(_absolute(mask), self._prompt_len, True, self._roles)
        self._selections = {}

    def _extend(self, tokens: Tensor, mask: Tensor | None, full_rerun: bool = False) -> None:
        new_mask = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask
        new_mask = new_mask[:, -tokens.shape[1] :]
        self._tokens = torch.cat([self._tokens, tokens], dim=1)
        self._mask = torch.cat([self._mask, new_mask], dim=1)
        absolute = _absolute(self._mask)
        if not full_rerun:
            absolute = absolute[:, -tokens.shape[1] :]
        self._current = Positions(absolute, self._prompt_len, False, self._roles)
        self._selections = {}


def _absolute(mask: Bool[Tensor, "batch pos"]) -> Int[Tensor, "batch pos"]:
    return torch.where(mask, position_ids(mask), torch.full_like(mask, -1, dtype=torch.long))
