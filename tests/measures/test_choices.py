"""Multiple-choice tasks, the shipped qa set and helpfulness (unit tests on the tiny model)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import steerlens as sl
from steerlens import SteerlensError
from steerlens.measures.choices import _validate
from steerlens.measures.qa_formats import FORMATS, SHOTS

BAD_SHAPE = (SteerlensError, TypeCheckError)  # the test run's beartype sees shapes first


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["q1", "q2", "q3"],
            "question": ["What colour is snow?", "Which animal barks?", "What is two plus two?"],
            "choices": [
                ["red", "white", "green", "blue"],
                ["cat", "cow", "dog", "fish"],
                ["four", "five", "three", "six"],
            ],
            "answer": [1, 2, 0],
            "topic": ["everyday", "animals", "arithmetic"],
        }
    )


def _first_token(tokenizer, text: str) -> int:
    return tokenizer(text, add_special_tokens=False)["input_ids"][0]


# --- the shipped set --------------------------------------------------------------------------
def test_shipped_qa_set():
    assert "qa" in sl.datasets.names()
    frame = sl.datasets.load("qa")
    assert set(frame.columns) == {"id", "question", "choices", "answer", "topic"}
    assert len(frame) >= 150
    assert frame["id"].is_unique and frame["question"].is_unique
    assert frame["question"].str.len().gt(10).all()
    assert all(len(c) == 4 and len(set(c)) == 4 for c in frame["choices"])
    assert frame["answer"].between(0, 3).all()
    # the right answer's position is balanced, so a position bias cannot score well
    share = frame["answer"].value_counts(normalize=True)
    assert len(share) == 4 and share.between(0.2, 0.3).all()
    assert frame["topic"].nunique() >= 5


@pytest.mark.parametrize("prompt_format", sorted(FORMATS))
def test_every_format_has_distinct_first_tokens_on_the_shipped_set(tiny_model, prompt_format):
    task = sl.measures.qa_task(tiny_model, prompt_format=prompt_format)  # raises if not distinct
    frame = sl.datasets.load("qa")
    assert len(task) == len(frame) and task.n_choices == 4
    assert task.ids == list(frame["id"]) and torch.equal(task.correct, torch.tensor(frame.answer))
    assert all(p.endswith(("<|im_start|>assistant\n", "Answer:")) for p in task.prompts)


def test_fewshot_examples_are_not_in_the_shipped_set():
    questions = set(sl.datasets.load("qa")["question"])
    assert not questions & {question for question, _ in SHOTS}


# --- ChoiceTask -------------------------------------------------------------------------------
def test_hand_built_task_and_hand_softmax():
    task = sl.measures.ChoiceTask(
        prompts=["a", "b"],
        choice_ids=torch.tensor([[5, 7, 9], [1, 2, 3]]),
        correct=torch.tensor([2, 0]),
    )
    assert len(task) == 2 and task.n_choices == 3 and task.ids == ["0", "1"]
    logits = torch.randn(2, 12, generator=torch.Generator().manual_seed(0))
    expected = np.empty((2, 3))
    for row, ids in enumerate([[5, 7, 9], [1, 2, 3]]):
        values = np.exp(logits[row, ids].double().numpy())
        expected[row] = values / values.sum()
    np.testing.assert_allclose(task.probabilities(logits).numpy(), expected, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    shift=st.floats(-50, 50),
    n=st.integers(1, 5),
    k=st.integers(2, 6),
)
def test_probabilities_properties(seed, shift, n, k):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(30, generator=generator)[:k] for _ in range(n)])
    task = sl.measures.ChoiceTask(["x"] * n, ids, torch.zeros(n, dtype=torch.long))
    logits = 3 * torch.randn(n, 30, generator=generator)
    probs = task.probabilities(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(n))
    # a logit shared by every token (a softmax's invariance) changes nothing
    torch.testing.assert_close(task.probabilities(logits + shift), probs, atol=1e-5, rtol=1e-4)
    # logits of tokens that are not candidates do not matter
    other = logits.clone()
    free = torch.ones_like(other, dtype=torch.bool).scatter(1, ids, False)
    other[free] = torch.randn(int(free.sum()), generator=generator)
    torch.testing.assert_close(task.probabilities(other), probs)


def test_choice_task_errors():
    ids, correct = torch.tensor([[1, 2, 3, 4]]), torch.tensor([0])
    with pytest.raises(SteerlensError, match="at least one text"):
        sl.measures.ChoiceTask(
            [], torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        )
    with pytest.raises(SteerlensError, match="repeats a token id"):
        sl.measures.ChoiceTask(["a"], torch.tensor([[1, 2, 2, 4]]), correct)
    with pytest.raises(SteerlensError, match=r"index in 0\.\.3"):
        sl.measures.ChoiceTask(["a"], ids, torch.tensor([4]))
    with pytest.raises(SteerlensError, match=r"index in 0\.\.3"):
        sl.measures.ChoiceTask(["a"], ids, torch.tensor([-1]))
    with pytest.raises(SteerlensError, match="at least 2 candidates"):
        sl.measures.ChoiceTask(["a"], torch.tensor([[1]]), correct)
    with pytest.raises(SteerlensError, match="distinct question ids"):
        sl.measures.ChoiceTask(["a", "b"], ids.repeat(2, 1), correct.repeat(2), ids=["q", "q"])
    with pytest.raises(SteerlensError, match="expected 1 entries"):
        sl.measures.ChoiceTask(["a"], ids, correct, topics=["x", "y"])
    with pytest.raises(BAD_SHAPE, match="rows|n"):
        sl.measures.ChoiceTask(["a", "b"], ids, correct)
    with pytest.raises(BAD_SHAPE):
        sl.measures.ChoiceTask(["a"], ids.float(), correct)
    task = sl.measures.ChoiceTask(["a"], ids, correct)
    with pytest.raises(BAD_SHAPE, match="rows|n"):
        task.probabilities(torch.zeros(2, 10))
    with pytest.raises(SteerlensError, match="too small"):
        task.probabilities(torch.zeros(1, 3))
    with pytest.raises(SteerlensError, match="NaN"):
        task.probabilities(torch.full((1, 10), float("nan")))


def test_validate_names_the_argument():
    """The checks behind ``__post_init__``, without the test run's shape checker in front."""
    ids, correct = torch.tensor([[1, 2, 3, 4]]), torch.tensor([0])
    with pytest.raises(SteerlensError, match=r"choice_ids, correct: expected 2 rows"):
        _validate(["a", "b"], ids, correct)
    with pytest.raises(SteerlensError, match="integer token ids"):
        _validate(["a"], ids.float(), correct)
    with pytest.raises(SteerlensError, match=r"expected a \[n\] tensor"):
        _validate(["a"], ids, [0])
    with pytest.raises(SteerlensError, match="single string"):
        _validate("a", ids, correct)


