"""Small choice tasks and behaviours whose curves move on a random model (tradeoff tests)."""

from __future__ import annotations

import torch

import steerlens as sl

QUESTIONS = [
    ("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1),
    ("How many legs does a spider have?", ["Six", "Four", "Eight", "Ten"], 2),
    ("Which planet is known as the Red Planet?", ["Mars", "Venus", "Jupiter", "Saturn"], 0),
    ("What do bees make?", ["Milk", "Silk", "Wax", "Honey"], 3),
    ("Which animal is the largest mammal?", ["Elephant", "Giraffe", "Whale", "Horse"], 2),
    ("What colour is grass?", ["Green", "Blue", "Red", "Purple"], 0),
    ("How many days are in a week?", ["Five", "Six", "Ten", "Seven"], 3),
    ("What is frozen water called?", ["Steam", "Ice", "Mist", "Sand"], 1),
    ("Which ocean is the largest?", ["Atlantic", "Indian", "Pacific", "Arctic"], 2),
    ("Who wrote Romeo and Juliet?", ["Dickens", "Shakespeare", "Tolstoy", "Austen"], 1),
    ("What is the capital of Japan?", ["Seoul", "Beijing", "Tokyo", "Bangkok"], 2),
    ("Which organ pumps blood through the body?", ["Heart", "Lung", "Liver", "Kidney"], 0),
]


def make_task(model, n: int | None = None) -> sl.measures.ChoiceTask:
    """Questions with their choices listed; the answer is the first token of the word."""
    rows = QUESTIONS[:n]
    tokenizer = model.tokenizer
    prompts, ids = [], []
    for question, choices, _ in rows:
        body = f"{question} Choose one: {', '.join(choices)}."
        prompts.append(sl.format_chat(model, body) + "The answer is")
        ids.append([tokenizer(" " + c, add_special_tokens=False)["input_ids"][0] for c in choices])
    return sl.measures.ChoiceTask(prompts, torch.tensor(ids), torch.tensor([c for *_, c in rows]))


def synthetic_setup(model, vector, prompts, reach: float):
    """A behaviour and a task whose curves move on a random model (for plumbing tests).

    Aligned tokens are those whose logit a pilot sweep at ``+reach`` raises most, misaligned
    those it lowers most; each question's correct choice is the unsteered top token, the
    other three choices the least likely tokens, so steering can only lower ``P(correct)``.
    """
    pilot = sl.tradeoff.sweep(model, vector, [reach], prompts)
    change = (pilot.logits(0) - pilot.base_logits()).mean(0)
    aligned = change.topk(3).indices.tolist()
    misaligned = (-change).topk(3).indices.tolist()
    spec = sl.tradeoff.BehaviourSpec(
        tuple(prompts), tuple(aligned), tuple(misaligned), name="synthetic"
    )
    base = pilot.base_logits()
    top, bottom = base.argmax(-1), base.argsort(-1)[:, :3]
    choice_ids = torch.cat([top[:, None], bottom], dim=1)
    task = sl.measures.ChoiceTask(
        list(prompts), choice_ids, torch.zeros(len(prompts), dtype=torch.long)
    )
    return spec, task


PROMPTS = [
    "The cat sat on the mat.",
    "Tell me a story about a dragon.",
    "Numbers: 1, 2, 3",
    "Hello there",
    "What is love?",
    "A B C D",
]
COEFFS = torch.linspace(-1, 1, 9)


def synthetic_vector(model) -> sl.SteeringVector:
    """A random direction at layer 1 (seeded)."""
    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    return sl.SteeringVector({1: v})


def synthetic_report(model) -> sl.tradeoff.TradeoffReport:
    """``tradeoff_report`` of ``synthetic_vector`` over ``COEFFS`` on the synthetic setup."""
    vector = synthetic_vector(model)
    spec, task = synthetic_setup(model, vector, PROMPTS, 1.0)
    settings = sl.tradeoff.TradeoffSettings.quick(floor=0.0, n_boot=20)
    return sl.tradeoff_report(model, vector, spec, task, coeffs=COEFFS, settings=settings)
