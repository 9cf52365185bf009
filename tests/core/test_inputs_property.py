"""Property tests over every public entry point: a bad argument is a ``SteerlensError``
raised before any forward pass.

Each case names a function, a builder of valid arguments, and one argument to replace by a
value Hypothesis draws from the strategy of that argument's kind (a kind's strategy draws only
values the argument must refuse). The call must raise ``SteerlensError`` (so a
``ValueError``; a wrong type also ``TypeError``) and the model must not have run: a pre-hook
on the embedding counts forward passes. The test run's beartype checks are switched off for
these calls (``jaxtyping_disable``): users get steerlens's own errors, and so must these tests.
"""

from __future__ import annotations

import importlib
import pkgutil

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerlens as sl
from steerlens import report
from steerlens.core.hookpoints import SITES
from tests.typechecks import without_type_checks

M, T, V, S, VA = sl.measures, sl.tradeoff, sl.vectors, sl.steering, sl.values
ONESHOT = sl.oneshot
NAN, INF = float("nan"), float("inf")
SHORT = st.text(max_size=4)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def _not(*valid):
    return SHORT.filter(lambda s: s not in valid)


def _duplicated(values):
    return len(set(values)) < len(values)


BAD = {
    "model": st.sampled_from(["gpt2", 5, [1], object(), torch.nn.Linear(2, 2)]),
    "texts": st.one_of(
        st.just("hi"),
        st.integers(),
        st.just([]),
        st.lists(st.integers(), min_size=1, max_size=3),
        st.lists(st.none(), min_size=1, max_size=2),
    ),
    "text": st.one_of(st.integers(), st.lists(SHORT, max_size=2), st.binary(max_size=3)),
    "message": st.one_of(st.integers(), st.none(), st.lists(st.integers(), min_size=1, max_size=2)),
    "int": st.one_of(st.booleans(), FLOATS, SHORT, st.lists(st.integers(), max_size=2)),
    "count": st.one_of(st.booleans(), FLOATS, SHORT, st.integers(max_value=0)),
    "number": st.one_of(
        st.booleans(), SHORT, st.sampled_from([NAN, INF, -INF]), st.lists(FLOATS, max_size=2)
    ),
    "bool": st.one_of(st.integers(), SHORT, FLOATS, st.lists(st.booleans(), max_size=2)),
    "layers": st.one_of(
        st.booleans(),
        FLOATS,
        _not("all"),
        st.just([]),
        st.lists(st.integers(0, 2), min_size=2, max_size=4).filter(_duplicated),
        st.integers(min_value=3),
        st.integers(max_value=-4),
        st.lists(FLOATS, min_size=1, max_size=2),
    ),
    "site": st.one_of(_not(*SITES), st.integers(), st.booleans()),
    "vector": st.one_of(st.integers(), SHORT, st.lists(FLOATS, max_size=3), st.none()),
    "position": st.one_of(_not("last", "mean"), FLOATS, st.booleans(), st.just([]), st.none()),
    "positions": st.one_of(
        _not("all", "prompt", "generated", "last"), FLOATS, st.just([]), st.none()
    ),
    "object": st.one_of(st.integers(), SHORT, st.lists(st.integers(), min_size=1, max_size=2)),
    "r2": st.one_of(st.booleans(), SHORT, st.just(NAN), st.floats(min_value=1.01, max_value=1e9)),
    "mapping": st.one_of(
        st.integers(), SHORT, st.just({}), st.lists(st.integers(), min_size=1, max_size=2)
    ),
    "coeffs": st.one_of(
        SHORT,
        st.just([]),
        st.lists(st.booleans(), min_size=1, max_size=3),
        st.lists(st.sampled_from([NAN, INF]), min_size=1, max_size=3),
    ),
    "path": st.one_of(st.integers(), st.none(), st.just(""), st.lists(SHORT, max_size=2)),
}


class World(dict):
    """The valid arguments (a short repr for Hypothesis's reports)."""

    def __repr__(self) -> str:
        return "World(...)"


