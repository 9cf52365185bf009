"""The settings of ``value_entanglement``: one frozen, validated dataclass with presets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.hookpoints import layer_list
from ..core.validate import check_bool, check_choice, check_int
from .stimuli import check_dimensions

POSITIONS = ("mean", "last")


@dataclass(frozen=True)
class ValuesSettings:
    """How ``value_entanglement`` reads, rates, ablates and resamples.

    Attributes:
        dimensions: target dimensions: ``"grammar"`` and/or ``"economic"``.
        layers: layers to analyse (``"all"``: every ``resid_pre``; 0 is the embedding).
        ablate_layers: ``"auto"`` (every analysed layer from the first where the moral
            direction predicts held-out moral labels with AUROC >= 0.75), ``"all"``, or
            layer indices.
        position: how an item's residual is pooled: ``"mean"`` (without BOS) or ``"last"``.
        max_frames: at most this many frames per set (seeded subsample; None: all).
        helpfulness: measure helpfulness (shipped ``qa`` set) before and after each ablation.
        n_questions: QA questions for helpfulness (None: all).
        n_boot: bootstrap draws for the CIs.
        k_folds: folds (by frame) for the held-out projections.
        seed: seed of the subsample, folds and bootstrap.
        batch_size: texts per forward pass.
        progress: show progress bars.
    """

    dimensions: Sequence[str] = ("grammar", "economic")
    layers: Any = "all"
    ablate_layers: Any = "auto"
    position: str = "mean"
    max_frames: int | None = None
    helpfulness: bool = True
    n_questions: int | None = None
    n_boot: int = 2000
    k_folds: int = 4
    seed: int = 0
    batch_size: int = 16
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(check_dimensions(self.dimensions)))
        if not (isinstance(self.layers, str) and self.layers == "all"):
            object.__setattr__(self, "layers", tuple(layer_list(self.layers)))
        if isinstance(self.ablate_layers, str):
            check_choice("ablate_layers", self.ablate_layers, ("auto", "all"))
        else:
            layers = tuple(layer_list(self.ablate_layers, "ablate_layers"))
            object.__setattr__(self, "ablate_layers", layers)
        check_choice("position", self.position, POSITIONS)
        if self.max_frames is not None:
            check_int("max_frames", self.max_frames, low=2)
        check_bool("helpfulness", self.helpfulness)
        if self.n_questions is not None:
            check_int("n_questions", self.n_questions, low=1)
        check_int("n_boot", self.n_boot, low=100)
        check_int("k_folds", self.k_folds, low=2)
        check_int("seed", self.seed, low=0)
        check_int("batch_size", self.batch_size, low=1)
        check_bool("progress", self.progress)

    @classmethod
    def report(cls, **changes: Any) -> ValuesSettings:
        """The ``steerlens report`` run: a third of the frames, 60 QA questions."""
        return replace(cls(max_frames=16, n_questions=60), **changes)

    @classmethod
    def quick(cls, **changes: Any) -> ValuesSettings:
        """Tests and ``steerlens report --quick``: 4 frames per set, 8 layers of the default
        model, 2 folds, 12 questions, 500 bootstrap draws."""
        small = cls(
            max_frames=4,
            layers=(0, 4, 8, 12, 16, 20, 24, 29),
            k_folds=2,
            n_questions=12,
            n_boot=500,
        )
        return replace(small, **changes)
