"""The chat template: user messages formatted for the model, and answer pairs under it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import SteerlensError, SteerlensTypeError
from .tokens import get_tokenizer
from .validate import check_bool, check_text, check_texts, shown

Message = str | Sequence[dict[str, str]]


def is_messages(prompt: Any) -> bool:
    """A non-empty list of ``{"role", "content"}`` dicts (one conversation)."""
    return (
        isinstance(prompt, Sequence)
        and not isinstance(prompt, str)
        and bool(prompt)
        and all(isinstance(m, dict) for m in prompt)
    )


def check_messages(name: str, message: Any) -> list[dict[str, str]]:
    """A user message (string) or a conversation, as a list of role/content dicts."""
    if isinstance(message, str):
        return [{"role": "user", "content": message}]
    if not is_messages(message):
        raise SteerlensTypeError(
            f"{name}: expected a string or a non-empty list of {{'role', 'content'}} dicts, "
            f"got {shown(message)}"
        )
    messages = [dict(m) for m in message]
    for index, m in enumerate(messages):
        if set(m) != {"role", "content"}:
            raise SteerlensError(
                f"{name}[{index}]: expected exactly the keys 'role' and 'content', got {sorted(m)}"
            )
        check_text(f"{name}[{index}]['role']", m["role"])
        check_text(f"{name}[{index}]['content']", m["content"], empty=True)
    return messages


def format_chat(
    model: Any,
    message: Message,
    *,
    system: str | None = None,
    add_generation_prompt: bool = True,
    template: str | None = None,
) -> str:
    """Apply the model's chat template (or ``template``) to a user message or messages.

    Args:
        model: a TransformerLens model; its tokenizer needs a chat template unless
            ``template`` is given (base models such as Gemma 3 270M have none, and none is
            ever invented for them).
        message: the user's message, or messages as ``[{"role": ..., "content": ...}]``.
        system: an optional system prompt put first.
        add_generation_prompt: end with the assistant header, ready for the reply.
        template: a Jinja chat template string (Hugging Face's format: ``messages``,
            ``add_generation_prompt``, ``bos_token``) used instead of the tokenizer's.

    Returns:
        The formatted text (raw text ready for the extractors and ``project``).

    Example:
        >>> text = sl.format_chat(model, "How do I bake bread?")
    """
    messages = check_messages("message", message)
    if system is not None:
        messages = [{"role": "system", "content": check_text("system", system)}, *messages]
    check_bool("add_generation_prompt", add_generation_prompt)
    if template is not None:
        check_text("template", template)
    tokenizer = get_tokenizer(model)
    if template is None and getattr(tokenizer, "chat_template", None) is None:
        raise SteerlensError(
            "model: its tokenizer has no chat template (a base model); pass raw text "
            "(chat=False) instead, or a Jinja chat template string as template="
        )
    return _apply_template(tokenizer, messages, add_generation_prompt, template)


def _apply_template(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool, template: Any
) -> str:
    """``tokenizer.apply_chat_template`` as text; a broken ``template`` is a clear error."""
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(
            messages,
            chat_template=template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    except TemplateError as error:
        if template is None:
            raise
        raise SteerlensError(
            f"template: not a usable Jinja chat template ({error}); got {shown(template)}"
        ) from error


def template_markers(model: Any) -> list[str]:
    """The special tokens the chat template writes around a message (e.g. ``<|im_start|>``);
    none for a tokenizer without a template."""
    tokenizer = get_tokenizer(model)
    if getattr(tokenizer, "chat_template", None) is None:
        return []
    rendered = _apply_template(tokenizer, [{"role": "user", "content": "x"}], True, None)
    special = set(tokenizer.all_special_tokens) | set(
        getattr(tokenizer, "added_tokens_encoder", {})
    )
    return sorted(token for token in special if token and token in rendered)


def refuse_formatted(model: Any, name: str, texts: Sequence[str]) -> None:
    """Raise if a user message already carries the chat template (a ``format_chat`` result):
    formatting it again would wrap it in a second template, silently."""
    markers = template_markers(model)
    for index, text in enumerate(texts):
        found = [marker for marker in markers if marker in text]
        if found:
            raise SteerlensError(
                f"{name}[{index}]: already carries the chat template (it contains {found[0]!r}, "
                "as a sl.format_chat result does); pass chat=False to use it as it is, or "
                "give the plain user message"
            )


def answer_pairs(
    model: Any,
    prompts: Sequence[str],
    positive_answers: Sequence[str],
    negative_answers: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Contrast two assistant answers under the same chat prompt.

    Each prompt is chat-formatted (``format_chat``) and each answer appended to it, so that
    extractors see texts that differ only in the answer.

    Args:
        model: a model whose tokenizer has a chat template.
        prompts: user messages.
        positive_answers: the answer of the positive class for each prompt.
        negative_answers: the answer of the negative class for each prompt.

    Returns:
        ``(positives, negatives)``, ready for ``mean_difference`` and the other extractors.

    Example:
        >>> pos, neg = sl.answer_pairs(model, requests, refusals, compliances)
    """
    prompts = check_texts("prompts", prompts)
    positive_answers = check_texts("positive_answers", positive_answers)
    negative_answers = check_texts("negative_answers", negative_answers)
    if not len(prompts) == len(positive_answers) == len(negative_answers):
        raise SteerlensError(
            f"positive_answers, negative_answers: expected {len(prompts)} each (one per "
            f"prompt), got {len(positive_answers)} and {len(negative_answers)}"
        )
    formatted = [format_chat(model, prompt) for prompt in prompts]
    return (
        [p + a for p, a in zip(formatted, positive_answers, strict=True)],
        [p + a for p, a in zip(formatted, negative_answers, strict=True)],
    )
