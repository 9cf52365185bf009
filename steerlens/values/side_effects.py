"""What the repair costs elsewhere: discrimination, helpfulness and KL on neutral text.

Side effects of each ablation: the model's own moral discrimination and its grammar /
economic discrimination (from the ratings), helpfulness on the shipped multiple-choice
questions (``sl.measures.helpfulness``, Wolf et al.'s h = P(correct)), and the KL divergence
of next-token distributions on the shipped neutral text,
``mean over tokens of KL(p_unablated || p_ablated)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..measures.choices import qa_task
from ..measures.qa_helpfulness import helpfulness
from ..steering.context import steer
from ..steering.interventions import Intervention


def helpfulness_under(
    model: Any,
    interventions: Mapping[str, Intervention],
    n_questions: int | None,
    batch_size: int,
) -> dict[str, dict[str, float]]:
    """``{"p_correct", "accuracy"}`` of ``sl.helpfulness`` on the shipped QA set, unsteered
    (``"before"``) and under each intervention (the same questions each time)."""
    task = qa_task(model, n=n_questions)
    out = {}
    for name, intervention in {"before": None, **interventions}.items():
        if intervention is None:
            result = helpfulness(model, task, batch_size=batch_size, progress=False)
        else:
            with steer(model, intervention):
                result = helpfulness(model, task, batch_size=batch_size, progress=False)
        out[name] = {"p_correct": result.p_correct, "accuracy": result.accuracy}
    return out


def side_effect_table(
    effects: pd.DataFrame, kl: Mapping[str, float], helpful: Mapping[str, Any]
) -> pd.DataFrame:
    """``measure x condition`` table of the ablation's costs (CIs where the measure has one)."""
    rows: dict[str, dict[str, float]] = {}
    measures = [
        ("moral", "moral_effect", "moral discrimination ({set})"),
        ("grammar", "target_effect", "grammar discrimination"),
        ("economic", "target_effect", "economic discrimination"),
    ]
    for dimension, statistic, label in measures:
        part = effects[(effects["dimension"] == dimension) & (effects["statistic"] == statistic)]
        for record in part.to_dict("records"):
            row = rows.setdefault(label.format(set=record["set"]), {})
            name = record["condition"]
            row[name], row[f"{name}_low"], row[f"{name}_high"] = (
                record["estimate"],
                record["ci_low"],
                record["ci_high"],
            )
    for name, value in kl.items():
        rows.setdefault("neutral KL (nats/token)", {"before": 0.0})[name] = value
    for name, result in helpful.items():
        if result is not None:
            for key in ("p_correct", "accuracy"):
                rows.setdefault(f"helpfulness {key}", {})[name] = result[key]
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("measure")
