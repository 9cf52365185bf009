"""Running requests that only read: one prompt token's worth of generation per text, the
reads handed back by the workers (``worker.SteerlensWorker.steerlens_take``).

A reading request is salted uniquely, so the prefix cache never skips the positions it
must read.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import torch
from torch import Tensor

from . import payload


def run_reads(
    llm: Any, encoded: list[list[int]], lists: list[list[Any]]
) -> list[dict[int, Tensor]]:
    """For each prompt, run its list (interventions and ``Read`` entries) over the prompt
    and return ``{entry index: read}`` for its reads."""
    from vllm import SamplingParams

    run = uuid.uuid4().hex
    tags = [f"{run}-{row}" for row in range(len(encoded))]
    prompts, params = [], []
    for tag, ids, entries in zip(tags, encoded, lists, strict=True):
        prompts.append({"prompt_token_ids": ids, "cache_salt": f"steerlens-read-{tag}"})
        extra = {payload.KEY: payload.encode(entries), payload.TAG: tag}
        params.append(SamplingParams(max_tokens=1, temperature=0.0, extra_args=extra))
    llm.generate(prompts, params, use_tqdm=False)
    found: dict[str, dict[int, Tensor]] = {tag: {} for tag in tags}
    for blob in llm.collective_rpc("steerlens_take", args=(tags,)):
        for tag, reads in torch.load(io.BytesIO(blob), weights_only=True).items():
            found[tag].update(reads)
    return [found[tag] for tag in tags]
