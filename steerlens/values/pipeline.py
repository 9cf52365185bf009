"""``sl.value_entanglement``: does the model's moral value leak into other kinds of value?

Design after Cho, Li & Leshinskaya (2026), "Value entanglement: conflation between different
kinds of good in (some) LLMs"; their stimuli and code are not public, so steerlens ships its
own stimuli and measures (the docs' value-entanglement method page documents every choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ..core.hookpoints import normalise_layers
from ..core.study import Stopwatch
from ..core.types import HookedModel
from ..core.validate import check_instance, check_model
from ..core.vector import SteeringVector, data_hash
from ..measures.kl import mean_kl
from ..steering.context import steer
from ..steering.interventions import Intervention, ablate
from .ratings import RatingPrompt, rating_tables, resolve_prompts
from .repair import choose_ablate_layers, moral_vectors
from .representations import (
    attribute_directions,
    cosine_table,
    cross_fitted_projections,
    item_activations,
    prediction_tables,
    projection_table,
)
from .result import ValueEntanglement
from .settings import ValuesSettings
from .side_effects import helpfulness_under, side_effect_table
from .stats import value_leakage
from .stimuli import load_stimuli, subsample

CONDITIONS = {"after": "plain", "after_selective": "selective"}


def _representations(model, items, layers, config: ValuesSettings) -> dict[str, Any]:
    """Item activations, attribute directions, cosines, held-out AUROC and the ablations."""
    acts = item_activations(
        model,
        items,
        layers,
        position=config.position,
        batch_size=config.batch_size,
        progress=False,
    )
    directions = attribute_directions(acts, items)
    held_out = cross_fitted_projections(acts, items, k=config.k_folds, seed=config.seed)
    auroc, correlations = prediction_tables(held_out, items, layers)
    chosen, rule = choose_ablate_layers(config.ablate_layers, auroc, layers)
    hashed = data_hash(list(items["id"]), list(items["text"]))
    vectors = moral_vectors(directions, layers, chosen, model, hashed, config.position)
    return {
        "acts": acts,
        "directions": directions,
        "cosines": cosine_table(directions, layers),
        "auroc": auroc,
        "correlations": correlations,
        "chosen": chosen,
        "rule": rule,
        "hash": hashed,
        "vectors": vectors,
        "interventions": {c: ablate(vectors[v]) for c, v in CONDITIONS.items()},
    }


def _projections(model, items, layers, rep: dict, config: ValuesSettings):
    """Projections at the layer where the moral direction reads best, before and after."""
    figure_layer = max(rep["chosen"], key=lambda layer: rep["auroc"].loc[layer, "moral→moral"])
    row = layers.index(figure_layer)
    with steer(model, rep["interventions"]["after"]):
        after = item_activations(
            model,
            items,
            [figure_layer],
            position=config.position,
            batch_size=config.batch_size,
            progress=False,
        )
    before = rep["acts"][:, row : row + 1]
    return figure_layer, projection_table(items, rep["directions"], row, before, after)


def _full_vectors(
    rep: dict, layers: list[int], config: ValuesSettings
) -> dict[str, SteeringVector]:
    """The moral and target directions at every analysed layer, as steering vectors."""
    return {
        name: SteeringVector(
            {layer: rep["directions"][name][j] for j, layer in enumerate(layers)},
            method=f"value_{name}_direction",
            model_name=rep["vectors"]["plain"].model_name,
            basis=rep["vectors"]["plain"].basis,
            position=config.position,
            data_hash=rep["hash"],
        )
        for name in ("moral", *config.dimensions)
    }


def _record(config: ValuesSettings, layers, rep: dict, prompts: Mapping) -> dict[str, Any]:
    """The run's settings, JSON-serializable."""
    return {
        **asdict(config),
        "dimensions": list(config.dimensions),
        "layers": layers,
        "ablate_layers": rep["chosen"],
        "ablate_rule": rep["rule"],
        "prompts": {name: vars(prompt) for name, prompt in prompts.items()},
        "model": rep["vectors"]["plain"].model_name,
        "data_hash": rep["hash"],
    }


