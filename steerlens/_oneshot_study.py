"""The one-shot refusal study on the shipped ``refusal`` set (the report's one-shot part).

- Promotion: one vector per training prompt (a harmless request, chat-formatted) that
  promotes a refusal opening; each is applied to held-out harmless requests the model
  answers unsteered, by addition (``coeff=1``, as trained) and by the paper's clamp
  (``x <- x - u u^T x + v``, i.e. the projection set to ``|v|``).
- Cosines between those vectors, and with the mean-difference refusal direction.
- Suppression: from the harmful request the model most likely starts refusing, a vector
  that suppresses ``"I'm sorry"``, applied to the other harmful requests.
- Mixed: on the first training prompt, promote the refusal and suppress the model's own
  opening; applied to the held-out requests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch

from . import datasets
from ._completions import TransferReport, completion_logprob, transfer_report
from ._contrastive import mean_difference
from ._errors import SteerlensError
from ._generate import generate
from ._html import Section
from ._interventions import add, steer
from ._oneshot import optimize_one_shot
from ._optimizer import OneShotResult
from ._refusal import is_refusal, refusal_pairs
from ._tokens import format_chat, get_tokenizer

FULL = dict(n_train=5, n_held_out=20, n_harmful=30, n_pairs=110, max_iters=40, max_new_tokens=16)
QUICK = dict(n_train=2, n_held_out=4, n_harmful=4, n_pairs=16, max_iters=8, max_new_tokens=8)


@dataclass(frozen=True, eq=False)
class OneShotStudy:
    """Results of ``one_shot_refusal_study`` (see the module docstring).

    Attributes:
        table: one row per promotion vector (training prompt, steps, stop reason, loss,
            norm, held-out refusal rates by addition and by clamp, log-prob change).
        cosines: pairwise cosines of the promotion vectors, plus the mean-difference row.
        summary: headline numbers (best and median refusal rates, baseline, cosines,
            suppression and mixed log-prob changes).
        vectors: the promotion results, in training-prompt order.
        reports: the transfer reports (``"add i"``, ``"clamp i"``, ``"suppression"``,
            ``"mixed"``).
        settings: every setting used.
        seconds: wall time.
    """

    table: pd.DataFrame
    cosines: pd.DataFrame
    summary: Mapping[str, Any]
    vectors: Sequence[OneShotResult]
    reports: Mapping[str, TransferReport]
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serialisable."""
        return {
            "summary": dict(self.summary),
            "table": self.table.to_dict(orient="records"),
            "cosines": {str(k): v for k, v in self.cosines.to_dict(orient="index").items()},
            "vectors": [v.to_dict() for v in self.vectors],
            "reports": {k: r.to_dict() for k, r in self.reports.items()},
            "settings": dict(self.settings),
            "seconds": self.seconds,
        }

    def figures(self) -> list[go.Figure]:
        """Loss curves, held-out refusal rate per vector, and the cosine matrix."""
        losses = go.Figure(
            [
                go.Scatter(y=v.losses, mode="lines+markers", name=f"prompt {i}")
                for i, v in enumerate(self.vectors)
            ]
        )
        losses.update_layout(
            title="Promotion loss per step, one vector per training prompt",
            xaxis_title="step",
            yaxis_title="loss (nats, coldness 0.7)",
        )
        rates = go.Figure(
            [
                go.Bar(x=self.table.index.astype(str), y=self.table[col], name=name)
                for col, name in (("refusal_add", "addition"), ("refusal_clamp", "clamp"))
            ]
        )
        rates.add_hline(y=self.summary["baseline_refusal"], line_dash="dot")
        rates.update_layout(
            title=f"Held-out refusal rate ({self.summary['n_held_out']} harmless requests)",
            xaxis_title="training prompt",
            yaxis_title="fraction refused",
            yaxis_range=[0, 1.05],
        )
        cos = go.Figure(
            go.Heatmap(
                z=self.cosines.to_numpy(),
                x=list(map(str, self.cosines.columns)),
                y=list(map(str, self.cosines.index)),
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
            )
        )
        cos.update_layout(title="Cosine similarity of the one-shot vectors")
        return [losses, rates, cos]

    def sections(self) -> list[Section]:
        """The study as report sections."""
        s = self.summary
        text = (
            f"One promotion vector per training prompt at layer {self.settings['layer']}; "
            f"held-out refusal rate by addition: best {s['best_refusal_add']:.2f}, median "
            f"{s['median_refusal_add']:.2f}; by clamp: best {s['best_refusal_clamp']:.2f}, "
            f"median {s['median_refusal_clamp']:.2f} (unsteered {s['baseline_refusal']:.2f}); "
            f"median pairwise cosine {s['median_pairwise_cosine']:.3f}; run took "
            f"{self.seconds:.0f} s."
        )
        extra = pd.DataFrame(
            [{k: v for k, v in s.items() if k.startswith(("suppression", "mixed"))}]
        ).T.rename(columns={0: "value"})
        return [
            Section(
                "One-shot optimised refusal vectors",
                [text],
                [self.table.drop(columns="prompt"), self.cosines.round(3), extra],
                self.figures(),
            )
        ]