@pytest.fixture(scope="module")
def world(tiny_model, tmp_path_factory):
    """Valid arguments, and a forward-pass counter on the model's embedding."""
    torch.manual_seed(0)
    forwards = [0]
    embedding = next(m for m in tiny_model.modules() if isinstance(m, torch.nn.Embedding))
    handle = embedding.register_forward_pre_hook(
        lambda *_: forwards.__setitem__(0, forwards[0] + 1)
    )
    vec = sl.SteeringVector({1: torch.randn(64), 2: torch.randn(64)})
    folder = tmp_path_factory.mktemp("inputs")
    vec.save(folder / "vec.safetensors")
    sweep = T.sweep(tiny_model, vec, [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], ["a b", "c d"])
    world = World(
        {
            "model": tiny_model,
            "vec": vec,
            "file": folder / "vec.safetensors",
            "sweep": sweep,
            "spec": T.refusal_behaviour(tiny_model, n=3),
            "task": M.qa_task(tiny_model, n=3),
            "ratings": pd.DataFrame(),
            "forwards": forwards,
        }
    )
    with without_type_checks():
        yield world
    handle.remove()


def _steer(**kw):
    with sl.steer(kw.pop("model"), kw.pop("intervention"), **kw):
        pass


POS, NEG = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "grim"]
COEFFS = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
# (function, valid keyword arguments from the world, {argument: kind})
CASES = {
    "format_chat": (
        sl.format_chat,
        lambda w: dict(model=w["model"], message="hi", system=None, add_generation_prompt=True),
        {"model": "model", "message": "text", "system": "text", "add_generation_prompt": "bool"},
    ),
    "answer_pairs": (
        sl.answer_pairs,
        lambda w: dict(
            model=w["model"], prompts=["p"], positive_answers=["a"], negative_answers=["b"]
        ),
        {"model": "model", "prompts": "texts", "positive_answers": "texts"},
    ),
    "generate": (
        sl.generate,
        lambda w: dict(model=w["model"], prompt="hi", max_new_tokens=1, do_sample=True),
        {
            "model": "model",
            "max_new_tokens": "count",
            "chat": "bool",
            "do_sample": "bool",
            "temperature": "number",
            "use_past_kv_cache": "bool",
            "top_k": "count",
            "top_p": "number",
            "repetition_penalty": "number",
            "stop_at_eos": "bool",
        },
    ),
    "SteeringVector": (
        sl.SteeringVector,
        lambda w: dict(directions={1: torch.ones(4)}, site="resid_pre", params={}),
        {
            "directions": "mapping",
            "site": "site",
            "method": "text",
            "position": "text",
            "params": "object",
        },
    ),
    "SteeringVector.load": (
        sl.SteeringVector.load,
        lambda w: dict(path=w["file"], model=w["model"]),
        {"path": "path", "model": "model"},
    ),
    "add": (
        sl.add,
        lambda w: dict(vector=w["vec"], coeff=1.0, layers=[1], positions="all", site="resid_pre"),
        {
            "vector": "vector",
            "coeff": "number",
            "preserve_norm": "bool",
            "layers": "layers",
            "positions": "positions",
            "site": "site",
        },
    ),
    "rotate": (
        S.rotate,
        lambda w: dict(vector=w["vec"], degrees=30.0, layers=[1], positions="all"),
        {
            "vector": "vector",
            "degrees": "number",
            "layers": "layers",
            "positions": "positions",
            "site": "site",
        },
    ),
    "ablate": (
        sl.ablate,
        lambda w: dict(vector=w["vec"], layers=[1], positions="all"),
        {"vector": "vector", "layers": "layers", "positions": "positions", "site": "site"},
    ),
    "clamp": (
        sl.clamp,
        lambda w: dict(vector=w["vec"], value=0.0, layers=[1]),
        {"vector": "vector", "value": "number", "layers": "layers", "site": "site"},
    ),
    "steer": (
        _steer,
        lambda w: dict(model=w["model"], intervention=sl.add(w["vec"]), on_nonfinite="raise"),
        {"model": "model", "intervention": "object", "on_nonfinite": "text", "trace": "bool"},
    ),
    "find_conflicts": (
        S.find_conflicts,
        lambda w: dict(interventions=[sl.add(w["vec"])]),
        {"interventions": "object"},
    ),
    "collect_activations": (
        sl.collect_activations,
        lambda w: dict(model=w["model"], texts=["hi"], layers=[1]),
        {
            "model": "model",
            "texts": "texts",
            "layers": "layers",
            "position": "position",
            "site": "site",
            "batch_size": "count",
            "progress": "bool",
        },
    ),
    "project": (
        sl.project,
        lambda w: dict(model=w["model"], texts=["hi"], vector=w["vec"]),
        {"model": "model", "texts": "texts", "vector": "vector", "batch_size": "count"},
    ),
    "next_token_logits": (
        S.next_token_logits,
        lambda w: dict(model=w["model"], texts=["hi"]),
        {"model": "model", "texts": "texts", "batch_size": "count", "progress": "bool"},
    ),
    "mean_difference": (
        sl.mean_difference,
        lambda w: dict(model=w["model"], positives=POS, negatives=NEG, layers=[1]),
        {"model": "model", "positives": "texts", "layers": "layers", "site": "site"},
    ),
    "contrastive_pca": (
        sl.contrastive_pca,
        lambda w: dict(model=w["model"], positives=POS, negatives=NEG, layers=[1]),
        {"model": "model", "negatives": "texts", "layers": "layers", "centre": "bool"},
    ),
    "linear_probe": (
        V.linear_probe,
        lambda w: dict(model=w["model"], positives=POS, negatives=NEG, layers=[1], test_size=0.5),
        {"model": "model", "layers": "layers", "C": "number", "seed": "int"},
    ),
    "layer_scan": (
        sl.layer_scan,
        lambda w: dict(model=w["model"], positives=POS, negatives=NEG, layers=[1], test_size=0.5),
        {"model": "model", "layers": "layers", "test_size": "number", "position": "position"},
    ),
    "plot_projections": (
        V.plot_projections,
        lambda w: dict(projections=torch.zeros(2, 1), labels=["a", "b"], layers=[1]),
        {"projections": "vector", "kind": "text"},
    ),
    "token_projections": (
        V.token_projections,
        lambda w: dict(model=w["model"], text="hi", vector=w["vec"]),
        {"model": "model", "text": "text", "vector": "vector"},
    ),
    "plot_token_heatmap": (
        V.plot_token_heatmap,
        lambda w: dict(model=w["model"], text="hi", vector=w["vec"]),
        {"model": "model", "text": "text", "vector": "vector"},
    ),
    "completion_logprob": (
        M.completion_logprob,
        lambda w: dict(model=w["model"], prompts=["p"], completion=["c"]),
        {"model": "model", "batch_size": "count", "progress": "bool"},
    ),
    "helpfulness": (
        M.helpfulness,
        lambda w: dict(model=w["model"], task=w["task"]),
        {"model": "model", "task": "object", "batch_size": "count"},
    ),
    "is_refusal": (M.is_refusal, lambda w: dict(text="no"), {"text": "text"}),
    "mean_kl": (
        M.mean_kl,
        lambda w: dict(model=w["model"], interventions={"a": sl.add(w["vec"])}, texts=["x"]),
        {"model": "model", "interventions": "mapping", "texts": "texts", "batch_size": "count"},
    ),
    "token_kl": (
        M.token_kl,
        lambda w: dict(model=w["model"], interventions={"a": sl.add(w["vec"])}, texts=["x"]),
        {"model": "model", "interventions": "mapping", "progress": "bool"},
    ),
    "calibrate": (
        sl.calibrate,
        lambda w: dict(model=w["model"], vector=w["vec"], texts=["x y"], steps=1),
        {
            "model": "model",
            "vector": "vector",
            "kl": "number",
            "texts": "texts",
            "quantile": "number",
            "layers": "layers",
            "site": "site",
            "steps": "count",
            "rtol": "number",
            "start": "number",
            "batch_size": "count",
            "progress": "bool",
        },
    ),
    "qa_task": (
        M.qa_task,
        lambda w: dict(model=w["model"], n=2),
        {"model": "model", "n": "count", "prompt_format": "text"},
    ),
    "refusal_pairs": (
        M.refusal_pairs,
        lambda w: dict(
            model=w["model"],
            frame=pd.DataFrame({"request": ["r"], "refusal": ["no"], "compliance": ["ok"]}),
        ),
        {"model": "model", "frame": "object"},
    ),
    "transfer_report": (
        M.transfer_report,
        lambda w: dict(model=w["model"], vector=w["vec"], prompts=["p"], target="t", coeff=1.0),
        {
            "model": "model",
            "prompts": "texts",
            "target": "text",
            "coeff": "number",
            "chat": "bool",
            "max_new_tokens": "count",
        },
    ),
    "optimize_one_shot": (
        sl.optimize_one_shot,
        lambda w: dict(model=w["model"], prompt="p", promote="a", layer=1, max_iters=1),
        {"model": "model", "prompt": "message", "layer": "int", "lr": "number"},
    ),
    "optimize_batch": (
        ONESHOT.optimize_batch,
        lambda w: dict(model=w["model"], prompts=["p", "q r"], promote="a", layer=1, max_iters=1),
        {"model": "model", "prompts": "texts", "layer": "int", "lr": "number"},
    ),
    "when": (
        sl.when,
        lambda w: dict(
            condition=w["vec"].select([1]), threshold=0.0, intervention=sl.add(w["vec"])
        ),
        {
            "condition": "vector",
            "threshold": "number",
            "intervention": "object",
            "layer": "int",
            "comparator": "text",
            "reduce": "text",
        },
    ),
    "find_condition": (
        sl.find_condition,
        lambda w: dict(
            model=w["model"], condition=w["vec"], positives=["a b", "c"], negatives=["d", "e f"]
        ),
        {
            "model": "model",
            "condition": "vector",
            "positives": "texts",
            "negatives": "texts",
            "layers": "layers",
            "reduce": "text",
            "chat": "bool",
            "batch_size": "count",
        },
    ),
    "orthogonalize_weights": (
        sl.orthogonalize_weights,
        lambda w: dict(model=w["model"], vector=w["vec"], layer=1),
        {"model": "model", "vector": "vector", "layer": "int", "inplace": "bool"},
    ),
    "save_model": (
        S.save_model,
        lambda w: dict(model=w["model"], folder=w["file"].parent / "saved"),
        {"model": "model", "folder": "path"},
    ),
    "reentrant": (
        ONESHOT.reentrant,
        lambda w: dict(
            model=w["model"],
            first_vector=w["vec"].select([1]),
            prompt="p",
            completion="c",
            later_layer=2,
            max_iters=1,
        ),
        {"model": "model", "first_vector": "vector", "later_layer": "int", "over": "text"},
    ),
    "one_shot_refusal_study": (
        ONESHOT.one_shot_refusal_study,
        lambda w: dict(model=w["model"], settings=ONESHOT.StudySettings(layer=1)),
        {"model": "model", "settings": "object"},
    ),
    "tradeoff_report": (
        sl.tradeoff_report,
        lambda w: dict(
            model=w["model"], vector=w["vec"], behaviour=w["spec"], helpfulness=w["task"]
        ),
        {
            "model": "model",
            "vector": "vector",
            "behaviour": "object",
            "helpfulness": "object",
            "coeffs": "coeffs",
            "layers": "layers",
            "settings": "object",
        },
    ),
    "sweep": (
        T.sweep,
        lambda w: dict(model=w["model"], vector=w["vec"], coeffs=[1.0], prompts=["p"]),
        {
            "model": "model",
            "vector": "vector",
            "coeffs": "coeffs",
            "prompts": "texts",
            "layers": "layers",
            "normalize": "bool",
            "batch_size": "count",
            "max_rows": "count",
            "share_opening": "bool",
        },
    ),
    "completion_behaviour": (
        T.completion_behaviour,
        lambda w: dict(model=w["model"], vector=w["vec"], coeffs=[0.0], prompts=["p"]),
        {"model": "model", "coeffs": "coeffs", "prompts": "texts", "max_new_tokens": "count"},
    ),
    "behaviour_curve": (
        T.behaviour_curve,
        lambda w: dict(sweep=w["sweep"], spec=w["spec"]),
        {"sweep": "object", "spec": "object"},
    ),
    "helpfulness_curve": (
        T.helpfulness_curve,
        lambda w: dict(sweep=w["sweep"], task=w["task"]),
        {"sweep": "object", "task": "object"},
    ),
    "estimate_lambda": (
        T.estimate_lambda,
        lambda w: dict(sweep=w["sweep"]),
        {"sweep": "object", "space": "text", "r2_min": "r2"},
    ),
    "estimate_margin": (
        T.estimate_margin,
        lambda w: dict(sweep=w["sweep"], aligned=torch.tensor([1]), misaligned=torch.tensor([2])),
        {"sweep": "object", "aligned": "object", "misaligned": "object"},
    ),
    "estimate_noise": (
        T.estimate_noise,
        lambda w: dict(sweep=w["sweep"], correct=torch.tensor([1, 2])),
        {"sweep": "object", "top_t": "count", "r2_min": "r2"},
    ),
    "fit_behaviour": (
        T.fit_behaviour,
        lambda w: dict(coeffs=COEFFS, values=torch.tanh(COEFFS)),
        {"coeffs": "coeffs", "values": "coeffs", "n_boot": "int", "seed": "int", "level": "number"},
    ),
    "fit_helpfulness": (
        T.fit_helpfulness,
        lambda w: dict(coeffs=COEFFS, values=torch.exp(-(COEFFS**2))),
        {"values": "coeffs", "floor": "number", "n_boot": "int"},
    ),
    "recommend_coefficient": (
        T.recommend_coefficient,
        lambda w: dict(
            coeffs=COEFFS, behaviour=torch.tanh(COEFFS), helpfulness=torch.exp(-(COEFFS**2))
        ),
        {
            "coeffs": "coeffs",
            "behaviour": "coeffs",
            "budget": "number",
            "target": "number",
            "behaviour_fit": "object",
        },
    ),
    "refusal_behaviour": (
        T.refusal_behaviour,
        lambda w: dict(model=w["model"], n=2),
        {"model": "model", "harmful": "bool", "n": "count"},
    ),
    "TradeoffSettings": (
        T.TradeoffSettings,
        lambda w: {},
        {"n_boot": "int", "budget": "number", "n_coeffs": "count", "score": "object"},
    ),
    "OneShotSettings": (
        ONESHOT.OneShotSettings,
        lambda w: {},
        {"lr": "number", "max_iters": "int", "positions": "positions", "cached": "bool"},
    ),
    "StudySettings": (ONESHOT.StudySettings, lambda w: {}, {"n_train": "count", "target": "text"}),
    "load_stimuli": (VA.load_stimuli, lambda w: {}, {"stimuli": "object"}),
    "value_ratings": (
        VA.value_ratings,
        lambda w: dict(model=w["model"], max_frames=1),
        {"model": "model", "prompts": "object", "batch_size": "count", "progress": "bool"},
    ),
    "value_leakage": (
        VA.value_leakage,
        lambda w: dict(ratings=w["ratings"]),
        {"ratings": "object", "n_boot": "int"},
    ),
    "value_entanglement": (
        sl.value_entanglement,
        lambda w: dict(model=w["model"]),
        {"model": "model", "prompts": "object", "settings": "object"},
    ),
    "ValuesSettings": (
        VA.ValuesSettings,
        lambda w: {},
        {"n_boot": "int", "position": "text", "seed": "int", "helpfulness": "bool"},
    ),
    "token_roles": (
        sl.core.token_roles,
        lambda w: dict(model=w["model"], text="hi"),
        {"model": "model", "text": "text"},
    ),
    "run_report": (report.run_report, lambda w: {}, {"settings": "object"}),
    "write_report": (report.write_report, lambda w: {}, {"settings": "object"}),
    "load": (
        sl.vllm.load,
        lambda w: dict(model=None),
        {"model": "object"},
    ),
    "load_model": (
        sl.load_model,
        lambda w: dict(model=w["model"]),
        {"dtype": "object", "compatibility_mode": "bool"},
    ),
}
PAIRS = [(name, arg) for name, (_, _, kinds) in CASES.items() for arg in kinds]


