"""Value entanglement on tiny models: readouts and activations against plain PyTorch on the
HF model, and a planted direction that the analysis must find and the ablation remove."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError
from steerlens.core.tokens import encode
from steerlens.measures.kl import mean_kl
from steerlens.values import ValuesSettings
from steerlens.values.ratings import DEFAULT_PROMPTS, rate, rate_conditions, resolve_prompts
from steerlens.values.repair import choose_ablate_layers, moral_vectors
from steerlens.values.representations import attribute_directions, item_activations
from steerlens.values.stimuli import load_stimuli

from .planted import PROMPTS, C, planted_model, planted_stimuli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planted(tiny_model, tokenizer):
    return planted_model(tiny_model, tokenizer)


@pytest.fixture(scope="module")
def ent(values_result):
    return values_result


# --- readouts and activations against the HF model ---------------------------------------
def test_rating_matches_hf_logits(tiny_model):
    texts = ["The boy helped the dog today.", "The girl robbed a very old man yesterday."]
    prompt = DEFAULT_PROMPTS["grammar"]
    rating, mass = rate(tiny_model, texts, prompt)
    positive, negative = prompt.answer_ids(tiny_model)
    for i, text in enumerate(texts):
        ids = torch.tensor([encode(tiny_model, prompt.render(tiny_model, text))])
        with torch.no_grad():
            probs = tiny_model.original_model(ids).logits[0, -1].double().softmax(-1)
        expected = (probs[positive] - probs[negative]) / (probs[positive] + probs[negative])
        assert rating[i] == pytest.approx(float(expected), abs=1e-5)
        assert mass[i] == pytest.approx(float(probs[positive] + probs[negative]), rel=1e-4)


def test_shared_prefix_ratings_equal_full_forwards(tiny_model):
    """Ratings that share the blocks below the first ablated layer equal full steered runs."""
    texts = [
        f"The{s} helped the dog{'' if i % 2 else ' very early today'}."
        for i, s in enumerate([" boy", " girl", " man", " woman", " king"])
    ]
    torch.manual_seed(5)
    vector = sl.SteeringVector({layer: torch.randn(64) for layer in (1, 2)})
    interventions = {"a": sl.ablate(vector), "b": sl.add(vector, 3.0, layers=[2])}
    prompt = DEFAULT_PROMPTS["moral"]
    got = rate_conditions(tiny_model, texts, prompt, interventions, batch_size=2)
    np.testing.assert_allclose(got["before"][0], rate(tiny_model, texts, prompt)[0], atol=1e-6)
    for name, intervention in interventions.items():
        with sl.steer(tiny_model, intervention):
            rating, mass = rate(tiny_model, texts, prompt)
        np.testing.assert_allclose(got[name][0], rating, atol=1e-5)
        np.testing.assert_allclose(got[name][1], mass, rtol=1e-4)
        assert np.abs(got[name][0] - got["before"][0]).max() > 1e-4


def test_prompt_rendering(tiny_model):
    prompt = sl.values.RatingPrompt("Q: {text}", " A:", " yes", " no", chat=False)
    assert prompt.render(tiny_model, "hi") == "Q: hi A:"
    chat = DEFAULT_PROMPTS["moral"].render(tiny_model, "She lied.")
    assert "She lied." in chat and chat.endswith("What the person did was morally")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no slot", "A", " a", " b"), "exactly once"),
        (("{text} {text}", "A", " a", " b"), "exactly once"),
        (("{text}", "A", " a", " a"), "two different"),
        (("{text}", "A", "", " b"), "two different"),
    ],
)
def test_bad_prompts(args, message):
    with pytest.raises(SteerlensError, match=message):
        sl.values.RatingPrompt(*args)


def test_prompt_overrides_and_multi_token_answers(tiny_model):
    with pytest.raises(SteerlensError, match="unknown dimension"):
        resolve_prompts({"taste": DEFAULT_PROMPTS["moral"]})
    with pytest.raises(SteerlensError, match="RatingPrompt"):
        resolve_prompts({"moral": "Is it good?"})
    bad = sl.values.RatingPrompt("{text}", " It is", " Verdict", " no", chat=False)
    with pytest.raises(SteerlensError, match="not one"):
        rate(tiny_model, ["x"], bad)


def test_item_activations_match_hf_hidden_states(tiny_model):
    items = planted_stimuli(2)
    acts = item_activations(tiny_model, items, "all", position="mean")
    for row, text in enumerate(items["text"]):
        ids = torch.tensor([encode(tiny_model, text)])
        with torch.no_grad():
            hidden = tiny_model.original_model(ids, output_hidden_states=True).hidden_states
        for layer in range(tiny_model.cfg.n_layers):  # hidden_states[l] enters block l
            expected = hidden[layer][0, 1:].mean(0)  # BOS excluded
            torch.testing.assert_close(acts[row, layer], expected, atol=2e-5, rtol=1e-4)
    last = item_activations(tiny_model, items, [1], position="last")
    torch.testing.assert_close(
        last[:, 0], sl.collect_activations(tiny_model, list(items["text"]), [1])[:, 0]
    )


def test_directions_are_balanced_mean_differences():
    items = load_stimuli(planted_stimuli(3))
    rng = np.random.default_rng(0)
    acts = torch.from_numpy(rng.normal(size=(len(items), 2, 5))).float()
    directions = attribute_directions(acts, items)
    for set_name, target in (("moral_grammar", "grammar"), ("moral_economic", "economic")):
        part = items["set"] == set_name
        x, m, t = (
            acts[part.to_numpy().copy()].double().numpy(),
            items[part]["moral"],
            items[part][target],
        )
        cell = {
            (a, b): x[((m == a) & (t == b)).to_numpy()].mean(0) for a in (1, -1) for b in (1, -1)
        }
        moral = (cell[1, 1] - cell[-1, 1] + cell[1, -1] - cell[-1, -1]) / 2
        label = (cell[1, 1] - cell[1, -1] + cell[-1, 1] - cell[-1, -1]) / 2
        np.testing.assert_allclose(directions[f"moral_in_{set_name}"], moral, atol=1e-5)
        np.testing.assert_allclose(directions[target], label, atol=1e-5)
    both = (directions["moral_in_moral_grammar"] + directions["moral_in_moral_economic"]) / 2
    torch.testing.assert_close(directions["moral"], both)


def test_selective_vector_is_orthogonal_to_the_other_directions(tiny_model):
    rng = np.random.default_rng(1)
    directions = {
        n: torch.from_numpy(rng.normal(size=(2, 64))).float()
        for n in ("moral", "grammar", "economic")
    }
    vectors = moral_vectors(directions, [0, 1], [1], tiny_model)
    selective, plain = vectors["selective"][1].double(), vectors["plain"][1].double()
    torch.testing.assert_close(plain, directions["moral"][1].double())
    for name in ("grammar", "economic"):
        assert float(selective @ directions[name][1].double()) == pytest.approx(0, abs=1e-4)
    residual = plain - selective  # lies in span(grammar, economic)
    basis = torch.stack([directions["grammar"][1], directions["economic"][1]]).double().T
    coef = torch.linalg.lstsq(basis, residual[:, None]).solution
    torch.testing.assert_close(basis @ coef[:, 0], residual, atol=1e-5, rtol=0)
    with pytest.raises(SteerlensError, match="subset"):
        moral_vectors(directions, [0, 1], [2], tiny_model)


def test_neutral_kl_matches_hand_ablation_on_hf(tiny_model):
    torch.manual_seed(3)
    direction = torch.randn(64)
    vector = sl.SteeringVector({layer: direction for layer in range(3)})
    texts = ["The river runs north.", "Bread is made from flour, water and salt."]
    got = mean_kl(tiny_model, {"x": sl.ablate(vector)}, texts)["x"]
    unit = direction / direction.norm()
    hf = tiny_model.original_model

    def pre_hook(_module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden = hidden - (hidden @ unit)[..., None] * unit
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    total, count = 0.0, 0
    for text in texts:
        ids = torch.tensor([encode(tiny_model, text)])
        with torch.no_grad():
            base = hf(ids).logits[0].double().log_softmax(-1)
            handles = [
                layer.register_forward_pre_hook(pre_hook, with_kwargs=True)
                for layer in hf.model.layers
            ]
            try:
                steered = hf(ids).logits[0].double().log_softmax(-1)
            finally:
                for handle in handles:
                    handle.remove()
        total += float((base.exp() * (base - steered)).sum())
        count += ids.shape[1]
    assert got == pytest.approx(total / count, rel=1e-4)
    assert got > 0


# --- the planted direction -----------------------------------------------------------------
def test_finds_the_planted_geometry(ent):
    expected = C / math.sqrt(1 + C**2)
    np.testing.assert_allclose(ent.cosines["moral·grammar"], expected, atol=1e-4)
    np.testing.assert_allclose(ent.cosines["moral·economic"], expected, atol=1e-4)
    assert (ent.auroc["moral→moral"] == 1).all()
    # the moral direction carries the planted grammar / economic component
    assert (ent.auroc["moral→grammar"] > 0.6).all() and (ent.auroc["moral→economic"] > 0.6).all()
    assert (ent.correlations > 0.2).all().all()
    assert ent.ablate_layers == [0, 1, 2] and "auto" in ent.settings["ablate_rule"]


def test_finds_the_planted_leakage_and_the_ablation_removes_it(ent):
    leak = ent.leakage
    assert list(leak.index) == ["grammar", "economic"]
    assert (leak["before_low"] > 0).all()  # the readouts also read the moral coordinate
    np.testing.assert_allclose(leak["after"], 0, atol=1e-6)
    assert (leak["after_change_high"] < 0).all()
    # selective ablation keeps the part of the moral coordinate inside span(g, e)
    assert (leak["after_selective"] > 1e-3).all()
    assert (leak["after_selective"] < leak["before"]).all()


def test_side_effects_of_the_planted_ablation(ent):
    side = ent.side_effects
    for name in ("grammar discrimination", "economic discrimination"):
        assert side.loc[name, "after"] > 0.5 * side.loc[name, "before"] > 0
    for set_name in ("moral_grammar", "moral_economic"):
        row = side.loc[f"moral discrimination ({set_name})"]
        assert row["before"] > 0.5 and abs(row["after"]) < 1e-6  # the moral readout is gone
    assert side.loc["neutral KL (nats/token)", "before"] == 0


def test_projections_after_ablation_are_zero(ent, planted):
    after = ent.projections[ent.projections["condition"] == "after"]
    before = ent.projections[ent.projections["condition"] == "before"]
    assert after["moral_projection"].abs().max() < 1e-5
    assert before["moral_projection"].abs().max() > 1e-2
    items = load_stimuli(planted_stimuli())
    unit = {n: ent.vectors[n].unit() for n in ("moral", "grammar")}
    for variant in ("plain", "selective"):
        with sl.steer(planted, sl.ablate(ent.vectors[variant])):
            acts = item_activations(planted, items, [0, 1, 2])
        plain_acts = item_activations(planted, items, [0, 1, 2])
        moral = torch.stack([acts[:, j] @ unit["moral"][j] for j in range(3)])
        if variant == "plain":  # zero at every ablated layer
            assert float(moral.abs().max()) < 1e-5
        else:
            # where it is applied, the selective ablation leaves the grammar coordinate
            # unchanged (later layers differ through the RMS norms) and keeps a moral part
            grammar = acts[:, 0] @ unit["grammar"][0]
            torch.testing.assert_close(grammar, plain_acts[:, 0] @ unit["grammar"][0])
            assert float(moral.abs().max()) > 1e-3


def test_report_object(ent):
    assert set(ent.figures()) == {"leakage", "cosines", "auroc", "projections"}
    assert all(isinstance(f, go.Figure) for f in ent.figures().values())
    data = json.loads(json.dumps(ent.to_dict()))
    assert data["ablate_layers"] == [0, 1, 2]
    assert {row["dimension"] for row in data["leakage"]} == {"grammar", "economic"}
    assert set(ent.ratings["condition"]) == {"before", "after", "after_selective"}
    assert ent.ratings["rating"].between(-1, 1).all()
    assert ent.effect_table().shape[1] == 3
    assert set(ent.vectors) == {"moral", "grammar", "economic", "plain", "selective"}
    from steerlens.report.html import render
    from steerlens.report.lines import study_section

    page = render("values", [study_section("values", ent)])
    before = ent.leakage.loc["grammar", "before"]
    assert f"{before:+.3f}" in page and page.count('class="figure"') == 4


# --- options and bad input -----------------------------------------------------------------
def test_choose_ablate_layers():
    import pandas as pd

    auroc = pd.DataFrame({"moral→moral": [0.5, 0.8, 0.7, 0.9]}, index=[0, 1, 2, 3])
    assert choose_ablate_layers("auto", auroc, [0, 1, 2, 3])[0] == [1, 2, 3]
    low = auroc * 0.5
    assert choose_ablate_layers("auto", low, [0, 1, 2, 3])[0] == [3]
    assert choose_ablate_layers("all", auroc, [0, 1, 2, 3])[0] == [0, 1, 2, 3]
    assert choose_ablate_layers([2, 1], auroc, [0, 1, 2, 3])[0] == [1, 2]
    with pytest.raises(SteerlensError, match="subset"):
        choose_ablate_layers([5], auroc, [0, 1, 2, 3])
    with pytest.raises(SteerlensError, match="'auto', 'all'"):
        choose_ablate_layers("most", auroc, [0, 1, 2, 3])


def test_value_entanglement_bad_input(planted):
    stimuli = planted_stimuli()
    quiet = ValuesSettings(progress=False)
    with pytest.raises(SteerlensError, match="Did you mean 'economic'"):
        ValuesSettings(dimensions=["economics"])
    with pytest.raises(SteerlensError, match="missing column"):
        sl.value_entanglement(planted, stimuli.drop(columns=["moral"]), settings=quiet)
    with pytest.raises(SteerlensError, match="unbalanced"):
        sl.value_entanglement(planted, stimuli.iloc[1:], settings=quiet)
    with pytest.raises(SteerlensError, match="ablate_layers"):
        settings = ValuesSettings(ablate_layers=[7], helpfulness=False, progress=False)
        sl.value_entanglement(planted, stimuli, prompts=PROMPTS, settings=settings)
    with pytest.raises(TypeError, match="model"):
        sl.value_entanglement(object(), stimuli)
    for bad in ({"n_boot": 5}, {"k_folds": 1}, {"n_questions": 0}, {"batch_size": 0}):
        with pytest.raises(SteerlensError, match=next(iter(bad))):
            ValuesSettings(**bad)
    with pytest.raises(SteerlensError, match="k_folds"):  # 8 frames cannot make 5 folds of 2
        sl.value_entanglement(planted, stimuli, settings=ValuesSettings(k_folds=5, progress=False))


def test_one_dimension_and_chosen_layers(planted):
    settings = ValuesSettings(
        dimensions=["grammar"],
        layers=[0, 2],
        ablate_layers=[2],
        n_questions=8,
        n_boot=200,
        progress=False,
    )
    ent = sl.value_entanglement(planted, planted_stimuli(), prompts=PROMPTS, settings=settings)
    reference = sl.measures.helpfulness(planted, sl.measures.qa_task(planted, n=8))
    helpful = ent.side_effects.loc["helpfulness p_correct"]
    assert helpful["before"] == pytest.approx(reference.p_correct)
    assert set(helpful.dropna().index) == {"before", "after", "after_selective"}
    assert list(ent.leakage.index) == ["grammar"] and list(ent.cosines.index) == [0, 2]
    assert list(ent.cosines.columns) == ["moral·grammar"]
    assert ent.vectors["plain"].layers == [2] and ent.figure_layer == 2
    # ablating only the last block's input leaves block 0's attention average intact,
    # but that average's moral coordinate is removed at layer 2 too: leakage is gone
    assert abs(ent.leakage.loc["grammar", "after"]) < 1e-6
