"""Next-token readouts: logits at the last token of many texts, and single-token answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ._errors import SteerlensError
from ._forward import is_bridge, run
from ._hooks import check_model
from ._tokens import check_texts, encode, get_tokenizer, left_pad


def next_token_logits(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, "n d_vocab"]:
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
    texts = check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SteerlensError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    encoded = [encode(model, text) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    extra = {"logits_to_keep": 1} if is_bridge(model) else {}
    rows: dict[int, Tensor] = {}
    show = progress if progress is not None else len(batches) > 1
    for batch in tqdm(batches, desc="next-token logits", disable=not show):
        tokens, mask = left_pad(model, [encoded[i] for i in batch])
        logits = run(model, tokens, mask, **extra)[:, -1].float().cpu()
        rows.update(zip(batch, logits, strict=True))
    out = torch.stack([rows[i] for i in range(len(texts))])
    if not bool(torch.isfinite(out).all()):
        raise SteerlensError("model: produced NaN or inf logits")
    return out


def single_token_id(model: Any, word: str) -> int:
    """The id of ``word`` if the tokenizer makes it exactly one token, else a clear error.

    Leading spaces matter (``" Yes"`` and ``"Yes"`` are different tokens).
    """
    if not isinstance(word, str) or not word:
        raise SteerlensError(f"word: expected a non-empty string, got {word!r}")
    ids = get_tokenizer(model)(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = [get_tokenizer(model).decode([i]) for i in ids]
        raise SteerlensError(
            f"word: {word!r} is {len(ids)} tokens {pieces}, not one; pick a word the "
            "tokenizer keeps whole (mind the leading space)"
        )
    return int(ids[0])
