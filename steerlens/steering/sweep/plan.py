"""``SweepPlan``: what a sweep runs (every prompt under every variant) and how it is read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor

from ...core.errors import SteerlensError
from ...core.validate import check_bool, check_int, check_text, shown
from ..interventions import Intervention

#: one run of every prompt: an intervention, or ``None`` for the unsteered model
Variant = Intervention | None


def keep_final(final: Float[Tensor, "rows d_model"]) -> Float[Tensor, "rows d_model"]:
    """The default readout: each row's final normalized residual, float32 on the CPU."""
    return final.float().cpu()


@dataclass(frozen=True, eq=False)
class SweepPlan:
    """Every prompt under every variant; kept: ``readout`` of the final normalized residual
    (``ln_final``'s output) at each prompt's last token.

    Attributes:
        variants: one intervention per run (``None``: the unsteered model, whose rows the
            suffix replay takes from its prefix pass at no cost).
        batch_size: prompts per prefix pass (suffix replay).
        max_rows: the most rows (prompts x variants) in one pass; each pass runs at least
            one variant (``1``: one variant per pass).
        share_opening: run the tokens every prompt opens with once per variant through the
            KV cache (``shared_opening``): ``None`` when that saves enough, ``False`` never,
            ``True`` whenever possible (else a ``SteerlensError`` says why not).
        progress: show a progress bar (``None``: when there is more than one pass).
        desc: the progress bar's label.
        readout: ``[rows, d_model] -> [rows, ...]``, applied to each pass's final residuals
            at the last token (default ``keep_final``).
    """

    variants: tuple[Variant, ...]
    batch_size: int = 16
    max_rows: int = 64
    share_opening: bool | None = None
    progress: bool | None = None
    desc: str = "sweep"
    readout: Callable[[Tensor], Tensor] = keep_final

    def __post_init__(self) -> None:
        variants = tuple(self.variants) if isinstance(self.variants, Sequence) else ()
        if not variants:
            raise SteerlensError(
                f"variants: expected a non-empty list of interventions (None: unsteered), got "
                f"{shown(self.variants)}"
            )
        bad = [v for v in variants if v is not None and not isinstance(v, Intervention)]
        if bad:
            raise SteerlensError(f"variants: expected interventions, got {shown(bad[0])}")
        object.__setattr__(self, "variants", variants)
        check_int("batch_size", self.batch_size, low=1)
        check_int("max_rows", self.max_rows, low=1)
        check_bool("share_opening", self.share_opening, none=True)
        check_bool("progress", self.progress, none=True)
        check_text("desc", self.desc)

    @property
    def steered(self) -> list[Intervention]:
        """The interventions, in order (``None`` variants left out)."""
        return [v for v in self.variants if v is not None]

    @property
    def first_layer(self) -> int | None:
        """The lowest layer any variant edits: blocks below it run once per prompt (``None``:
        no variant edits anything)."""
        return min((min(v.layers) for v in self.steered), default=None)

    def hook_points(self) -> list[tuple[int, str]]:
        """Every (layer, site) some variant edits, in layer order."""
        return sorted({(layer, v.site) for v in self.steered for layer in v.layers})


@dataclass(frozen=True, eq=False)
class SweepOutput:
    """A sweep's readouts: ``steered[k]`` under ``variants[k]``, ``base`` unsteered, each
    ``[n_prompts, ...]`` in the order the prompts were given."""

    steered: Tensor
    base: Tensor
