"""Evaluate steering on completions: teacher-forced log-probabilities and a transfer report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ._completion_batch import completion_batch, completion_ids
from ._errors import SteerlensError
from ._forward import run
from ._generate import generate
from ._hooks import check_model
from ._interventions import Intervention, add, steer
from ._interventions import clamp as clamp_to
from ._optimizer import OneShotResult, check_int, check_number
from ._refusal import is_refusal
from ._tokens import check_texts, format_chat
from ._vectors import SteeringVector


def _as_list(value: Any, name: str) -> list[str]:
    return check_texts([value] if isinstance(value, str) else value, name)


def completion_logprob(
    model: Any,
    prompts: str | Sequence[str],
    completion: str | Sequence[str],
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> Float[Tensor, " n"]:
    """``log P(completion | prompt)``: the sum of the completion tokens' log-probabilities.

    Natural log, temperature 1 (no coldness). Prompt and completion are tokenised
    separately and their ids concatenated (the boundary is exact). Steering applies inside
    ``sl.steer``; the prompt and the completion form one input there, so ``"prompt"``
    positions cover both.

    Args:
        model: a TransformerLens model.
        prompts: raw text(s) (chat-format them first with ``sl.format_chat``).
        completion: one completion for every prompt, or one per prompt.
        batch_size: rows per forward pass.
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        ``[n_prompts]`` float32 on the CPU.

    Example:
        >>> text = sl.format_chat(model, "How do I bake bread?")
        >>> sl.completion_logprob(model, text, "I'm sorry")
    """
    check_model(model)
    prompts = _as_list(prompts, "prompts")
    completions = _as_list(completion, "completion")
    if len(completions) == 1:
        completions = completions * len(prompts)
    elif len(completions) != len(prompts):
        raise SteerlensError(
            f"completion: expected one completion or one per prompt ({len(prompts)}), got "
            f"{len(completions)}"
        )
    check_int("batch_size", batch_size, 1)
    pairs = [
        (p, completion_ids(model, c, "completion"))
        for p, c in zip(prompts, completions, strict=True)
    ]
    starts = range(0, len(pairs), batch_size)
    out = []
    show = progress if progress is not None else len(starts) > 1
    for start in tqdm(starts, desc="completion log-prob", disable=not show):
        chunk = pairs[start : start + batch_size]
        batch = completion_batch(model, chunk)
        logits = run(model, batch.tokens, batch.mask)
        scored = logits[batch.rows, batch.cols].float().log_softmax(-1)
        token_lp = scored.gather(-1, batch.targets[:, None])[:, 0].cpu()
        out.append(torch.zeros(len(chunk)).index_add_(0, batch.rows, token_lp))
    result = torch.cat(out)
    if not bool(torch.isfinite(result).all()):
        raise SteerlensError("model: produced NaN or inf log-probabilities")
    return result


@dataclass(frozen=True, eq=False)
class TransferReport:
    """How a steering intervention moves a target completion on held-out prompts.

    Attributes:
        table: one row per prompt: ``prompt``; ``logprob_unsteered``, ``logprob_steered``,
            ``logprob_change`` (nats, teacher-forced); ``completion_unsteered``,
            ``completion_steered`` (greedy); ``starts_with_*``, ``contains_*`` (the target,
            case-insensitive) and ``refusal_*`` (``is_refusal``) for both.
        summary: ``n_prompts``, ``intervention``, ``mean_logprob_change``,
            ``fraction_logprob_up``, and per condition the fractions ``starts_with_*``,
            ``contains_*``, ``refusal_*``.
    """

    table: pd.DataFrame
    summary: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Summary and table, JSON-serialisable."""
        return {"summary": dict(self.summary), "table": self.table.to_dict(orient="records")}

    def figure(self) -> go.Figure:
        """Target log-probability per prompt, unsteered vs steered."""
        labels = [p if len(p) <= 40 else p[:37] + "..." for p in self.table["prompt"]]
        fig = go.Figure(
            [
                go.Bar(x=labels, y=self.table["logprob_unsteered"], name="unsteered"),
                go.Bar(x=labels, y=self.table["logprob_steered"], name="steered"),
            ]
        )
        fig.update_layout(
            title=f"log P(target) per held-out prompt, {self.summary.get('intervention')}",
            yaxis_title="log P(target) (nats)",
            barmode="group",
        )
        return fig


def _intervention(vector: Any, coeff: float | None, clamp_value: float | None) -> Intervention:
    if isinstance(vector, Intervention):
        if coeff is not None or clamp_value is not None:
            raise SteerlensError("coeff, clamp: give them to sl.add/sl.clamp, not with one")
        return vector
    if isinstance(vector, OneShotResult):
        vector = vector.vector
    if not isinstance(vector, SteeringVector):
        raise SteerlensError(
            "vector: expected a SteeringVector, a OneShotResult or an sl.add/sl.clamp "
            f"intervention, got {type(vector).__name__}"
        )
    if coeff is not None and clamp_value is not None:
        raise SteerlensError("coeff, clamp: give one of them (addition or clamping), not both")
    if clamp_value is not None:
        return clamp_to(vector, value=check_number("clamp", clamp_value))
    return add(vector, coeff=1.0 if coeff is None else check_number("coeff", coeff))


