"""Report stage: one-shot promotion vectors from single prompts, their transfer and cosines,
and the suppression and mixed vectors."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..oneshot.study import OneShotStudy, one_shot_refusal_study
from .html import Section
from .settings import ReportContext


def one_shot_sections(study: OneShotStudy) -> list[Section]:
    """The one-shot study as a page section (text from the measured numbers)."""
    s = study.summary
    text = (
        f"One promotion vector per training prompt at layer {study.settings['layer']}; "
        f"held-out refusal rate by addition: best {s['best_refusal_add']:.2f}, median "
        f"{s['median_refusal_add']:.2f}; by clamp: best {s['best_refusal_clamp']:.2f}, "
        f"median {s['median_refusal_clamp']:.2f} (unsteered {s['baseline_refusal']:.2f}); "
        f"median pairwise cosine {s['median_pairwise_cosine']:.3f}; run took "
        f"{study.seconds:.0f} s."
    )
    extra = pd.DataFrame(
        [{k: v for k, v in s.items() if k.startswith(("suppression", "mixed"))}]
    ).T.rename(columns={0: "value"})
    return [
        Section(
            "One-shot optimized refusal vectors",
            [text],
            [study.table.drop(columns="prompt"), study.cosines.round(3), extra],
            study.figures(),
        )
    ]


def one_shot_stage(context: ReportContext) -> tuple[dict[str, Any], list[Section]]:
    """``one_shot_refusal_study`` with the report's (or the quick) sizes."""
    study = one_shot_refusal_study(context.model, context.settings.one_shot)
    return study.to_dict(), one_shot_sections(study)
