"""Non-finite outputs under steering are never silent: one check per forward pass.

``sl.steer`` adds a forward hook on the model itself (not a TransformerLens hook point, so
the steering hooks stay what ``model.list_hooks()`` shows); after each forward pass it checks
the output (logits, or the residual where a pass stops early) with one sum over the
tensor (one host sync per pass, none per hook). ``"raise"`` (the default) stops with
a ``SteerlensError``; ``"warn"`` gives one ``SteeringNonFiniteWarning`` per ``with`` block
and lets the pass return.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from ..core.errors import SteerlensError
from ..core.validate import check_choice

ON_NONFINITE = ("raise", "warn")


class SteeringNonFiniteWarning(RuntimeWarning):
    """A forward pass under ``sl.steer(..., on_nonfinite="warn")`` gave NaN or inf."""


def _output_tensor(output: Any) -> Tensor | None:
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return output[0]
    return None


def is_finite(tensor: Tensor) -> bool:
    """Every value finite. A sum is NaN/inf when any value is, and much cheaper than
    ``isfinite(...).all()`` on CPU (docs/results.md); the full check runs only when the sum is
    not finite (it can overflow for finite values beyond ~1e38 / size)."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def nonfinite_message(described: str) -> str:
    return (
        f"steer: the model's output became NaN or inf under {described}; a "
        "coefficient or clamp value is probably too large for the model's dtype (float32 "
        "overflows above about 3e38, bfloat16 and float16 far sooner). Use a smaller "
        "coefficient, or "
        "sl.steer(..., on_nonfinite='warn') to keep going"
    )


class NonFiniteWatch:
    """The model's forward hook: checks each pass's output once."""

    def __init__(self, on_nonfinite: str, described: str) -> None:
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, ON_NONFINITE)
        self.described = described
        self.warned = False

    def after_forward(self, _module: Any, _args: Any, output: Any) -> None:
        tensor = _output_tensor(output)
        if tensor is None or not tensor.is_floating_point() or is_finite(tensor):
            return
        if self.on_nonfinite == "raise":
            raise SteerlensError(nonfinite_message(self.described))
        if not self.warned:
            self.warned = True
            warnings.warn(nonfinite_message(self.described), SteeringNonFiniteWarning, stacklevel=2)


@contextmanager
def watching(model: Any, watch: NonFiniteWatch) -> Iterator[None]:
    """Run ``watch.after_forward`` after every forward pass of ``model`` in the block."""
    handle = model.register_forward_hook(watch.after_forward)
    try:
        yield
    finally:
        handle.remove()
