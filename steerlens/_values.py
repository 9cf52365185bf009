"""``sl.value_entanglement``: does the model's moral value leak into other kinds of value?

Design after Cho, Li & Leshinskaya (2026), "Value entanglement: conflation between different
kinds of good in (some) LLMs"; their stimuli and code are not public, so steerlens ships its
own stimuli and measures (``docs/methods/values.md`` documents every choice).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ._errors import SteerlensError
from ._hooks import check_model, normalise_layers
from ._interventions import Intervention, ablate, steer
from ._values_data import check_dimensions, load_stimuli, subsample
from ._values_ratings import RatingPrompt, rating_tables, resolve_prompts
from ._values_repair import (
    choose_ablate_layers,
    helpfulness_under,
    moral_vectors,
    neutral_kl,
    side_effect_table,
)
from ._values_report import ValueEntanglement
from ._values_repr import (
    attribute_directions,
    cosine_table,
    cross_fitted_projections,
    item_activations,
    prediction_tables,
    projection_table,
)
from ._values_stats import value_leakage
from ._vectors import SteeringVector, data_hash

CONDITIONS = {"after": "plain", "after_selective": "selective"}
# settings for `steerlens report` (a third of the frames, within its time budget) and for
# `steerlens report --quick` / the integration test; value_entanglement's defaults use all items
REPORT_SETTINGS = {"max_frames": 16, "n_questions": 60}
QUICK_SETTINGS = {
    "max_frames": 4,
    "layers": [0, 4, 8, 12, 16, 20, 24, 29],
    "k_folds": 2,
    "n_questions": 12,
    "n_boot": 500,
}


def _check_counts(**counts: tuple[Any, int]) -> None:
    """Refuse non-integers and integers below their minimum, before any model work."""
    for name, (value, minimum) in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SteerlensError(f"{name}: expected an int >= {minimum}, got {value!r}")


def value_entanglement(
    model: Any,
    stimuli: Any = None,
    *,
    dimensions: Sequence[str] = ("grammar", "economic"),
    layers: int | Sequence[int] | str = "all",
    ablate_layers: int | Sequence[int] | str = "auto",
    position: str = "mean",
    prompts: Mapping[str, RatingPrompt] | None = None,
    max_frames: int | None = None,
    helpfulness: bool = True,
    n_questions: int | None = None,
    n_boot: int = 2000,
    k_folds: int = 4,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> ValueEntanglement:
    """Measure value entanglement and repair it by ablating the morality direction.

    1. **Representations**: each item is read alone at every analysed layer (``resid_pre``,
       mean over its tokens without BOS); attribute directions (good minus bad, balanced over
       the other factor) for moral, grammatical and economic value; their cosines per layer;
       held-out (frame cross-fitted) projections, their correlations, and how well each
       direction predicts each label (AUROC).
    2. **Behaviour**: the model rates every item on its set's target (grammar or economics)
       and on moral value, from next-token probabilities (``sl.value_ratings``).
    3. **Leakage**: the moral main effect on the grammar / economic rating, with the target
       controlled, and a frame-bootstrap CI (``sl.value_leakage``); 0 is the normative target.
    4. **Repair**: the same ratings with the moral direction ablated (rank 1 per layer, all
       positions) at ``ablate_layers`` (``after``), and with only its part orthogonal to the
       grammatical and economic directions ablated (``after_selective``).
    5. **Side effects**: moral / grammar / economic discrimination, helpfulness on the shipped
       multiple-choice questions (``sl.helpfulness``), KL on neutral text.

    Args:
        model: a TransformerLens model with a chat template.
        stimuli: ``None`` (the shipped ``"values"`` set), a name, a JSONL/CSV path or a
            DataFrame with ``id, text, set, moral`` and ``grammar`` / ``economic`` labels.
        dimensions: target dimensions: ``"grammar"`` and/or ``"economic"``.
        layers: layers to analyse (``"all"``: every ``resid_pre``; 0 is the embedding).
        ablate_layers: ``"auto"`` (every analysed layer from the first where the moral
            direction predicts held-out moral labels with AUROC >= 0.75: ablate from where
            moral value is linearly readable to the end), ``"all"``, or layer indices.
        position: how an item's residual is pooled (``"mean"`` without BOS, ``"last"``, ...).
        prompts: replacement ``sl.RatingPrompt`` per dimension.
        max_frames: at most this many frames per set (seeded subsample; quick runs).
        helpfulness: measure helpfulness (``sl.helpfulness`` on the shipped ``qa`` set)
            before and after each ablation.
        n_questions: number of QA questions for helpfulness (default: all).
        n_boot: bootstrap draws for the CIs.
        k_folds: folds (by frame) for the held-out projections.
        seed: seed of the subsample, folds and bootstrap.
        batch_size: texts per forward pass.
        progress: show progress bars.

    Returns:
        A ``ValueEntanglement`` (``.leakage``, ``.side_effects``, ``.cosines``, ``.auroc``,
        figures, ``.to_dict()``).

    Example:
        >>> ent = sl.value_entanglement(model)
        >>> ent.leakage[["before", "before_low", "before_high", "after"]]
        >>> ent.leakage_figure()
    """
    check_model(model)
    _check_counts(n_boot=(n_boot, 100), k_folds=(k_folds, 2), batch_size=(batch_size, 1))
    if n_questions is not None:
        _check_counts(n_questions=(n_questions, 1))
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    dimensions = check_dimensions(dimensions)
    items = subsample(load_stimuli(stimuli, dimensions), max_frames, seed)
    layers = normalise_layers(model, layers)
    chosen_prompts = resolve_prompts(prompts)
    stages = tqdm(total=5, desc="value entanglement", unit="stage", disable=not progress)
    inner = False  # one bar over the stages; the stages' own bars would nest

    tick = time.perf_counter()
    acts = item_activations(
        model, items, layers, position=position, batch_size=batch_size, progress=inner
    )
    directions = attribute_directions(acts, items)
    cosines = cosine_table(directions, layers)
    auroc, correlations = prediction_tables(
        cross_fitted_projections(acts, items, k=k_folds, seed=seed), items, layers
    )
    chosen, rule = choose_ablate_layers(ablate_layers, auroc, layers)
    hashed = data_hash(list(items["id"]), list(items["text"]))
    vectors = moral_vectors(directions, layers, chosen, model, hashed, position)
    interventions: dict[str, Intervention] = {
        condition: ablate(vectors[variant]) for condition, variant in CONDITIONS.items()
    }
    seconds["representations"] = time.perf_counter() - tick
    stages.update()

    tick = time.perf_counter()
    ratings = rating_tables(model, items, chosen_prompts, interventions, batch_size, inner)
    effects = value_leakage(ratings, n_boot=n_boot, seed=seed)
    seconds["ratings"] = time.perf_counter() - tick
    stages.update()

    tick = time.perf_counter()
    kl = neutral_kl(model, interventions)
    helpful = (
        helpfulness_under(model, interventions, n_questions, batch_size) if helpfulness else {}
    )
    side_effects = side_effect_table(effects, kl, helpful)
    seconds["side_effects"] = time.perf_counter() - tick
    stages.update()

    tick = time.perf_counter()
    figure_layer = max(chosen, key=lambda layer: auroc.loc[layer, "moral→moral"])
    row = layers.index(figure_layer)
    with steer(model, interventions["after"]):
        after = item_activations(
            model,
            items,
            [figure_layer],
            position=position,
            batch_size=batch_size,
            progress=False,
        )
    projections = projection_table(items, directions, row, acts[:, row : row + 1], after)
    seconds["projections"] = time.perf_counter() - tick
    stages.update()

    full = {
        name: SteeringVector(
            {layer: directions[name][j] for j, layer in enumerate(layers)},
            method=f"value_{name}_direction",
            model_name=vectors["plain"].model_name,
            position=position,
            data_hash=hashed,
        )
        for name in ("moral", *dimensions)
    }
    seconds["total"] = time.perf_counter() - started
    stages.update()
    stages.close()
    settings = {
        "dimensions": dimensions,
        "layers": layers,
        "ablate_layers": chosen,
        "ablate_rule": rule,
        "position": position,
        "prompts": {name: vars(prompt) for name, prompt in chosen_prompts.items()},
        "max_frames": max_frames,
        "helpfulness": bool(helpfulness),
        "n_questions": n_questions,
        "n_boot": n_boot,
        "k_folds": k_folds,
        "seed": seed,
        "model": vectors["plain"].model_name,
        "data_hash": hashed,
    }
    return ValueEntanglement(
        items=items,
        ratings=pd.concat(
            [frame.assign(condition=name) for name, frame in ratings.items()], ignore_index=True
        ),
        effects=effects,
        cosines=cosines,
        auroc=auroc,
        correlations=correlations,
        projections=projections,
        side_effects=side_effects,
        vectors={**full, **vectors},
        ablate_layers=chosen,
        figure_layer=figure_layer,
        settings=settings,
        seconds={k: round(v, 1) for k, v in seconds.items()},
    )
