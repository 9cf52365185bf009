"""Repair by ablating the morality direction, and what it costs elsewhere.

Two ablation directions per layer ``l`` (rank 1, all positions, ``resid_pre``):

- ``plain``: the moral direction ``m_l`` itself;
- ``selective``: only the part of ``m_l`` orthogonal to the span of the grammatical and
  economic directions, ``m_l - P_{span(g_l, e_l)} m_l``, so that the grammatical and economic
  directions are left intact.

Side effects measured by the report: the model's own moral discrimination and its grammar /
economic discrimination (from the ratings), helpfulness on the shipped multiple-choice
questions (``sl.helpfulness``, Wolf et al.'s h = P(correct)), and the KL divergence of
next-token distributions on neutral text, ``mean over tokens of KL(p_unablated || p_ablated)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ._choices import qa_task
from ._errors import SteerlensError
from ._forward import run
from ._helpfulness import helpfulness
from ._hooks import model_name
from ._interventions import Intervention, steer
from ._tokens import check_texts, encode, left_pad
from ._values_data import TARGETS
from ._vectors import SteeringVector

# Plain descriptive prose with no moral, grammatical-judgement or financial content.
NEUTRAL_TEXTS = (
    "The river runs north through a wide valley before it reaches the sea. In spring the "
    "water rises and covers the low fields along its banks.",
    "To make a pot of tea, boil fresh water, warm the pot, add one spoon of leaves for each "
    "cup and let it stand for four minutes.",
    "The library opens at nine in the morning and closes at six. The reading room is on the "
    "second floor, next to the map collection.",
    "Most maple trees lose their leaves in autumn. The leaves turn yellow, orange or red "
    "before they fall, depending on the weather.",
    "The train leaves the central station every half hour. The journey to the coast takes "
    "about two hours and passes through several small towns.",
    "A triangle has three sides and three angles. The angles of any triangle add up to one "
    "hundred and eighty degrees.",
    "The museum has a large collection of old clocks. Some of them still work and strike "
    "the hour together at noon.",
    "In the mountains the air is thin and cold. Snow stays on the highest peaks for most of "
    "the year, even in summer.",
    "Bread is made from flour, water, salt and yeast. The dough rises for a few hours before "
    "it is shaped and baked in a hot oven.",
    "The city has two bridges across the river. The older one is made of stone and the newer "
    "one of steel and glass.",
    "Owls hunt mostly at night. Their large eyes and soft feathers help them find small "
    "animals in the dark without being heard.",
    "The garden has a small pond with a few fish. Around it grow tall grasses, ferns and a "
    "row of blue flowers.",
    "The first chapter of the book describes a village by the lake. The second chapter moves "
    "to the city where the family later lives.",
    "Water freezes at zero degrees Celsius and boils at one hundred degrees at sea level. "
    "At high altitude it boils at a lower temperature.",
    "The road climbs slowly through the forest. After an hour it reaches a pass with a view "
    "of the valley on the other side.",
    "The market is held on the main square every Saturday. People come early to look at the "
    "fruit, the vegetables and the flowers.",
)


def moral_vectors(
    directions: Mapping[str, Float[Tensor, "layer d_model"]],
    layers: Sequence[int],
    ablate_layers: Sequence[int],
    model: Any,
    data_hash: str | None = None,
    position: str = "mean",
) -> dict[str, SteeringVector]:
    """``{"plain": ..., "selective": ...}`` moral directions at ``ablate_layers``.

    Args:
        directions: from ``attribute_directions``; rows follow ``layers``.
        layers: the layer of each row.
        ablate_layers: where the vectors live (a subset of ``layers``).
        model: the model (for the name in the vectors' metadata).
        data_hash: hash of the stimuli, kept in the vectors.
        position: how the item residuals were pooled, kept in the vectors.
    """
    missing = [layer for layer in ablate_layers if layer not in layers]
    if missing or not ablate_layers:
        raise SteerlensError(
            f"ablate_layers: {list(ablate_layers)} must be a non-empty subset of the analysed "
            f"layers {list(layers)}"
        )
    others = [name for name in TARGETS if name in directions]
    plain, selective = {}, {}
    for layer in ablate_layers:
        row = list(layers).index(layer)
        moral = directions["moral"][row].double()
        basis, _ = torch.linalg.qr(torch.stack([directions[n][row].double() for n in others]).T)
        plain[layer] = moral.float()
        selective[layer] = (moral - basis @ (basis.T @ moral)).float()
    meta = {"model_name": model_name(model), "data_hash": data_hash, "position": str(position)}
    return {
        "plain": SteeringVector(
            plain, method="value_moral_direction", params={"variant": "plain"}, **meta
        ),
        "selective": SteeringVector(
            selective,
            method="value_moral_direction",
            params={"variant": "selective", "orthogonal_to": others},
            **meta,
        ),
    }


def _log_probs(model: Any, tokens: Tensor, mask: Tensor) -> Tensor:
    return torch.log_softmax(run(model, tokens, mask).double(), dim=-1)


def neutral_kl(
    model: Any,
    interventions: Mapping[str, Intervention],
    texts: Sequence[str] = NEUTRAL_TEXTS,
    *,
    batch_size: int = 8,
    progress: bool | None = None,
) -> dict[str, float]:
    """Mean over real tokens of ``KL(p_base || p_steered)`` (nats), per intervention.

    The unsteered distributions are computed once per batch and compared with each steered
    run of the same batch.
    """
    texts = check_texts(texts)
    encoded = [encode(model, text) for text in texts]
    totals = dict.fromkeys(interventions, 0.0)
    count = 0
    batches = range(0, len(encoded), batch_size)
    for start in tqdm(batches, desc="neutral KL", disable=not progress):
        tokens, mask = left_pad(model, encoded[start : start + batch_size])
        base = _log_probs(model, tokens, mask)
        real = mask.to(base.device)
        count += int(real.sum())
        for name, intervention in interventions.items():
            with steer(model, intervention):
                steered = _log_probs(model, tokens, mask)
            kl = (base.exp() * (base - steered)).sum(-1)
            totals[name] += float(kl[real].sum())
    return {name: total / count for name, total in totals.items()}


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


AUTO_AUROC = 0.75


def choose_ablate_layers(
    ablate_layers: Any, auroc: pd.DataFrame, layers: list[int]
) -> tuple[list[int], str]:
    """Resolve ``ablate_layers`` (``"auto"``, ``"all"`` or layer indices) and say why."""
    if isinstance(ablate_layers, str) and ablate_layers == "auto":
        score = auroc["moral→moral"]
        reached = [layer for layer in layers if score[layer] >= AUTO_AUROC]
        if reached:
            chosen = [layer for layer in layers if layer >= reached[0]]
            return chosen, (
                f"auto: every analysed layer from {reached[0]}, the first where the moral "
                f"direction scores held-out moral labels with AUROC >= {AUTO_AUROC}, to the last"
            )
        best = int(score.idxmax())
        return [best], (
            f"auto: no layer reaches held-out moral AUROC {AUTO_AUROC}; the best layer "
            f"({best}, AUROC {score[best]:.2f}) only"
        )
    if isinstance(ablate_layers, str) and ablate_layers == "all":
        return list(layers), "all analysed layers"
    if isinstance(ablate_layers, str):
        raise SteerlensError(
            f"ablate_layers: expected 'auto', 'all' or a list of layers, got {ablate_layers!r}"
        )
    chosen = [ablate_layers] if isinstance(ablate_layers, int) else list(ablate_layers)
    outside = [layer for layer in chosen if layer not in layers]
    if not chosen or outside:
        raise SteerlensError(
            f"ablate_layers: {chosen} must be a non-empty subset of the analysed layers {layers}"
        )
    return sorted(set(chosen)), "chosen by the caller"


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