#: public functions that take no argument to get wrong
NO_ARGUMENTS = {"gemma_gguf_path"}


def public_modules() -> list:
    """``steerlens`` and every subpackage with an ``__all__``, found rather than listed, so a
    new subpackage's functions are covered (or this test says which are not)."""
    found = [sl]
    for info in pkgutil.iter_modules(sl.__path__, "steerlens."):
        module = importlib.import_module(info.name)
        if info.ispkg and hasattr(module, "__all__"):
            found.append(module)
    return found


def test_every_public_function_is_covered():
    """Each function in a public ``__all__`` is a case here (classes are covered by their
    constructors' cases where they validate input)."""
    modules = public_modules()
    assert {m.__name__ for m in modules} >= {f"steerlens.{n}" for n in ("core", "values", "report")}
    covered = {name.split(".")[0] for name in CASES}
    functions = {
        f"{module.__name__}.{name}"
        for module in modules
        for name in module.__all__
        if callable(getattr(module, name))
        and not isinstance(getattr(module, name), type)
        and getattr(getattr(module, name), "__module__", "").startswith("steerlens")
        and name not in covered | NO_ARGUMENTS | {"steer"}
    }
    assert not functions, f"no bad-input case for {sorted(functions)}"


@pytest.mark.parametrize(("name", "arg"), PAIRS, ids=[f"{n}-{a}" for n, a in PAIRS])
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bad_argument_is_a_clear_error_before_compute(world, name, arg, data):
    function, valid, kinds = CASES[name]
    kwargs = valid(world)
    kwargs[arg] = data.draw(BAD[kinds[arg]], label=arg)
    world["forwards"][0] = 0
    with pytest.raises(sl.SteerlensError) as raised:
        function(**kwargs)
    assert arg.split("_")[0] in str(raised.value) or kinds[arg] in ("object", "mapping")
    assert world["forwards"][0] == 0, f"{name}({arg}=...) ran the model before refusing"
