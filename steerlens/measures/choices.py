"""Multiple choice read from the next-token distribution: tasks, prompt formats, helpfulness.

Helpfulness in the sense of Wolf et al.: ``h = P(correct answer | q)``,
normalized over the candidate answers (the paper normalizes over A-D). One forward row per
question, so coefficient sweeps stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..core import datasets
from ..core.errors import SteerlensError
from ..core.tokens import get_tokenizer
from ..core.validate import check_texts
from .qa_formats import DEFAULT_FORMAT, FORMATS, Format


@dataclass(frozen=True, eq=False)
class ChoiceTask:
    """Next-token multiple choice: per prompt, the candidate tokens and the correct one.

    Attributes:
        prompts: raw texts (chat-formatted), each ending right before the answer token.
        choice_ids: ``[n, n_choices]`` token id of each candidate answer (distinct per row).
        correct: ``[n]`` index into ``choice_ids`` of the right answer.
        ids: optional name of each question (default ``"0"``, ``"1"``, ...).
        topics: optional topic of each question (default ``""``).
        choices: optional text of each candidate, ``n`` lists of ``n_choices`` strings.

    Example:
        >>> task = sl.measures.ChoiceTask(
        ...     prompts=[sl.format_chat(model, "2 + 2 = ? A. 3 B. 4") + "Answer:"],
        ...     choice_ids=torch.tensor([[330, 389]]),  # " A", " B"
        ...     correct=torch.tensor([1]),
        ... )
    """

    prompts: list[str]
    choice_ids: Int[Tensor, "n n_choices"]
    correct: Int[Tensor, " n"]
    ids: list[str] | None = None
    topics: list[str] | None = None
    choices: list[list[str]] | None = None

    def __post_init__(self) -> None:
        prompts, choice_ids, correct = _validate(self.prompts, self.choice_ids, self.correct)
        n, k = choice_ids.shape
        ids = [str(i) for i in range(n)] if self.ids is None else list(self.ids)
        topics = [""] * n if self.topics is None else list(self.topics)
        choices = None if self.choices is None else [list(map(str, c)) for c in self.choices]
        for name, values in (("ids", ids), ("topics", topics), ("choices", choices)):
            if values is not None and len(values) != n:
                raise SteerlensError(
                    f"{name}: expected {n} entries (one per prompt), got {len(values)}"
                )
        if len(set(ids)) != n:
            raise SteerlensError("ids: expected distinct question ids, got duplicates")
        if choices is not None and any(len(c) != k for c in choices):
            raise SteerlensError(f"choices: expected {k} texts per question (n_choices)")
        object.__setattr__(self, "prompts", prompts)
        object.__setattr__(self, "choice_ids", choice_ids)
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "topics", topics)
        object.__setattr__(self, "choices", choices)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def n_choices(self) -> int:
        return int(self.choice_ids.shape[1])

    def __repr__(self) -> str:
        return f"ChoiceTask(n={len(self)}, n_choices={self.n_choices})"

    def probabilities(self, logits: Float[Tensor, "n d_vocab"]) -> Float[Tensor, "n n_choices"]:
        """Softmax over the candidates' logits (normalized over the choices, not the vocab).

        Args:
            logits: ``[n, d_vocab]`` next-token logits at the end of each prompt.

        Returns:
            ``[n, n_choices]`` probabilities, each row summing to 1.
        """
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            raise SteerlensError(f"logits: expected a [n, d_vocab] tensor, got {_shape(logits)}")
        if logits.shape[0] != len(self):
            raise SteerlensError(
                f"logits: expected {len(self)} rows (one per prompt), got {logits.shape[0]}"
            )
        top = int(self.choice_ids.max())
        if logits.shape[1] <= top:
            raise SteerlensError(
                f"logits: d_vocab {logits.shape[1]} is too small for candidate token id {top}"
            )
        chosen = logits.gather(1, self.choice_ids.to(logits.device)).float()
        if not bool(torch.isfinite(chosen).all()):
            raise SteerlensError("logits: the candidates' logits contain NaN or inf")
        return chosen.softmax(-1)


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__


def _validate(prompts: Any, choice_ids: Any, correct: Any) -> tuple[list[str], Tensor, Tensor]:
    """Check a task's three core fields; return them cleaned (lists, CPU long tensors)."""
    prompts = check_texts("prompts", prompts)
    for name, value, ndim in (("choice_ids", choice_ids, 2), ("correct", correct, 1)):
        if not isinstance(value, Tensor) or value.ndim != ndim:
            want = "[n, n_choices]" if ndim == 2 else "[n]"
            raise SteerlensError(f"{name}: expected a {want} tensor, got {_shape(value)}")
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise SteerlensError(f"{name}: expected integer token ids/indices, got {value.dtype}")
    n = len(prompts)
    if choice_ids.shape[0] != n or correct.shape[0] != n:
        raise SteerlensError(
            f"choice_ids, correct: expected {n} rows (one per prompt), got choice_ids "
            f"{tuple(choice_ids.shape)} and correct {tuple(correct.shape)}"
        )
    k = choice_ids.shape[1]
    if k < 2:
        raise SteerlensError(f"choice_ids: expected at least 2 candidates per row, got {k}")
    choice_ids = choice_ids.detach().to("cpu", torch.long).clone()
    correct = correct.detach().to("cpu", torch.long).clone()
    if bool((choice_ids < 0).any()):
        raise SteerlensError("choice_ids: token ids must be >= 0")
    repeated = [i for i, row in enumerate(choice_ids.tolist()) if len(set(row)) != k]
    if repeated:
        raise SteerlensError(
            f"choice_ids: row {repeated[0]} repeats a token id {choice_ids[repeated[0]].tolist()};"
            " each candidate needs its own token"
        )
    out = [i for i, c in enumerate(correct.tolist()) if not 0 <= c < k]
    if out:
        raise SteerlensError(
            f"correct: row {out[0]} has {int(correct[out[0]])}, expected an index in 0..{k - 1}"
        )
    return prompts, choice_ids, correct


