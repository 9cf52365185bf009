"""References for the vLLM tests: ``sl.generate`` under ``sl.steer`` (TransformerLens, the
same prompts) as token ids cut at the first end-of-sequence token, and the vLLM side's."""

from __future__ import annotations

from contextlib import nullcontext

import torch

import steerlens as sl
from steerlens.core.tokens import encode
from steerlens.steering.generation import _new_tokens, prompt_texts
from steerlens.vllm.generation import new_tokens


def cut(ids, eos: int) -> list[int]:
    ids = [int(i) for i in ids]
    return ids[: ids.index(eos)] if eos in ids else ids


def reference(model, prompts, interventions, max_new_tokens: int) -> list[list[int]]:
    """Greedy tokens of ``sl.generate`` (one left-padded batch) under ``sl.steer``."""
    encoded = [encode(model, t, "prompt") for t in prompt_texts(model, prompts, True, False)]
    options = dict(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        temperature=1.0,
        use_past_kv_cache=True,
        verbose=False,
        return_type="tokens",
    )
    steering = sl.steer(model, *interventions) if interventions else nullcontext()
    with steering:
        rows = _new_tokens(model, encoded, options)
    return [cut(row, model.tokenizer.eos_token_id) for row in rows]


def grouped_reference(model, prompts, lists, max_new_tokens: int) -> list[list[int]]:
    """``reference`` for per-prompt lists: prompts sharing a list go as one batch."""
    out: list[list[int] | None] = [None] * len(prompts)
    groups: dict[int, list[int]] = {}
    for row, entries in enumerate(lists):
        groups.setdefault(id(entries), []).append(row)
    for rows in groups.values():
        got = reference(model, [prompts[r] for r in rows], lists[rows[0]], max_new_tokens)
        for row, ids in zip(rows, got, strict=True):
            out[row] = ids
    return out


def engine_tokens(llm, prompts, lists, max_new_tokens: int) -> list[list[int]]:
    eos = llm.get_tokenizer().eos_token_id
    from vllm import SamplingParams

    greedy = SamplingParams(max_tokens=max_new_tokens, temperature=0.0)
    got = new_tokens(llm, prompts, lists, greedy)
    return [cut(row, eos) for row in got]


class Scale(sl.steering.Intervention):
    """DESIGN §12's user kind, as a notebook defines it: its module is ``__main__``, so
    steerlens sends it to the engine process by value, never by an import the engine
    could not do."""

    __module__ = "__main__"

    def __init__(self, d, f, **where):
        super().__init__(**where)
        self.d, self.f = d, f

    def edit(self, x, layer):
        return x + (self.f - 1) * (x @ self.d)[..., None] * self.d


def direction(d_model: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(d_model, generator=generator)
