"""Sweeps over prompts that open alike: the shared opening runs once per coefficient.

Few-shot prompts share most of their tokens (docs/results.md measures how many on the
report's questions, and what sharing saves). When every token is steered, the opening's
activations under a coefficient ``r`` are the same in every prompt, so the opening runs once
per coefficient (one row each, its keys and values kept in the Hugging Face KV cache) and
each prompt runs only its own tokens after it, right-padded. Per coefficient that costs
about ``P · L + n · C · L`` token-blocks (``P`` shared tokens, ``C`` own tokens per prompt,
``L`` blocks) instead of the suffix replay's ``n · (P + C) · (L - l)`` from the first
steered layer ``l``; ``sweep`` shares on a ``TransformerBridge`` when that saves at least a
quarter.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.errors import SteerlensError
from ..core.forward import is_bridge
from ..core.hookpoints import d_model, model_device
from ..core.positions import PositionRule
from ..steering.cache_keyword import cache_keyword_shim, quiet_cache_deprecation

#: sharing must save this share of the replay's token-blocks to be taken: the opening's
#: one-row passes and the cache copies cost more per token (docs/results.md)
PAYS_OFF = 0.75


def opening_length(sequences: Sequence[list[int]]) -> int:
    """How many tokens every sequence starts with, leaving each at least one of its own."""
    shortest = min(len(s) for s in sequences)
    length = 0
    while length < shortest - 1 and all(s[length] == sequences[0][length] for s in sequences):
        length += 1
    return length


def _why_not(model: Any, sequences: Sequence[list[int]], rule: PositionRule) -> str | None:
    """Why the opening cannot be shared (``None``: it can)."""
    if not is_bridge(model):
        return "needs a TransformerBridge (its Hugging Face KV cache)"
    if rule.kind not in ("all", "prompt"):
        return f"needs every token steered, not {rule}"
    if len(sequences) < 2 or opening_length(sequences) == 0:
        return "the prompts share no opening tokens"
    return None


def worth_sharing(
    model: Any,
    sequences: Sequence[list[int]],
    first: int,
    rule: PositionRule,
    share: bool | None = None,
) -> int:
    """How many opening tokens to share (0: run the suffix replay instead). ``share=None``
    shares when that runs under ``PAYS_OFF`` of the replay's token-blocks, ``False`` never,
    ``True`` whenever it can (a ``SteerlensError`` says why it cannot)."""
    why = _why_not(model, sequences, rule)
    if share is True and why is not None:
        raise SteerlensError(f"share_opening: {why}")
    if share is False or why is not None:
        return 0
    opening, n_layers = opening_length(sequences), model.cfg.n_layers
    total = sum(len(s) for s in sequences)
    shared = opening * n_layers + (total - opening * len(sequences)) * n_layers
    return opening if share or shared < PAYS_OFF * total * (n_layers - first) else 0


def _final_at(model: Any, seen: list[Tensor], tokens: Tensor, **kwargs: Any) -> Tensor:
    """Run ``model`` on ``tokens`` and return its ``ln_final`` output ``[rows, pos, d_model]``."""
    seen.clear()
    model(tokens.to(model_device(model)), logits_to_keep=1, **kwargs)
    return seen[-1]


def shared_sweep(
    model: Any,
    sequences: Sequence[list[int]],
    opening: int,
    values: Float[Tensor, " n_coeffs"],
    state: Any,
    max_rows: int,
    progress: bool | None,
) -> tuple[Float[Tensor, "n_coeffs n_prompts d_model"], Float[Tensor, "n_prompts d_model"]]:
    """``(final, base)``: the final normalized residual at every prompt's last token under
    each coefficient, and unsteered (``r = 0``, run as one more coefficient if absent).

    ``state`` is the sweep's per-row coefficient holder (``rows``, ``select``), whose hooks
    the caller has attached at every steered layer; ``opening`` tokens are shared.
    """
    from transformers import DynamicCache

    runs = values if bool((values == 0).any()) else torch.cat([values, values.new_zeros(1)])
    n, device = len(sequences), model_device(model)
    chunk = min(n, max_rows)
    per_pass = max(1, max_rows // chunk)
    passes = -(-runs.numel() // per_pass) * (1 + -(-n // chunk))
    out = torch.empty(runs.numel(), n, d_model(model))
    order = sorted(range(n), key=lambda i: len(sequences[i]))  # similar lengths pad less
    seen: list[Tensor] = []
    handle = model.ln_final.register_forward_hook(lambda _m, _i, output: seen.append(output))
    show = progress if progress is not None else passes > 1
    try:
        with (
            torch.no_grad(),
            cache_keyword_shim(model),
            quiet_cache_deprecation(),
            tqdm(total=passes, desc="sweep", disable=not show) as bar,
        ):
            for start in range(0, runs.numel(), per_pass):
                coeffs = runs[start : start + per_pass].to(device)
                state.rows = coeffs
                state.select = torch.ones(len(coeffs), opening, dtype=torch.bool, device=device)
                opened = DynamicCache(config=model.original_model.config)
                opening_tokens = torch.tensor([sequences[0][:opening]] * len(coeffs))
                _final_at(model, seen, opening_tokens, past_key_values=opened)
                bar.update()
                for begin in range(0, n, chunk):
                    rows = order[begin : begin + chunk]
                    own = [sequences[i][opening:] for i in rows]
                    out[start : start + len(coeffs), rows] = _own_tokens(
                        model, seen, own, opened, coeffs, state
                    )
                    bar.update()
    finally:
        handle.remove()
        state.rows = state.select = None
    return out[: values.numel()], out[int((runs == 0).nonzero()[0, 0])]


def _own_tokens(
    model: Any, seen: list[Tensor], own: list[list[int]], opened: Any, coeffs: Tensor, state: Any
) -> Float[Tensor, "n_coeffs rows d_model"]:
    """Each prompt's own tokens (right-padded) after the cached opening, for every
    coefficient of ``coeffs``: the final normalized residual at each prompt's last token."""
    k, n, width = len(coeffs), len(own), max(len(t) for t in own)
    start = opened.get_seq_length()
    tokens = torch.zeros(n, width, dtype=torch.long)
    mask = torch.zeros(n, start + width, dtype=torch.bool)
    mask[:, :start] = True
    for i, ids in enumerate(own):
        tokens[i, : len(ids)] = torch.tensor(ids)
        mask[i, start : start + len(ids)] = True
    cache = copy.deepcopy(opened)
    cache.batch_repeat_interleave(n)
    state.rows = coeffs.repeat_interleave(n)
    state.select = torch.ones(k * n, width, dtype=torch.bool, device=coeffs.device)
    device = model_device(model)
    final = _final_at(
        model,
        seen,
        tokens.repeat(k, 1),
        past_key_values=cache,
        attention_mask=mask.repeat(k, 1).long().to(device),
        position_ids=torch.arange(start, start + width, device=device).expand(k * n, -1),
    )
    last = torch.tensor([len(ids) - 1 for ids in own]).repeat(k).to(final.device)
    picked = final[torch.arange(k * n, device=final.device), last].float().cpu()
    return picked.view(k, n, -1)
