"""The shared opening: prompts that open with the same tokens run that opening once per
variant.

Few-shot prompts share most of their tokens. When every token is steered, the opening's
activations under a variant are the same in every prompt, so the opening runs once per
variant (one row each, its keys and values kept in the Hugging Face KV cache) and each
prompt runs only its own tokens after it, right-padded. Per variant that costs about
``P · L + n · C · L`` token-blocks (``P`` shared tokens, ``C`` own tokens per prompt, ``L``
blocks) instead of the suffix replay's ``n · (P + C) · (L - l)`` from the first steered
layer ``l``; ``choose`` takes it on a ``TransformerBridge`` when that saves at least a
quarter (``PAYS_OFF``; the measurement behind it is in docs/results.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ...core.errors import SteerlensError
from ...core.forward import is_bridge
from ...core.hookpoints import model_device
from ..cache_keyword import cache_keyword_shim, quiet_cache_deprecation
from .plan import SweepOutput, SweepPlan, Variant
from .rows import RowVariants

#: sharing must save this share of the replay's token-blocks to be taken (the opening's
#: one-row passes and the cache copies cost more per token)
PAYS_OFF = 0.75


def opening_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many tokens every sequence starts with, leaving each at least one of its own."""
    shortest = min(len(s) for s in sequences)
    length = 0
    while length < shortest - 1 and all(s[length] == sequences[0][length] for s in sequences):
        length += 1
    return length


def why_not_shared(model: Any, sequences: Sequence[Sequence[int]], plan: SweepPlan) -> str | None:
    """Why the opening cannot be shared (``None``: it can)."""
    if not is_bridge(model):
        return "needs a TransformerBridge (its Hugging Face KV cache)"
    partial = [v.positions for v in plan.steered if v.positions.kind not in ("all", "prompt")]
    if partial:
        return f"needs every token steered, not {partial[0]}"
    if len(sequences) < 2 or opening_length(sequences) == 0:
        return "the prompts share no opening tokens"
    return None


def shared_length(model: Any, sequences: Sequence[Sequence[int]], plan: SweepPlan) -> int:
    """How many opening tokens to share (0: replay the suffix instead), as
    ``plan.share_opening`` asks (``None``: when it runs under ``PAYS_OFF`` of the replay's
    token-blocks)."""
    why = why_not_shared(model, sequences, plan)
    if plan.share_opening is True and why is not None:
        raise SteerlensError(f"share_opening: {why}")
    if plan.share_opening is False or why is not None or not plan.steered:
        return 0
    opening, n_layers = opening_length(sequences), model.cfg.n_layers
    total = sum(len(s) for s in sequences)
    shared = opening * n_layers + (total - opening * len(sequences)) * n_layers
    replay = total * (n_layers - plan.first_layer)
    return opening if plan.share_opening or shared < PAYS_OFF * replay else 0


def _final_at(model: Any, seen: list[Tensor], tokens: Tensor, **kwargs: Any) -> Tensor:
    """Run ``model`` on ``tokens`` and return its ``ln_final`` output ``[rows, pos, d_model]``."""
    seen.clear()
    model(tokens.to(model_device(model)), logits_to_keep=1, **kwargs)
    return seen[-1]


class SharedOpening:
    """The shared-opening strategy (module docstring) for ``opening`` shared tokens."""

    def __init__(self, model: Any, plan: SweepPlan, opening: int) -> None:
        self.model, self.plan, self.opening = model, plan, opening

    def run(self, sequences: Sequence[Sequence[int]]) -> SweepOutput:
        """Readouts of every prompt under every variant, and unsteered (run as one more
        variant when no variant is ``None``)."""
        from transformers import DynamicCache

        model, plan = self.model, self.plan
        runs = list(plan.variants)
        if None not in runs:
            runs.append(None)
        n, device = len(sequences), model_device(model)
        chunk = min(n, plan.max_rows)
        per_pass = max(1, plan.max_rows // chunk)
        passes = -(-len(runs) // per_pass) * (1 + -(-n // chunk))
        out: list[Tensor] = []
        order = sorted(range(n), key=lambda i: len(sequences[i]))  # similar lengths pad less
        seen: list[Tensor] = []
        handle = model.ln_final.register_forward_hook(lambda _m, _i, output: seen.append(output))
        show = plan.progress if plan.progress is not None else passes > 1
        rows = RowVariants()
        try:
            with (
                rows.hooked(model, plan, skip=None),
                torch.no_grad(),
                cache_keyword_shim(model),
                quiet_cache_deprecation(),
                tqdm(total=passes, desc=plan.desc, disable=not show) as bar,
            ):
                for start in range(0, len(runs), per_pass):
                    blocks = runs[start : start + per_pass]
                    select = torch.ones(len(blocks), self.opening, dtype=torch.bool, device=device)
                    opened = DynamicCache(config=model.original_model.config)
                    opening_tokens = torch.tensor([sequences[0][: self.opening]] * len(blocks))
                    with rows.running(blocks, select):
                        _final_at(model, seen, opening_tokens, past_key_values=opened)
                    bar.update()
                    parts: list[Tensor | None] = [None] * n
                    for begin in range(0, n, chunk):
                        picked = order[begin : begin + chunk]
                        own = [sequences[i][self.opening :] for i in picked]
                        readouts = self._own_tokens(seen, own, opened, blocks, rows)
                        for j, i in enumerate(picked):
                            parts[i] = readouts[:, j]
                        bar.update()
                    out += list(torch.stack(parts, dim=1))
        finally:
            handle.remove()
        base = out[runs.index(None)]
        return SweepOutput(torch.stack(out[: len(plan.variants)]), base)

    def _own_tokens(
        self,
        seen: list[Tensor],
        own: list[list[int]],
        opened: Any,
        blocks: Sequence[Variant],
        rows: RowVariants,
    ) -> Float[Tensor, "n_blocks n ..."]:
        """Each prompt's own tokens (right-padded) after the cached opening, under every
        variant of ``blocks``: the readout at each prompt's last token."""
        model, k, n = self.model, len(blocks), len(own)
        width = max(len(t) for t in own)
        start = opened.get_seq_length()
        tokens = torch.zeros(n, width, dtype=torch.long)
        mask = torch.zeros(n, start + width, dtype=torch.bool)
        mask[:, :start] = True
        for i, ids in enumerate(own):
            tokens[i, : len(ids)] = torch.tensor(ids)
            mask[i, start : start + len(ids)] = True
        cache = copy.deepcopy(opened)
        cache.batch_repeat_interleave(n)
        device = model_device(model)
        select = torch.ones(k * n, width, dtype=torch.bool, device=device)
        with rows.running(blocks, select):
            final = _final_at(
                model,
                seen,
                tokens.repeat(k, 1),
                past_key_values=cache,
                attention_mask=mask.repeat(k, 1).long().to(device),
                position_ids=torch.arange(start, start + width, device=device).expand(k * n, -1),
            )
        last = torch.tensor([len(ids) - 1 for ids in own]).repeat(k).to(final.device)
        picked = self.plan.readout(final[torch.arange(k * n, device=final.device), last])
        return picked.view(k, n, *picked.shape[1:])
