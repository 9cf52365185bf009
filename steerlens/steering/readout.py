"""Next-token readouts: the logits after each of many texts (under any active steering)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.batching import padded_batches
from ..core.errors import SteerlensError
from ..core.forward import is_bridge, run
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import check_bool, check_model, check_texts


def next_token_logits(
    model: HookedModel,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, "n_texts d_vocab"]:
    """Logits of the token after each text (steering applies inside ``sl.steer``).

    Texts are grouped by length into left-padded batches; each row gives the same logits as
    a run of that text alone.

    Args:
        model: a TransformerLens model.
        texts: raw texts (chat-format them first with ``sl.format_chat``).
        batch_size: texts per forward pass.
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        ``[n_texts, d_vocab]`` float32 on the CPU, in the order of ``texts``.
    """
    check_model(model)
    check_bool("progress", progress, none=True)
    texts = check_texts("texts", texts)
    batches = padded_batches(model, [encode(model, text) for text in texts], batch_size)
    extra = {"logits_to_keep": 1} if is_bridge(model) else {}
    out: Tensor | None = None
    show = progress if progress is not None else len(batches) > 1
    for batch in tqdm(batches, desc="next-token logits", disable=not show):
        logits = run(model, batch.tokens, batch.mask, **extra)[:, -1].float().cpu()
        if out is None:
            out = torch.empty(len(texts), logits.shape[-1])
        out[batch.rows] = logits
    if not bool(torch.isfinite(out).all()):
        raise SteerlensError("model: produced NaN or inf logits")
    return out
