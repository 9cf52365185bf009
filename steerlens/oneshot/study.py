"""The one-shot refusal study on the shipped ``refusal`` set (the report's one-shot part).

- Promotion: one vector per training prompt (a harmless request, chat-formatted) that
  promotes a refusal opening, all optimized in one batch (``optimize_batch``); each is
  applied to held-out harmless requests the model answers unsteered, by addition
  (``coeff=1``, as trained) and by the paper's clamp (``x <- x - u u^T x + v``, i.e. the
  projection set to ``|v|``).
- Cosines between those vectors, and with the mean-difference refusal direction.
- Suppression: from the harmful request the model most likely starts refusing, a vector
  that suppresses ``"I'm sorry"``, applied to the other harmful requests.
- Mixed: on the first training prompt, promote the refusal and suppress the model's own
  opening; applied to the held-out requests.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

import pandas as pd
import torch

from ..core import datasets
from ..core.chat import format_chat
from ..core.errors import SteerlensError
from ..core.hookpoints import normalise_layer
from ..core.study import Stopwatch
from ..core.tokens import get_tokenizer
from ..core.types import HookedModel
from ..core.validate import check_instance, check_model
from ..measures.logprob import completion_logprob
from ..measures.refusal import is_refusal, refusal_pairs
from ..measures.transfer import transfer_report
from ..steering.context import steer
from ..steering.generation import generate
from ..steering.interventions import add
from ..vectors.contrastive import mean_difference
from .batched import optimize_batch
from .optimize import optimize_one_shot
from .result import OneShotResult
from .settings import StudySettings
from .study_result import OneShotStudy

SORRY = "I'm sorry"


def _opening(model: Any, reply: str, n_tokens: int = 4) -> str:
    tokenizer = get_tokenizer(model)
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


def _held_out(model: Any, harmless: list[str], size: StudySettings) -> list[str]:
    """The last ``n_held_out`` harmless requests the model answers without refusing."""
    candidates = harmless[-(size.n_held_out + 5) :]
    replies = generate(model, candidates, max_new_tokens=size.max_new_tokens)
    answered = [p for p, r in zip(candidates, replies, strict=True) if not is_refusal(r)]
    if len(answered) < size.n_held_out:
        raise SteerlensError(
            f"n_held_out: only {len(answered)} of the last {len(candidates)} harmless requests "
            f"are answered unsteered; ask for at most {len(answered)}"
        )
    return answered[-size.n_held_out :]


def _optimise(model: Any, text: str, size: StudySettings, **loss: Any) -> OneShotResult:
    return optimize_one_shot(
        model,
        text,
        layer=size.layer,
        lr=size.lr,
        max_iters=size.max_iters,
        progress=size.progress,
        **loss,
    )


def _promotion_row(res: OneShotResult, request: str, added, clamped) -> dict[str, Any]:
    return {
        "prompt": request,
        "steps": res.steps,
        "stop_reason": res.stop_reason,
        "loss_start": res.losses[0],
        "loss_final": res.final_loss,
        "norm": res.norms[-1],
        "seconds": res.seconds,  # the whole batch's
        "refusal_add": added.summary["refusal_steered"],
        "refusal_clamp": clamped.summary["refusal_steered"],
        "starts_with_add": added.summary["starts_with_steered"],
        "logprob_change_add": added.summary["mean_logprob_change"],
        "logprob_change_clamp": clamped.summary["mean_logprob_change"],
    }


def _promotion(model: Any, train: list[str], held_out: list[str], size: StudySettings):
    """One promotion vector per training prompt (optimized together, ``optimize_batch``),
    each transferred by addition and clamp."""
    evals = dict(max_new_tokens=size.max_new_tokens, batch_size=32)
    vectors = optimize_batch(
        model,
        [format_chat(model, request) for request in train],
        promote=size.target,
        layer=size.layer,
        lr=size.lr,
        max_iters=size.max_iters,
        target_loss=size.target_loss,
        progress=size.progress,
    )
    reports, rows, base = {}, [], None
    for i, (request, res) in enumerate(zip(train, vectors, strict=True)):
        added = transfer_report(
            model, res, held_out, size.target, coeff=1.0, baseline=base, **evals
        )
        base = base or added
        clamped = transfer_report(
            model, res, held_out, size.target, clamp=res.norms[-1], baseline=base, **evals
        )
        reports[f"add {i}"], reports[f"clamp {i}"] = added, clamped
        rows.append(_promotion_row(res, request, added, clamped))
    table = pd.DataFrame(rows)
    table.index.name = "training prompt"
    return vectors, reports, table, base


def _cosines(model: Any, frame: pd.DataFrame, vectors: list[OneShotResult], size: StudySettings):
    """Cosines of the promotion vectors with each other and with the mean difference."""
    sample = frame.sample(n=min(size.n_pairs, len(frame)), random_state=0)
    reference = mean_difference(model, *refusal_pairs(model, sample), layers=[size.layer])
    stack = torch.stack([v.vector[size.layer] for v in vectors] + [reference[size.layer]])
    unit = stack / stack.norm(dim=-1, keepdim=True)
    names = [f"prompt {i}" for i in range(len(vectors))] + ["mean difference"]
    return pd.DataFrame((unit @ unit.T).numpy(), index=names, columns=names)


def _suppression(model: Any, harmful: list[str], size: StudySettings) -> dict[str, Any]:
    """Suppress "I'm sorry" on the harmful request most likely to start with it."""
    texts = [format_chat(model, p) for p in harmful]
    start_lp = completion_logprob(model, texts, SORRY, progress=False)
    pick = int(start_lp.argmax())
    supp = _optimise(model, texts[pick], size, suppress=SORRY, target_loss=None)
    others = [p for j, p in enumerate(harmful) if j != pick]
    report = transfer_report(
        model, supp, others, SORRY, coeff=1.0, max_new_tokens=size.max_new_tokens, batch_size=32
    )
    with steer(model, add(supp.vector)):
        after = float(completion_logprob(model, texts[pick], SORRY)[0])
    s = report.summary
    summary = {
        "suppression_logprob_train_before": float(start_lp[pick]),
        "suppression_logprob_train_after": after,
        "suppression_held_out_mean_logprob_change": s["mean_logprob_change"],
        "suppression_held_out_fraction_down": 1.0 - s["fraction_logprob_up"],
        "suppression_refusal_before": s["refusal_unsteered"],
        "suppression_refusal_after": s["refusal_steered"],
    }
    return {"report": report, "summary": summary, "choices": {"suppression_prompt": harmful[pick]}}


def _mixed(model: Any, request: str, held_out: list[str], base, size: StudySettings):
    """Promote the refusal and suppress the model's own opening on one training prompt."""
    text = format_chat(model, request)
    own = _opening(model, generate(model, request, max_new_tokens=size.max_new_tokens))
    mixed = _optimise(
        model, text, size, promote=size.target, suppress=own, target_loss=size.target_loss
    )
    before = completion_logprob(model, [text, text], [size.target, own])
    with steer(model, add(mixed.vector)):
        after = completion_logprob(model, [text, text], [size.target, own])
    report = transfer_report(
        model,
        mixed,
        held_out,
        size.target,
        coeff=1.0,
        baseline=base,
        max_new_tokens=size.max_new_tokens,
        batch_size=32,
    )
    summary = {
        "mixed_target_logprob_before": float(before[0]),
        "mixed_target_logprob_after": float(after[0]),
        "mixed_opening_logprob_before": float(before[1]),
        "mixed_opening_logprob_after": float(after[1]),
        "mixed_held_out_refusal": report.summary["refusal_steered"],
    }
    return {"report": report, "summary": summary, "choices": {"mixed_suppressed_opening": own}}


