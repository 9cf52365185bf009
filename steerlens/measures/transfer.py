"""Does a steering vector carry a target completion over to other prompts?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..core.batching import length_batches
from ..core.chat import format_chat
from ..core.errors import SteerlensError
from ..core.tokens import encode
from ..core.types import HookedModel
from ..core.validate import (
    check_bool,
    check_instance,
    check_int,
    check_model,
    check_number,
    check_text,
    check_texts,
    shown,
)
from ..core.vector import SteeringVector
from ..steering.context import steer
from ..steering.generation import generate
from ..steering.interventions import Intervention, add
from ..steering.interventions import clamp as clamp_to
from .logprob import completion_logprob
from .refusal import is_refusal


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
        """Summary and table, JSON-serializable."""
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
    vector = getattr(vector, "vector", vector)  # a OneShotResult holds its vector
    if not isinstance(vector, SteeringVector):
        raise SteerlensError(
            "vector: expected a SteeringVector, a OneShotResult or an sl.add/sl.clamp "
            f"intervention, got {shown(vector)}"
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
    check_instance("baseline", baseline, TransferReport, "a TransferReport")
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
    model: HookedModel,
    vector: SteeringVector | Intervention | Any,
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
        >>> rep = sl.measures.transfer_report(
        ...     model, res, held_out, "I'm sorry", clamp=res.norms[-1])
        >>> rep.summary["refusal_steered"]
    """
    check_model(model)
    prompts = check_texts("prompts", prompts)
    if not check_text("target", target).strip():
        raise SteerlensError(f"target: expected a non-empty string, got {target!r}")
    check_int("batch_size", batch_size, low=1)
    check_int("max_new_tokens", max_new_tokens, low=1)
    check_bool("chat", chat)
    check_bool("progress", progress, none=True)
    intervention = _intervention(vector, coeff, clamp)
    texts = [format_chat(model, p) for p in prompts] if chat else prompts
    if baseline is not None:
        check_instance("baseline", baseline, TransferReport, "a TransferReport")
    chunks = length_batches([len(encode(model, t, "prompts")) for t in texts], batch_size)

    def measure() -> tuple[Tensor, list[str]]:
        logprob = completion_logprob(model, texts, target, batch_size=batch_size, progress=False)
        replies = [""] * len(prompts)
        for rows in tqdm(chunks, desc="generate", disable=not progress, leave=False):
            out = generate(
                model, [prompts[i] for i in rows], max_new_tokens=max_new_tokens, chat=chat
            )
            for i, reply in zip(rows, out, strict=True):
                replies[i] = reply
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