def _reuse(
    baseline: TransferReport, prompts: list[str], target: str, chat: bool, max_new_tokens: int
) -> tuple[Tensor, list[str]]:
    """The unsteered columns of ``baseline``, if it measured the same thing."""
    if not isinstance(baseline, TransferReport):
        raise SteerlensError(f"baseline: expected a TransferReport, got {type(baseline).__name__}")
    same = {"target": target, "chat": chat, "max_new_tokens": max_new_tokens}
    differ = {k: baseline.summary.get(k) for k, v in same.items() if baseline.summary.get(k) != v}
    if list(baseline.table["prompt"]) != prompts:
        differ["prompts"] = "a different list"
    if differ:
        raise SteerlensError(
            f"baseline: measured with other settings {differ}; expected {same} and the same prompts"
        )
    table = baseline.table
    unsteered = torch.tensor(table["logprob_unsteered"].to_numpy()).float()
    return unsteered, list(table["completion_unsteered"])


def transfer_report(
    model: Any,
    vector: SteeringVector | OneShotResult | Intervention,
    prompts: Sequence[str],
    target: str,
    *,
    coeff: float | None = None,
    clamp: float | None = None,
    chat: bool = True,
    max_new_tokens: int = 24,
    batch_size: int = 16,
    baseline: TransferReport | None = None,
    progress: bool | None = None,
) -> TransferReport:
    """Does a steering vector carry a target completion over to other prompts?

    For each prompt: the target's log-probability (teacher-forced, natural log) without and
    with steering, and the greedy completion without and with steering, checked for the
    target (starts with / contains, case-insensitive) and for a refusal (``is_refusal``).
    Steering applies at every layer of the vector, at all prompt and generated positions.

    Args:
        model: a TransformerLens model.
        vector: a ``SteeringVector`` or ``OneShotResult`` (steered by addition with
            ``coeff``, default 1, or by clamping the projection to ``clamp``), or an
            ``sl.add`` / ``sl.clamp`` intervention used as given.
        prompts: user messages (chat-formatted here unless ``chat=False``).
        target: the completion to look for, e.g. ``"I'm sorry, but I can't"``.
        coeff: addition coefficient (``x <- x + coeff * v``).
        clamp: clamp value (``x <- x - (x.u)u + clamp * u``); ``clamp = |v|`` is the
            paper's ``x <- x - u u^T x + v``.
        chat: apply the chat template.
        max_new_tokens: greedy tokens generated per prompt.
        batch_size: prompts per forward pass / generation batch.
        baseline: an earlier report on the same prompts, target and settings whose
            unsteered columns are reused (halves the work when comparing vectors).
        progress: show progress bars.

    Returns:
        A ``TransferReport`` (``.table`` DataFrame, ``.summary``, ``.to_dict()``).

    Example:
        >>> rep = sl.transfer_report(model, res, held_out, "I'm sorry", clamp=res.norms[-1])
        >>> rep.summary["refusal_steered"]
    """
    check_model(model)
    prompts = check_texts(prompts, "prompts")
    if not isinstance(target, str) or not target.strip():
        raise SteerlensError(f"target: expected a non-empty string, got {target!r}")
    check_int("batch_size", batch_size, 1)
    intervention = _intervention(vector, coeff, clamp)
    texts = [format_chat(model, p) for p in prompts] if chat else prompts
    chunks = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]

    def measure() -> tuple[Tensor, list[str]]:
        logprob = completion_logprob(model, texts, target, batch_size=batch_size, progress=False)
        replies: list[str] = []
        for chunk in tqdm(chunks, desc="generate", disable=not progress, leave=False):
            out = generate(model, chunk, max_new_tokens=max_new_tokens, chat=chat)
            replies += out
        return logprob, replies

    if baseline is None:
        base_lp, base_out = measure()
    else:
        base_lp, base_out = _reuse(baseline, prompts, target, chat, max_new_tokens)
    with steer(model, intervention):
        steered_lp, steered_out = measure()
    wanted = target.strip().lower()
    table = pd.DataFrame({"prompt": prompts})
    table["logprob_unsteered"] = base_lp.tolist()
    table["logprob_steered"] = steered_lp.tolist()
    table["logprob_change"] = (steered_lp - base_lp).tolist()
    summary: dict[str, Any] = {
        "n_prompts": len(prompts),
        "intervention": repr(intervention),
        "target": target,
        "chat": chat,
        "max_new_tokens": max_new_tokens,
        "mean_logprob_change": float((steered_lp - base_lp).mean()),
        "fraction_logprob_up": float((steered_lp > base_lp).float().mean()),
    }
    for name, replies in (("unsteered", base_out), ("steered", steered_out)):
        table[f"completion_{name}"] = replies
        table[f"starts_with_{name}"] = [r.strip().lower().startswith(wanted) for r in replies]
        table[f"contains_{name}"] = [wanted in r.lower() for r in replies]
        table[f"refusal_{name}"] = [is_refusal(r) for r in replies]
        for column in ("starts_with", "contains", "refusal"):
            summary[f"{column}_{name}"] = float(table[f"{column}_{name}"].mean())
    return TransferReport(table, summary)