# --- qa_task ----------------------------------------------------------------------------------
def test_qa_task_from_a_frame(tiny_model, tokenizer):
    task = sl.measures.qa_task(tiny_model, _frame())  # default: few-shot, "Answer:" then " word"
    assert task.ids == ["q1", "q2", "q3"] and task.topics == ["everyday", "animals", "arithmetic"]
    assert task.correct.tolist() == [1, 2, 0]
    assert task.prompts[0].endswith(
        sl.format_chat(tiny_model, "What colour is snow?").split("<|im_end|>\n", 1)[1] + "Answer:"
    )
    assert task.prompts[0].count("Answer: ") == len(SHOTS)
    expected = [[_first_token(tokenizer, " " + w) for w in row] for row in _frame().choices]
    assert task.choice_ids.tolist() == expected
    words = sl.measures.qa_task(tiny_model, _frame(), prompt_format="words")
    assert words.prompts[0] == sl.format_chat(
        tiny_model, "What colour is snow?\nOptions: red, white, green, blue.\nAnswer with one word."
    )
    capitalized = [[_first_token(tokenizer, w.capitalize()) for w in r] for r in _frame().choices]
    assert words.choice_ids.tolist() == capitalized
    letters = sl.measures.qa_task(tiny_model, _frame(), prompt_format="letters")
    assert letters.choice_ids.tolist() == [[_first_token(tokenizer, x) for x in "ABCD"]] * 3
    assert "\nB. white\n" in letters.prompts[0]


def test_qa_task_n_spreads_over_topics(tiny_model):
    task = sl.measures.qa_task(tiny_model, n=20)
    frame = sl.datasets.load("qa")
    assert len(task) == 20 and task.ids[0] == frame["id"].iloc[0]
    assert task.ids[-1] == frame["id"].iloc[-1]
    assert set(task.topics) == set(frame["topic"])


def test_qa_task_custom_format(tiny_model, tokenizer):
    def cloze_answer(model, question, choices):
        return question + " Answer:", [" " + c for c in choices]

    task = sl.measures.qa_task(tiny_model, _frame(), prompt_format=cloze_answer)
    assert task.prompts[1] == "Which animal barks? Answer:"
    expected = [_first_token(tokenizer, " " + word) for word in _frame().choices[1]]
    assert task.choice_ids[1].tolist() == expected


