"""Teacher-forced log-probabilities of completions (under any active steering)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.batching import length_batches
from ..core.completion_batch import completion_batch
from ..core.errors import SteerlensError
from ..core.forward import run
from ..core.tokens import completion_ids, encode
from ..core.types import HookedModel
from ..core.validate import check_bool, check_model, check_texts


def completion_logprob(
    model: HookedModel,
    prompts: str | Sequence[str],
    completion: str | Sequence[str],
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, " n_texts"]:
    """``log P(completion | prompt)``: the sum of the completion tokens' log-probabilities.

    Natural log, temperature 1 (no coldness). Prompt and completion are tokenized
    separately and their ids concatenated (the boundary is exact). Steering applies inside
    ``sl.steer``; the prompt and the completion form one input there, so ``"prompt"``
    positions cover both.

    Args:
        model: a TransformerLens model.
        prompts: raw text(s) (chat-format them first with ``sl.format_chat``).
        completion: one completion for every prompt, or one per prompt.
        batch_size: rows per forward pass (rows of similar length share a batch).
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        ``[n_prompts]`` float32 on the CPU.

    Example:
        >>> text = sl.format_chat(model, "How do I bake bread?")
        >>> sl.measures.completion_logprob(model, text, "I'm sorry")
    """
    check_model(model)
    check_bool("progress", progress, none=True)
    prompts = check_texts("prompts", prompts, single=True)
    completions = check_texts("completion", completion, single=True)
    if len(completions) == 1:
        completions = completions * len(prompts)
    elif len(completions) != len(prompts):
        raise SteerlensError(
            f"completion: expected one completion or one per prompt ({len(prompts)}), got "
            f"{len(completions)}"
        )
    pairs = [
        (p, completion_ids(model, c, "completion"))
        for p, c in zip(prompts, completions, strict=True)
    ]
    lengths = [len(encode(model, p, "prompts")) + len(ids) for p, ids in pairs]
    batches = length_batches(lengths, batch_size)
    out = torch.empty(len(pairs))
    show = progress if progress is not None else len(batches) > 1
    for rows in tqdm(batches, desc="completion log-prob", disable=not show):
        batch = completion_batch(model, [pairs[i] for i in rows])
        logits = run(model, batch.tokens, batch.mask)
        scored = logits[batch.rows, batch.cols].float().log_softmax(-1)
        token_lp = scored.gather(-1, batch.targets[:, None].to(scored.device))[:, 0].cpu()
        out[rows] = torch.zeros(len(rows)).index_add_(0, batch.rows, token_lp)
    if not bool(torch.isfinite(out).all()):
        raise SteerlensError("model: produced NaN or inf log-probabilities")
    return out
