"""One-shot optimized steering vectors (Dunefsky & Cohan): promotion, suppression, mixed and
reentrant steering, and the refusal study the report runs."""

from .batched import optimize_batch as optimize_batch
from .distil import reentrant as reentrant
from .optimize import optimize_one_shot as optimize_one_shot
from .result import OneShotResult as OneShotResult
from .settings import OneShotSettings as OneShotSettings
from .settings import StudySettings as StudySettings
from .study import one_shot_refusal_study as one_shot_refusal_study
from .study_result import OneShotStudy as OneShotStudy

__all__ = [
    "OneShotResult",
    "OneShotSettings",
    "OneShotStudy",
    "StudySettings",
    "one_shot_refusal_study",
    "optimize_batch",
    "optimize_one_shot",
    "reentrant",
]
