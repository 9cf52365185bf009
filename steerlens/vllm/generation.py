"""``sl.vllm.generate``: ``sl.generate``'s prompts and replies, steered per request in one
continuous batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.chat import Message, is_messages
from ..core.tokens import check_context, decode_reply, encode
from ..core.validate import check_bool, check_int, check_number
from ..steering.generation import prompt_texts
from .conditions import resolve
from .engine import engine_model
from .requests import check_lists, engine_requests, per_prompt


def generate(
    llm: Any,
    prompt: Message | Sequence[Message],
    interventions: Any = None,
    *,
    max_new_tokens: int = 64,
    chat: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = None,
) -> str | list[str]:
    """Generate replies in vLLM, each prompt steered by its own interventions.

    Args:
        llm: an engine from ``sl.vllm.load``.
        prompt: a user message, a list of chat messages, or a list of either (as
            ``sl.generate``; the chat template is applied unless ``chat=False``).
        interventions: ``None`` (unsteered); one intervention or one list of them for every
            prompt; or one list per prompt (``[]`` for an unsteered one). The same objects
            as ``sl.steer`` takes (``sl.add``/``ablate``/``clamp``, ``sl.steering.rotate``,
            your own ``sl.steering.Intervention`` subclass, ``sl.when``), with the same
            absolute positions.
        max_new_tokens: the most tokens to add.
        chat: apply the chat template.
        do_sample: sample instead of greedy decoding.
        temperature: sampling temperature (> 0).
        seed: per-request sampling seed (with ``do_sample``).

    Returns:
        The new text, or a list of texts for a list of prompts.

    Example:
        >>> outs = sl.vllm.generate(llm, prompts, [[sl.add(v1, 4.0)], [], [sl.ablate(v2)]])
    """
    check_int("max_new_tokens", max_new_tokens, low=1)
    check_bool("chat", chat)
    check_bool("do_sample", do_sample)
    check_number("temperature", temperature, low=0.0, open_low=True)
    if seed is not None:
        check_int("seed", seed)
    from vllm import SamplingParams

    params = SamplingParams(
        max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0, seed=seed
    )
    rows = new_tokens(llm, prompt, interventions, params, chat=chat)
    replies = [decode_reply(engine_model(llm), row) for row in rows]
    single = isinstance(prompt, str) or is_messages(prompt)
    return replies[0] if single else replies


def new_tokens(
    llm: Any,
    prompt: Message | Sequence[Message],
    interventions: Any,
    params: Any,
    *,
    chat: bool = True,
) -> list[list[int]]:
    """The generated token ids per prompt under vLLM ``SamplingParams`` ``params`` (what
    ``generate`` decodes)."""
    model = engine_model(llm)
    single = isinstance(prompt, str) or is_messages(prompt)
    encoded = [encode(model, text, "prompt") for text in prompt_texts(model, prompt, chat, single)]
    check_context(model, max(map(len, encoded)) + params.max_tokens, "prompt + max_new_tokens")
    lists = per_prompt(interventions, len(encoded))
    check_lists(model, lists, encoded)
    lists = resolve(llm, encoded, lists)
    prompts, all_params = engine_requests(lists, encoded, params)
    outputs = llm.generate(prompts, all_params, use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outputs]