def value_entanglement(
    model: HookedModel,
    stimuli: Any = None,
    *,
    prompts: Mapping[str, RatingPrompt] | None = None,
    settings: ValuesSettings | None = None,
) -> ValueEntanglement:
    """Measure value entanglement and repair it by ablating the morality direction.

    1. **Representations**: each item is read alone at every analysed layer (``resid_pre``,
       mean over its tokens without BOS); attribute directions (good minus bad, balanced over
       the other factor) for moral, grammatical and economic value; their cosines per layer;
       held-out (frame cross-fitted) projections, their correlations, and how well each
       direction predicts each label (AUROC).
    2. **Behaviour**: the model rates every item on its set's target (grammar or economics)
       and on moral value, from next-token probabilities (``sl.values.value_ratings``).
    3. **Leakage**: the moral main effect on the grammar / economic rating, with the target
       controlled, and a frame-bootstrap CI (``sl.values.value_leakage``); 0 is the
       normative target.
    4. **Repair**: the same ratings with the moral direction ablated (rank 1 per layer, all
       positions) at ``settings.ablate_layers`` (``after``), and with only its part
       orthogonal to the grammatical and economic directions ablated (``after_selective``).
    5. **Side effects**: moral / grammar / economic discrimination, helpfulness on the shipped
       multiple-choice questions, KL on the shipped neutral text.

    Args:
        model: a TransformerLens model with a chat template.
        stimuli: ``None`` (the shipped ``"values"`` set), a name, a JSONL/CSV path or a
            DataFrame with ``id, text, set, moral`` and ``grammar`` / ``economic`` labels.
        prompts: replacement ``sl.values.RatingPrompt`` per dimension.
        settings: a ``sl.values.ValuesSettings`` (``.report()`` and ``.quick()`` presets).

    Returns:
        A ``ValueEntanglement`` (a ``Study``: ``.summary``, ``.figures()``, ``.tables()``,
        ``.to_dict()``; and ``.leakage``, ``.side_effects``, ``.cosines``, ``.auroc``).

    Example:
        >>> ent = sl.value_entanglement(model, settings=sl.values.ValuesSettings.quick())
        >>> ent.leakage[["before", "before_low", "before_high", "after"]]
        >>> ent.leakage_figure()
    """
    check_model(model)
    config = ValuesSettings() if settings is None else settings
    check_instance("settings", config, ValuesSettings, "a ValuesSettings")
    watch = Stopwatch()
    items = subsample(load_stimuli(stimuli, config.dimensions), config.max_frames, config.seed)
    layers = normalise_layers(model, list(config.layers) if config.layers != "all" else "all")
    chosen_prompts = resolve_prompts(prompts)
    stages = tqdm(total=4, desc="value entanglement", unit="stage", disable=not config.progress)

    def lap(name: str) -> None:
        watch.lap(name)
        stages.update()

    rep = _representations(model, items, layers, config)
    lap("representations")
    interventions: dict[str, Intervention] = rep["interventions"]
    ratings = rating_tables(
        model, items, chosen_prompts, interventions, config.batch_size, progress=False
    )
    effects = value_leakage(ratings, n_boot=config.n_boot, seed=config.seed)
    lap("ratings")
    kl = mean_kl(model, interventions)
    helpful = (
        helpfulness_under(model, interventions, config.n_questions, config.batch_size)
        if config.helpfulness
        else {}
    )
    lap("side_effects")
    figure_layer, projections = _projections(model, items, layers, rep, config)
    lap("projections")
    stages.close()
    return ValueEntanglement(
        items=items,
        ratings=pd.concat(
            [frame.assign(condition=name) for name, frame in ratings.items()], ignore_index=True
        ),
        effects=effects,
        cosines=rep["cosines"],
        auroc=rep["auroc"],
        correlations=rep["correlations"],
        projections=projections,
        side_effects=side_effect_table(effects, kl, helpful),
        vectors={**_full_vectors(rep, layers, config), **rep["vectors"]},
        ablate_layers=rep["chosen"],
        figure_layer=figure_layer,
        settings=_record(config, layers, rep, chosen_prompts),
        seconds=watch.seconds,
        seconds_by_stage=watch.laps,
    )
