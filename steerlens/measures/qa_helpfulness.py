"""Helpfulness h = P(correct answer | q) on a multiple-choice task, under any active steering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from jaxtyping import Float
from torch import Tensor

from ..steering.readout import next_token_logits
from .choices import ChoiceTask, qa_task


@dataclass(frozen=True, eq=False)
class Helpfulness:
    """Per-question answer probabilities of a ``ChoiceTask``.

    Attributes:
        table: one row per question: ``id``, ``topic``, ``correct`` (index), ``predicted``
            (argmax index), ``is_correct``, ``p_correct`` (probability of the right answer,
            normalized over the candidates), ``choice_mass`` (total next-token probability
            of the candidates in the full vocabulary: how much the model is answering at all),
            and ``p_0`` .. ``p_{k-1}`` (normalized probability of each candidate).
        probabilities: ``[n, n_choices]``, the normalized candidate probabilities.
    """

    table: pd.DataFrame
    probabilities: Float[Tensor, "n n_choices"]

    @property
    def p_correct(self) -> float:
        """Mean over questions of P(correct), normalized over the candidates (h)."""
        return float(self.table["p_correct"].mean())

    @property
    def accuracy(self) -> float:
        """Fraction of questions whose most probable candidate is the right one."""
        return float(self.table["is_correct"].mean())

    @property
    def chance(self) -> float:
        """``1 / n_choices``: the limit of h under very strong steering (Corollary 2)."""
        return 1.0 / self.probabilities.shape[1]

    @property
    def by_topic(self) -> pd.DataFrame:
        """Per topic: number of questions, accuracy, mean P(correct), mean choice mass."""
        grouped = self.table.groupby("topic", sort=True)
        return pd.DataFrame(
            {
                "n": grouped.size(),
                "accuracy": grouped["is_correct"].mean(),
                "p_correct": grouped["p_correct"].mean(),
                "choice_mass": grouped["choice_mass"].mean(),
            }
        )

    def __repr__(self) -> str:
        return (
            f"Helpfulness(n={len(self.table)}, accuracy={self.accuracy:.3f}, "
            f"p_correct={self.p_correct:.3f}, chance={self.chance:.3f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serializable: summary, per topic and per question."""
        per_topic = self.by_topic
        return {
            "n": len(self.table),
            "n_choices": int(self.probabilities.shape[1]),
            "accuracy": self.accuracy,
            "p_correct": self.p_correct,
            "chance": self.chance,
            "choice_mass": float(self.table["choice_mass"].mean()),
            "by_topic": {
                str(topic): {
                    "n": int(row["n"]),
                    "accuracy": float(row["accuracy"]),
                    "p_correct": float(row["p_correct"]),
                    "choice_mass": float(row["choice_mass"]),
                }
                for topic, row in per_topic.iterrows()
            },
            "questions": [
                {
                    "id": str(row["id"]),
                    "topic": str(row["topic"]),
                    "correct": int(row["correct"]),
                    "predicted": int(row["predicted"]),
                    "p_correct": float(row["p_correct"]),
                    "choice_mass": float(row["choice_mass"]),
                }
                for row in self.table.to_dict("records")
            ],
        }

    def figure(self) -> go.Figure:
        """Accuracy and mean P(correct) per topic, with the chance level."""
        per_topic = self.by_topic
        fig = go.Figure(
            [
                go.Bar(x=per_topic.index, y=per_topic["accuracy"], name="accuracy"),
                go.Bar(x=per_topic.index, y=per_topic["p_correct"], name="mean P(correct)"),
            ]
        )
        fig.add_hline(y=self.chance, line_dash="dot", annotation_text="chance")
        fig.update_layout(
            title=f"Helpfulness by topic (n={len(self.table)}, accuracy {self.accuracy:.2f})",
            yaxis_title="fraction",
            yaxis_range=[0, 1.02],
            barmode="group",
        )
        return fig


def helpfulness(
    model: Any,
    task: ChoiceTask | Any = None,
    *,
    batch_size: int = 16,
    progress: bool | None = None,
) -> Helpfulness:
    """Helpfulness h = P(correct | q) of the model on a multiple-choice task.

    The answer is read from the next-token distribution at the end of each prompt (one
    forward row per question) and normalized over the candidates, as Wolf et al. normalize
    over A-D. Inside ``with sl.steer(...)`` it measures the steered model.

    Args:
        model: a TransformerLens model.
        task: a ``ChoiceTask``; ``None`` builds the shipped set with ``qa_task(model)``; a
            dataset name, path or DataFrame is passed to ``qa_task``.
        batch_size: prompts per forward pass.
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        A ``Helpfulness`` (``.table``, ``.p_correct``, ``.accuracy``, ``.to_dict()``).

    Example:
        >>> task = sl.measures.qa_task(model, n=20)   # default: every shipped question
        >>> base = sl.measures.helpfulness(model, task)
        >>> with sl.steer(model, sl.add(vec, coeff=8.0)):
        ...     steered = sl.measures.helpfulness(model, task)
        >>> base.p_correct, steered.p_correct
    """
    if task is None:
        task = qa_task(model)
    elif not isinstance(task, ChoiceTask):
        task = qa_task(model, task)
    logits = next_token_logits(model, task.prompts, batch_size=batch_size, progress=progress)
    probabilities = task.probabilities(logits)
    mass = logits.softmax(-1).gather(1, task.choice_ids).sum(-1)
    rows = torch.arange(len(task))
    predicted = probabilities.argmax(-1)
    table = pd.DataFrame(
        {
            "id": task.ids,
            "topic": task.topics,
            "correct": task.correct.numpy(),
            "predicted": predicted.numpy(),
            "is_correct": (predicted == task.correct).numpy(),
            "p_correct": probabilities[rows, task.correct].numpy(),
            "choice_mass": mass.numpy(),
        }
    )
    for k in range(task.n_choices):
        table[f"p_{k}"] = probabilities[:, k].numpy()
    return Helpfulness(table=table, probabilities=probabilities)