def _opening(model: Any, reply: str, n_tokens: int = 4) -> str:
    tokenizer = get_tokenizer(model)
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


def one_shot_refusal_study(
    model: Any,
    *,
    quick: bool = False,
    layer: int = 12,
    target: str = "I'm sorry, but I can't",
    lr: float = 0.1,
    target_loss: float | None = 0.5,
    progress: bool | None = None,
    **sizes: int,
) -> OneShotStudy:
    """Optimise one-shot refusal vectors and measure how they transfer (module docstring).

    Args:
        model: the model (the offline default in the report).
        quick: small sizes for tests (2 training prompts, 6 held-out, 15 steps).
        layer: where the vectors are added.
        target: the refusal opening to promote.
        lr: Adam learning rate.
        target_loss: promotion stops once the loss is below this.
        progress: show progress bars.
        **sizes: override ``n_train``, ``n_held_out``, ``n_harmful``, ``max_iters``,
            ``max_new_tokens``.

    Returns:
        A ``OneShotStudy``.
    """
    started = time.perf_counter()
    unknown = set(sizes) - set(FULL)
    if unknown:
        raise SteerlensError(f"sizes: unknown {sorted(unknown)}; valid: {sorted(FULL)}")
    size = {**(QUICK if quick else FULL), **sizes}
    frame = datasets.load("refusal")
    harmless = list(frame.loc[~frame["harmful"], "request"])
    harmful = list(frame.loc[frame["harmful"], "request"])[: size["n_harmful"]]
    train = harmless[: size["n_train"]]
    gen = dict(max_new_tokens=size["max_new_tokens"])
    evals = dict(gen, batch_size=32)  # one generation batch for 20 held-out prompts
    candidates = harmless[-(size["n_held_out"] + 5) :]
    answered = [
        p
        for p, r in zip(candidates, generate(model, candidates, **gen), strict=True)
        if not is_refusal(r)
    ]
    if len(answered) < size["n_held_out"]:
        raise SteerlensError(f"n_held_out: only {len(answered)} held-out requests are answered")
    held_out = answered[-size["n_held_out"] :]
    timings = {"held_out": time.perf_counter() - started}
    opt = dict(layer=layer, lr=lr, max_iters=size["max_iters"], progress=progress)

    vectors, reports, rows = [], {}, []
    base = None
    for i, request in enumerate(train):
        res = optimize_one_shot(
            model, format_chat(model, request), target, target_loss=target_loss, **opt
        )
        vectors.append(res)
        rep_add = transfer_report(model, res, held_out, target, coeff=1.0, baseline=base, **evals)
        base = base or rep_add
        rep_clamp = transfer_report(
            model, res, held_out, target, clamp=res.norms[-1], baseline=base, **evals
        )
        reports[f"add {i}"], reports[f"clamp {i}"] = rep_add, rep_clamp
        rows.append(
            {
                "prompt": request,
                "steps": res.steps,
                "stop_reason": res.stop_reason,
                "loss_start": res.losses[0],
                "loss_final": res.final_loss,
                "norm": res.norms[-1],
                "seconds": res.seconds,
                "refusal_add": rep_add.summary["refusal_steered"],
                "refusal_clamp": rep_clamp.summary["refusal_steered"],
                "starts_with_add": rep_add.summary["starts_with_steered"],
                "logprob_change_add": rep_add.summary["mean_logprob_change"],
                "logprob_change_clamp": rep_clamp.summary["mean_logprob_change"],
            }
        )
    table = pd.DataFrame(rows)
    table.index.name = "training prompt"
    timings["promotion"] = time.perf_counter() - started - sum(timings.values())

    pairs = refusal_pairs(model, frame.sample(n=min(size["n_pairs"], len(frame)), random_state=0))
    reference = mean_difference(model, *pairs, layers=[layer])
    stack = torch.stack([v.vector[layer] for v in vectors] + [reference[layer]])
    unit = stack / stack.norm(dim=-1, keepdim=True)
    names = [f"prompt {i}" for i in range(len(vectors))] + ["mean difference"]
    cosines = pd.DataFrame((unit @ unit.T).numpy(), index=names, columns=names)
    pairwise = [float(cosines.iloc[i, j]) for i in range(len(vectors)) for j in range(i)]
    with_reference = cosines.iloc[-1, :-1].to_numpy()

    timings["cosines"] = time.perf_counter() - started - sum(timings.values())

    # Suppression: harmful request most likely to start with "I'm sorry" -> suppress it.
    harmful_texts = [format_chat(model, p) for p in harmful]
    sorry = "I'm sorry"
    start_lp = completion_logprob(model, harmful_texts, sorry, progress=False)
    pick = int(start_lp.argmax())
    supp = optimize_one_shot(model, harmful_texts[pick], suppress=sorry, target_loss=None, **opt)
    others = [p for j, p in enumerate(harmful) if j != pick]
    reports["suppression"] = transfer_report(model, supp, others, sorry, coeff=1.0, **evals)
    with steer(model, add(supp.vector)):
        supp_train = float(completion_logprob(model, harmful_texts[pick], sorry)[0])

    timings["suppression"] = time.perf_counter() - started - sum(timings.values())

    # Mixed: promote the refusal and suppress the model's own opening on one prompt.
    text = format_chat(model, train[0])
    own = _opening(model, generate(model, train[0], **gen))
    mixed = optimize_one_shot(model, text, target, own, target_loss=target_loss, **opt)
    before = completion_logprob(model, [text, text], [target, own])
    with steer(model, add(mixed.vector)):
        after = completion_logprob(model, [text, text], [target, own])
    reports["mixed"] = transfer_report(
        model, mixed, held_out, target, coeff=1.0, baseline=base, **evals
    )

    timings["mixed"] = time.perf_counter() - started - sum(timings.values())
    sup = reports["suppression"].summary
    summary = {
        "layer": layer,
        "n_train": len(train),
        "n_held_out": len(held_out),
        "baseline_refusal": base.summary["refusal_unsteered"],
        "best_refusal_add": float(table["refusal_add"].max()),
        "median_refusal_add": float(table["refusal_add"].median()),
        "best_refusal_clamp": float(table["refusal_clamp"].max()),
        "median_refusal_clamp": float(table["refusal_clamp"].median()),
        "reached_target_loss": int((table["stop_reason"] == "target_loss").sum()),
        "median_steps": float(table["steps"].median()),
        "median_pairwise_cosine": statistics.median(pairwise) if pairwise else float("nan"),
        "max_abs_pairwise_cosine": max(map(abs, pairwise)) if pairwise else float("nan"),
        "median_cosine_with_mean_difference": float(statistics.median(with_reference)),
        "suppression_prompt": harmful[pick],
        "suppression_logprob_train_before": float(start_lp[pick]),
        "suppression_logprob_train_after": supp_train,
        "suppression_held_out_mean_logprob_change": sup["mean_logprob_change"],
        "suppression_held_out_fraction_down": 1.0 - sup["fraction_logprob_up"],
        "suppression_refusal_before": sup["refusal_unsteered"],
        "suppression_refusal_after": sup["refusal_steered"],
        "mixed_suppressed_opening": own,
        "mixed_target_logprob_before": float(before[0]),
        "mixed_target_logprob_after": float(after[0]),
        "mixed_opening_logprob_before": float(before[1]),
        "mixed_opening_logprob_after": float(after[1]),
        "mixed_held_out_refusal": reports["mixed"].summary["refusal_steered"],
    }
    settings = {"layer": layer, "target": target, "lr": lr, "target_loss": target_loss, **size}
    settings["quick"] = quick
    settings["stage_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    settings["train_prompts"], settings["held_out_prompts"] = train, held_out
    return OneShotStudy(
        table, cosines, summary, vectors, reports, settings, round(time.perf_counter() - started, 1)
    )