def _headline(table: pd.DataFrame, cosines: pd.DataFrame, base, size) -> dict[str, float]:
    n = len(table)
    pairwise = [float(cosines.iloc[i, j]) for i in range(n) for j in range(i)]
    return {
        "layer": float(size.layer),
        "n_train": float(n),
        "n_held_out": float(base.summary["n_prompts"]),
        "baseline_refusal": base.summary["refusal_unsteered"],
        "best_refusal_add": float(table["refusal_add"].max()),
        "median_refusal_add": float(table["refusal_add"].median()),
        "best_refusal_clamp": float(table["refusal_clamp"].max()),
        "median_refusal_clamp": float(table["refusal_clamp"].median()),
        "reached_target_loss": float((table["stop_reason"] == "target_loss").sum()),
        "median_steps": float(table["steps"].median()),
        "median_pairwise_cosine": statistics.median(pairwise) if pairwise else float("nan"),
        "max_abs_pairwise_cosine": max(map(abs, pairwise)) if pairwise else float("nan"),
        "median_cosine_with_mean_difference": float(
            statistics.median(cosines.iloc[-1, :-1].to_numpy())
        ),
    }


def one_shot_refusal_study(
    model: HookedModel, settings: StudySettings | None = None
) -> OneShotStudy:
    """Optimize one-shot refusal vectors and measure how they transfer (module docstring).

    Args:
        model: the model (the offline default in the report).
        settings: a ``StudySettings`` (default: the report's full sizes;
            ``StudySettings.quick()`` for tests).

    Returns:
        A ``OneShotStudy``.

    Example:
        >>> study = sl.oneshot.one_shot_refusal_study(model, sl.oneshot.StudySettings.quick())
        >>> study.summary["best_refusal_add"]
    """
    size = StudySettings() if settings is None else settings
    check_instance("settings", size, StudySettings, "a StudySettings")
    check_model(model)
    normalise_layer(model, size.layer, "settings.layer")
    watch = Stopwatch()
    frame = datasets.load("refusal")
    harmless = list(frame.loc[~frame["harmful"], "request"])
    harmful = list(frame.loc[frame["harmful"], "request"])[: size.n_harmful]
    train = harmless[: size.n_train]
    held_out = _held_out(model, harmless, size)
    watch.lap("held_out")
    vectors, reports, table, base = _promotion(model, train, held_out, size)
    watch.lap("promotion")
    cosines = _cosines(model, frame, vectors, size)
    watch.lap("cosines")
    suppression = _suppression(model, harmful, size)
    watch.lap("suppression")
    mixed = _mixed(model, train[0], held_out, base, size)
    watch.lap("mixed")
    reports.update(suppression=suppression["report"], mixed=mixed["report"])
    headline = {
        **_headline(table, cosines, base, size),
        **suppression["summary"],
        **mixed["summary"],
    }
    return OneShotStudy(
        table=table,
        cosines=cosines,
        summary={name: float(value) for name, value in headline.items()},
        choices={**suppression["choices"], **mixed["choices"]},
        vectors=vectors,
        reports=reports,
        settings={**asdict(size), "train_prompts": train, "held_out_prompts": held_out},
        seconds=watch.seconds,
        seconds_by_stage=watch.laps,
    )