def test_qa_task_errors(tiny_model):
    with pytest.raises(SteerlensError, match="neither a shipped dataset"):
        sl.measures.qa_task(tiny_model, "no-such-set")
    with pytest.raises(SteerlensError, match="prompt_format: expected one of"):
        sl.measures.qa_task(tiny_model, prompt_format="roman")
    with pytest.raises(SteerlensError, match=r"n: expected an int in 1\.\.3"):
        sl.measures.qa_task(tiny_model, _frame(), n=4)
    with pytest.raises(SteerlensError, match="missing"):
        sl.measures.qa_task(tiny_model, _frame().drop(columns="answer"))
    same_start = _frame()
    same_start.at[0, "choices"] = ["red", "white", "blue", "blue-green"]
    with pytest.raises(SteerlensError, match="not distinct"):
        sl.measures.qa_task(tiny_model, same_start)
    ragged = _frame()
    ragged.at[0, "choices"] = ["red", "white", "green"]
    with pytest.raises(SteerlensError, match="same number of options"):
        sl.measures.qa_task(tiny_model, ragged)
    out_of_range = _frame()
    out_of_range.at[2, "answer"] = 4
    with pytest.raises(SteerlensError, match="row 2 has 4"):
        sl.measures.qa_task(tiny_model, out_of_range)
    with pytest.raises(SteerlensError, match="no rows"):
        sl.measures.qa_task(tiny_model, _frame().iloc[:0])
    with pytest.raises(SteerlensError, match="one answer string per option"):
        sl.measures.qa_task(tiny_model, _frame(), prompt_format=lambda model, q, c: (q, c[:2]))


# --- helpfulness ------------------------------------------------------------------------------
def _reference_probabilities(model, task):
    """Plain PyTorch on the HF model, one unpadded prompt at a time."""
    tokenizer, hf = model.tokenizer, model.original_model
    rows = []
    for prompt, ids in zip(task.prompts, task.choice_ids, strict=True):
        tokens = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        if tokens[0, 0] != tokenizer.bos_token_id:
            tokens = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), tokens], dim=1)
        with torch.no_grad():
            logits = hf(tokens).logits[0, -1].double()
        rows.append(torch.softmax(logits[ids], -1))
    return torch.stack(rows)


def test_helpfulness_matches_an_independent_computation(tiny_model):
    task = sl.measures.qa_task(tiny_model, _frame())
    result = sl.measures.helpfulness(tiny_model, task, batch_size=2)  # mixed lengths, left padding
    expected = _reference_probabilities(tiny_model, task)
    torch.testing.assert_close(result.probabilities.double(), expected, atol=1e-5, rtol=1e-4)
    table = result.table
    assert list(table["id"]) == task.ids
    p_correct = expected[torch.arange(3), task.correct]
    np.testing.assert_allclose(table["p_correct"], p_correct, atol=1e-5)
    assert (table["predicted"] == expected.argmax(-1).numpy()).all()
    assert result.accuracy == pytest.approx(table["is_correct"].mean())
    assert result.p_correct == pytest.approx(float(p_correct.mean()))
    assert ((table["choice_mass"] > 0) & (table["choice_mass"] <= 1)).all()
    assert result.chance == 0.25


def test_helpfulness_result_outputs(tiny_model):
    result = sl.measures.helpfulness(tiny_model, _frame())  # a frame goes through qa_task
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["n"] == 3 and data["accuracy"] == result.accuracy
    assert set(data["by_topic"]) == {"everyday", "animals", "arithmetic"}
    assert [q["id"] for q in data["questions"]] == ["q1", "q2", "q3"]
    assert isinstance(result.figure(), go.Figure)
    assert "accuracy=" in repr(result)
    by_topic = result.by_topic
    assert by_topic["n"].sum() == 3


def test_helpfulness_errors(tiny_model):
    with pytest.raises(SteerlensError, match="expected a dataset name"):
        sl.measures.helpfulness(tiny_model, 42)
    with pytest.raises(SteerlensError, match="batch_size"):
        sl.measures.helpfulness(tiny_model, _frame(), batch_size=0)


# --- the default model (integration) ------------------------------------------------------
@pytest.fixture(scope="module")
def default_helpfulness(default_model):
    return sl.measures.helpfulness(default_model)


@pytest.mark.slow
def test_default_model_answers_the_shipped_set_well_above_chance(default_helpfulness):
    assert len(default_helpfulness.table) == len(sl.datasets.load("qa"))
    assert default_helpfulness.accuracy > 0.5 and default_helpfulness.p_correct > 0.4


@pytest.mark.slow
def test_default_model_p_correct_matches_the_hf_model(default_model):
    task = sl.measures.qa_task(default_model, n=4)
    result = sl.measures.helpfulness(default_model, task)
    expected = _reference_probabilities(default_model, task)
    torch.testing.assert_close(result.probabilities.double(), expected, atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_a_large_random_vector_pulls_p_correct_to_chance(default_model, default_helpfulness):
    task = sl.measures.qa_task(default_model, n=40)
    base = default_helpfulness.table.set_index("id").loc[task.ids, "p_correct"].mean()
    layer = 10
    scale = sl.collect_activations(default_model, task.prompts[:8], layer).norm(dim=-1).mean()
    direction = torch.randn(default_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    vector = sl.SteeringVector({layer: direction / direction.norm()})
    with sl.steer(default_model, sl.add(vector, coeff=float(20 * scale))):
        steered = sl.measures.helpfulness(default_model, task)
    assert steered.p_correct < base - 0.1
    assert abs(steered.p_correct - 0.25) < abs(base - 0.25) / 2
