"""The options of one-shot optimization, shared by ``optimize_one_shot``, ``reentrant`` and
``optimize_batch``: one frozen, validated dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..core.positions import PositionRule, position_rule
from ..core.validate import (
    check_bool,
    check_instance,
    check_int,
    check_keywords,
    check_number,
    check_text,
)


@dataclass(frozen=True)
class OneShotSettings:
    """How a one-shot vector is optimized (Dunefsky & Cohan's reference settings differ per
    study; see the docs' one-shot method page).

    Attributes:
        lr: Adam learning rate (betas 0.9, 0.999).
        max_iters: the most optimizer steps (0: only evaluate the initial vector).
        max_norm: after each step, rescale ``v`` to this norm if it is longer (None: no cap).
        target_loss: stop once the loss is below this (None: never).
        tolerance: stop once the loss changes by less than this between steps (None: never).
        starting_norm: norm of the random initial vector.
        coldness: the logits are multiplied by this before the softmax (paper: 0.7);
            ``reentrant`` compares distributions at temperature 1 and takes no coldness.
        positions: where ``v`` is added during optimization: ``"all"``, ``"prompt"``,
            ``"generated"`` (the completion's tokens), or indices, as for ``sl.add``.
        seed: seed of the random initial direction.
        cached: run blocks before the layer once (True) or the full model every step
            (False, the naive reference; same losses, slower).
        progress: show a progress bar (default: yes).
    """

    lr: float = 0.1
    max_iters: int = 50
    max_norm: float | None = None
    target_loss: float | None = None
    tolerance: float | None = 1e-6
    starting_norm: float = 1.0
    coldness: float = 0.7
    positions: Any = "all"
    seed: int = 0
    cached: bool = True
    progress: bool | None = None

    def __post_init__(self) -> None:
        check_number("lr", self.lr, low=0.0, open_low=True)
        check_int("max_iters", self.max_iters, low=0)
        check_number("max_norm", self.max_norm, low=0.0, open_low=True, none=True)
        check_number("target_loss", self.target_loss, none=True)
        check_number("tolerance", self.tolerance, low=0.0, none=True)
        check_number("starting_norm", self.starting_norm, low=0.0, open_low=True)
        check_number("coldness", self.coldness, low=0.0, open_low=True)
        object.__setattr__(self, "positions", position_rule(self.positions))
        check_int("seed", self.seed, low=0)
        check_bool("cached", self.cached)
        if self.progress is not None:
            check_bool("progress", self.progress)

    @property
    def rule(self) -> PositionRule:
        return self.positions

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings (the position rule as written)."""
        out = asdict(self)
        out["positions"] = self.rule.label()
        return out


def resolve(
    settings: Any, options: Mapping[str, Any], exclude: tuple[str, ...] = ()
) -> OneShotSettings:
    """``settings`` (default ``OneShotSettings()``) with keyword ``options`` replacing fields;
    a misspelt option, or one in ``exclude``, is refused."""
    base = OneShotSettings() if settings is None else settings
    check_instance("settings", base, OneShotSettings, "a OneShotSettings")
    valid = [f.name for f in fields(OneShotSettings) if f.name not in exclude]
    check_keywords("options", options, valid)
    return replace(base, **options) if options else base


@dataclass(frozen=True)
class StudySettings:
    """Sizes and optimizer settings of ``one_shot_refusal_study`` (``.quick()``: tests)."""

    n_train: int = 5
    n_held_out: int = 20
    n_harmful: int = 30
    n_pairs: int = 110
    max_iters: int = 40
    max_new_tokens: int = 16
    layer: int = 12
    target: str = "I'm sorry, but I can't"
    lr: float = 0.1
    target_loss: float | None = 0.5
    progress: bool | None = None

    def __post_init__(self) -> None:
        counts = ("n_train", "n_held_out", "n_pairs", "max_iters", "max_new_tokens")
        for name, low in (*((n, 1) for n in counts), ("n_harmful", 2), ("layer", 0)):
            check_int(name, getattr(self, name), low=low)
        check_text("target", self.target)
        check_number("lr", self.lr, low=0.0, open_low=True)
        check_number("target_loss", self.target_loss, none=True)
        if self.progress is not None:
            check_bool("progress", self.progress)

    @classmethod
    def quick(cls, **changes: Any) -> StudySettings:
        """Small sizes for tests and ``steerlens report --quick``."""
        small = cls(n_train=2, n_held_out=4, n_harmful=4, n_pairs=16, max_iters=8, max_new_tokens=8)
        return replace(small, **changes)
