"""The one-shot optimisation loop (Adam on one vector) and its result.

Shared by ``optimize_one_shot`` and ``reentrant``: each gives a loss function of the vector;
the loop records the loss and norm of every vector it visits and stops at ``max_iters``
steps, once the loss is below ``target_loss``, or once the loss changes by less than
``tolerance`` between steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import torch
from jaxtyping import Float
from plotly.subplots import make_subplots
from torch import Tensor
from tqdm.auto import tqdm

from ._errors import SteerlensError
from ._vectors import SteeringVector

STOP_REASONS = ("max_iters", "target_loss", "tolerance")


def check_number(
    name: str, value: Any, *, low: float | None = None, strict: bool = True, none: bool = False
) -> float | None:
    """A finite real number (above ``low``: strictly unless ``strict=False``), or None."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        allowed = "a finite number" + (" or None" if none else "")
        raise SteerlensError(f"{name}: expected {allowed}, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        relation = ">" if strict else ">="
        raise SteerlensError(f"{name}: expected a number {relation} {low}, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SteerlensError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs (validated on construction)."""

    lr: float = 0.1
    max_iters: int = 50
    max_norm: float | None = None
    target_loss: float | None = None
    tolerance: float | None = 1e-6

    def __post_init__(self) -> None:
        check_number("lr", self.lr, low=0.0)
        check_int("max_iters", self.max_iters, 0)
        check_number("max_norm", self.max_norm, low=0.0, none=True)
        check_number("target_loss", self.target_loss, none=True)
        check_number("tolerance", self.tolerance, low=0.0, strict=False, none=True)


def initial_vector(
    d_model: int, starting_norm: float, seed: int, init: Any, layer: int
) -> Float[Tensor, " d_model"]:
    """``init`` if given (a ``[d_model]`` tensor or a vector with ``layer``), else
    ``starting_norm * g / |g|`` with ``g`` a Gaussian from ``seed``."""
    if init is None:
        g = torch.randn(d_model, generator=torch.Generator().manual_seed(seed))
        return starting_norm * g / g.norm()
    if isinstance(init, SteeringVector):
        init = init[layer]
    if not isinstance(init, Tensor) or init.shape != (d_model,) or not init.is_floating_point():
        shape = tuple(init.shape) if isinstance(init, Tensor) else type(init).__name__
        raise SteerlensError(
            f"init: expected a float tensor of shape ({d_model},) or a SteeringVector with "
            f"layer {layer}, got {shape}"
        )
    if not bool(torch.isfinite(init).all()):
        raise SteerlensError("init: contains NaN or inf")
    return init.detach().float().cpu().clone()


def adam_loop(
    loss_fn: Callable[[Tensor], Tensor],
    start: Float[Tensor, " d_model"],
    settings: LoopSettings,
    *,
    desc: str,
    progress: bool | None,
) -> tuple[Tensor, list[float], list[float], str]:
    """Adam (betas 0.9, 0.999) on one vector. Returns (vector, losses, norms, stop reason);
    ``losses[i]`` and ``norms[i]`` belong to the i-th vector visited, the last to the result.
    A non-finite loss or gradient stops with a ``SteerlensError`` (no NaN vector is returned).
    """
    vector = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([vector], lr=settings.lr, betas=(0.9, 0.999))
    losses: list[float] = []
    norms: list[float] = []
    bar = tqdm(total=settings.max_iters, desc=desc, disable=progress is False, leave=False)
    try:
        for step in range(settings.max_iters + 1):
            loss = loss_fn(vector)
            value = float(loss.detach())
            norm = float(vector.detach().double().norm())
            if not math.isfinite(value):
                last = f"{losses[-1]:.6g}" if losses else "none"
                raise SteerlensError(
                    f"loss: became {value} at step {step} (|v| = {norm:.4g}, last finite loss "
                    f"{last}); the optimisation stopped. Lower lr or starting_norm, or set "
                    "max_norm."
                )
            losses.append(value)
            norms.append(norm)
            bar.set_postfix(loss=f"{value:.4g}", norm=f"{norm:.3g}")
            if settings.target_loss is not None and value < settings.target_loss:
                reason = "target_loss"
                break
            if (
                settings.tolerance is not None
                and len(losses) > 1
                and abs(losses[-2] - value) < settings.tolerance
            ):
                reason = "tolerance"
                break
            if step == settings.max_iters:
                reason = "max_iters"
                break
            (grad,) = torch.autograd.grad(loss, [vector])
            if not bool(torch.isfinite(grad).all()):
                raise SteerlensError(
                    f"loss: its gradient became NaN or inf at step {step} (loss {value:.6g}, "
                    f"|v| = {norm:.4g}); the optimisation stopped. Lower lr or set max_norm."
                )
            vector.grad = grad
            optimizer.step()
            vector.grad = None
            with torch.no_grad():
                new_norm = vector.norm()
                if settings.max_norm is not None and float(new_norm) > settings.max_norm:
                    vector.mul_(settings.max_norm / new_norm)
            bar.update()
    finally:
        bar.close()
    return vector.detach().clone(), losses, norms, reason


@dataclass(frozen=True, eq=False)
class OneShotResult:
    """An optimised steering vector and how it was found.

    Attributes:
        vector: the ``SteeringVector`` (one layer; ``method`` says promotion, suppression,
            mixed or reentrant; ``params`` holds the settings).
        losses: the loss of every vector visited, from the initial one (index 0) to the
            returned one (last); natural log.
        norms: ``|v|`` of the same vectors.
        stop_reason: ``"max_iters"``, ``"target_loss"`` or ``"tolerance"``.
        settings: every setting used (JSON-serialisable).
        seconds: wall time, including the prefix pass.
    """

    vector: SteeringVector
    losses: list[float]
    norms: list[float]
    stop_reason: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise SteerlensError(f"stop_reason: expected one of {STOP_REASONS}")
        if not self.losses or len(self.losses) != len(self.norms):
            raise SteerlensError("losses, norms: expected equal, non-empty lists")

    @property
    def layer(self) -> int:
        return self.vector.layers[0]

    @property
    def steps(self) -> int:
        """Optimiser steps taken (one fewer than the vectors visited)."""
        return len(self.losses) - 1

    @property
    def final_loss(self) -> float:
        return self.losses[-1]

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-serialisable (the vector's components included)."""
        return {
            "method": self.vector.method,
            "layer": self.layer,
            "norm": self.norms[-1],
            "final_loss": self.final_loss,
            "steps": self.steps,
            "stop_reason": self.stop_reason,
            "losses": list(self.losses),
            "norms": list(self.norms),
            "seconds": self.seconds,
            "settings": dict(self.settings),
            "data_hash": self.vector.data_hash,
            "vector": self.vector[self.layer].tolist(),
        }

    def figure(self) -> go.Figure:
        """Loss (left axis) and ``|v|`` (right axis) per step."""
        steps = list(range(len(self.losses)))
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_trace(go.Scatter(x=steps, y=self.losses, name="loss", mode="lines+markers"))
        fig.add_trace(
            go.Scatter(x=steps, y=self.norms, name="|v|", mode="lines", line_dash="dot"),
            secondary_y=True,
        )
        target = self.settings.get("target_loss")
        if target is not None:
            fig.add_hline(y=target, line_dash="dash", line_color="grey", annotation_text="target")
        fig.update_layout(
            title=f"{self.vector.method} at layer {self.layer}: stopped by {self.stop_reason}",
            xaxis_title="step",
        )
        fig.update_yaxes(title_text="loss (sum over tokens, nats)", secondary_y=False)
        fig.update_yaxes(title_text="|v|", secondary_y=True)
        return fig


def timed(start: float) -> float:
    return round(time.perf_counter() - start, 3)