def _first_token(model: Any, text: str) -> int:
    ids = get_tokenizer(model)(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise SteerlensError(f"choices: {text!r} tokenizes to nothing")
    return int(ids[0])


def _rows(frame: pd.DataFrame, n: int | None) -> pd.DataFrame:
    missing = {"question", "choices", "answer"} - set(frame.columns)
    if missing:
        raise SteerlensError(
            f"source: expected columns question, choices, answer (and optionally id, topic); "
            f"missing {sorted(missing)}"
        )
    if n is None:
        return frame
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(frame):
        raise SteerlensError(f"n: expected an int in 1..{len(frame)}, got {n!r}")
    # evenly spaced, so a small n still covers every topic of a topic-ordered file
    keep = np.unique(np.linspace(0, len(frame) - 1, n).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def qa_task(
    model: Any,
    source: Any = "qa",
    *,
    n: int | None = None,
    prompt_format: str | Format = DEFAULT_FORMAT,
) -> ChoiceTask:
    """Build a ``ChoiceTask`` from multiple-choice questions.

    Each question becomes one chat prompt ending right before the answer token; the
    candidates are the first tokens of the answers the format defines. Formats:

    - ``"fewshot"`` (default): three worked examples as earlier chat turns, then the bare
      question; the reply is prefilled with ``Answer:`` and the candidates are the option
      words after a space. The default model answers it best.
    - ``"answer"``: the same without the examples (shorter prompts, cheaper sweeps).
    - ``"cloze"``: the bare question; the reply starts with the capitalized option word.
    - ``"words"``: options listed in the question; the reply starts with the option word.
    - ``"letters"``: options lettered A-D; the reply starts with the letter.

    The 135M default model is at chance with letters and copies the first listed option
    when options are shown, so the formats that score best show no options: the answer is
    read as which of the four option words the model would say. Measured accuracies of
    every format are on the docs page *Helpfulness*.

    Args:
        model: a TransformerLens model with a chat template.
        source: a shipped dataset name (default ``"qa"``), a JSONL/CSV path or a DataFrame
            with columns ``question``, ``choices`` (list of strings), ``answer`` (index),
            and optionally ``id`` and ``topic``.
        n: use ``n`` questions spread evenly over the set (default: all).
        prompt_format: ``"fewshot"``, ``"answer"``, ``"cloze"``, ``"words"``, ``"letters"``,
            or a callable ``(model, question, choices) -> (prompt, answer strings)``.

    Returns:
        The task (first tokens must be distinct within each question, else a clear error).

    Example:
        >>> task = sl.measures.qa_task(model, n=40)
        >>> sl.measures.helpfulness(model, task).accuracy
    """
    if isinstance(prompt_format, str):
        if prompt_format not in FORMATS:
            raise SteerlensError(
                f"prompt_format: expected one of {list(FORMATS)} or a callable, got "
                f"{prompt_format!r}"
            )
        build = FORMATS[prompt_format]
    elif callable(prompt_format):
        build = prompt_format
    else:
        raise SteerlensError(f"prompt_format: expected a name or a callable, got {prompt_format!r}")
    frame = _rows(datasets.load(source), n)
    prompts, ids, correct, choices = [], [], [], []
    for row, record in enumerate(frame.to_dict("records")):
        name = str(record.get("id", row))
        options = record["choices"]
        if isinstance(options, str) or not isinstance(options, Sequence | np.ndarray):
            raise SteerlensError(
                f"choices: question {name!r} needs a list of strings, got {options!r}"
            )
        options = [str(o) for o in options]
        prompt, answers = build(model, str(record["question"]), options)
        if isinstance(answers, str) or len(answers) != len(options):
            raise SteerlensError(
                f"prompt_format: returned {answers!r} for the {len(options)} options of "
                f"question {name!r}; expected one answer string per option"
            )
        tokens = [_first_token(model, a) for a in answers]
        if len(set(tokens)) != len(tokens):
            pieces = [get_tokenizer(model).decode([t]) for t in tokens]
            raise SteerlensError(
                f"choices: question {name!r} has answers {answers} whose first tokens "
                f"{pieces} are not distinct; reword the options"
            )
        prompts.append(prompt)
        ids.append(tokens)
        correct.append(record["answer"])
        choices.append(options)
    widths = {len(c) for c in choices}
    if len(widths) > 1:
        raise SteerlensError(
            f"choices: every question needs the same number of options, got {sorted(widths)}"
        )
    answers = [a for a in correct if isinstance(a, bool) or not isinstance(a, int | np.integer)]
    if answers:
        raise SteerlensError(f"answer: expected integer indices, got {answers[0]!r}")
    return ChoiceTask(
        prompts=prompts,
        choice_ids=torch.tensor(ids, dtype=torch.long),
        correct=torch.tensor([int(a) for a in correct], dtype=torch.long),
        ids=[str(r.get("id", i)) for i, r in enumerate(frame.to_dict("records"))],
        topics=[str(t) for t in frame["topic"]] if "topic" in frame else None,
        choices=choices,
    )
