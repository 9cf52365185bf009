"""The one-shot optimization loop: Adam on one vector, and its random start.

Shared by ``optimize_one_shot`` and ``reentrant``: each gives a loss function of the vector;
the loop records the loss and norm of every vector it visits and stops at ``max_iters``
steps, once the loss is below ``target_loss``, or once the loss changes by less than
``tolerance`` between steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..core.errors import SteerlensError
from ..core.vector import SteeringVector
from .settings import OneShotSettings


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
    settings: OneShotSettings,
    *,
    desc: str,
) -> tuple[Tensor, list[float], list[float], str]:
    """Adam (betas 0.9, 0.999) on one vector. Returns (vector, losses, norms, stop reason);
    ``losses[i]`` and ``norms[i]`` belong to the i-th vector visited, the last to the result.
    A non-finite loss or gradient stops with a ``SteerlensError`` (no NaN vector is returned).
    """

    def row_loss(vectors: Tensor, _active: Tensor) -> Tensor:
        return loss_fn(vectors[0])[None]

    (trajectory,) = adam_rows(row_loss, start[None], settings, desc=desc)
    return trajectory


def adam_rows(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    starts: Float[Tensor, "n_rows d_model"],
    settings: OneShotSettings,
    *,
    desc: str,
) -> list[tuple[Tensor, list[float], list[float], str]]:
    """Adam on independent rows at once, as if each were optimized alone by ``adam_loop``.

    ``loss_fn(vectors, active)`` gets the ``[k, d_model]`` vectors of the ``k`` rows still
    running (``active``: their indices, ascending) and returns their ``[k]`` losses; row
    ``i``'s loss may depend only on its own vector. Adam is elementwise, so one optimizer on
    the ``[n_rows, d_model]`` parameter is ``n_rows`` independent ones; a row that meets a
    stopping rule is frozen and leaves ``active``. Returns one ``adam_loop`` tuple per row.
    """
    n_rows = starts.shape[0]
    param = starts.detach().float().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([param], lr=settings.lr, betas=(0.9, 0.999))
    losses: list[list[float]] = [[] for _ in range(n_rows)]
    norms: list[list[float]] = [[] for _ in range(n_rows)]
    reasons: list[str | None] = [None] * n_rows
    bar = tqdm(total=settings.max_iters, desc=desc, disable=settings.progress is False, leave=False)
    try:
        for step in range(settings.max_iters + 1):
            active = torch.tensor([i for i in range(n_rows) if reasons[i] is None])
            loss = loss_fn(param[active], active)
            values = loss.detach().double().tolist()
            row_norms = param.detach()[active].double().norm(dim=-1).tolist()
            for i, value, norm in zip(active.tolist(), values, row_norms, strict=True):
                check_loss(value, step, norm, losses[i], label(n_rows, i))
                losses[i].append(value)
                norms[i].append(norm)
                reasons[i] = stop_reason(losses[i], step, settings)
            running = [i for i in range(n_rows) if reasons[i] is None]
            bar.set_postfix(loss=f"{min(values):.4g}", running=len(running))
            if not running:
                break
            adam_step(param, optimizer, loss, running, step, settings, n_rows)
            bar.update()
    finally:
        bar.close()
    final = param.detach()
    return [(final[i].clone(), losses[i], norms[i], str(reasons[i])) for i in range(n_rows)]


def label(n_rows: int, row: int) -> str:
    """How errors name a row: nothing for a single vector, else its prompt index."""
    return "" if n_rows == 1 else f"prompt {row}: "


def check_loss(value: float, step: int, norm: float, losses: list[float], where: str) -> None:
    """A ``SteerlensError`` if ``value`` is NaN or inf (no NaN vector is returned)."""
    if not math.isfinite(value):
        last = f"{losses[-1]:.6g}" if losses else "none"
        raise SteerlensError(
            f"{where}loss: became {value} at step {step} (|v| = {norm:.4g}, last finite loss "
            f"{last}); the optimization stopped. Lower lr or starting_norm, or set max_norm."
        )


def stop_reason(losses: list[float], step: int, settings: OneShotSettings) -> str | None:
    """Why a row stops after its latest loss (None: it goes on)."""
    value = losses[-1]
    if settings.target_loss is not None and value < settings.target_loss:
        return "target_loss"
    moved = abs(losses[-2] - value) if len(losses) > 1 else None
    if settings.tolerance is not None and moved is not None and moved < settings.tolerance:
        return "tolerance"
    return "max_iters" if step == settings.max_iters else None


def adam_step(
    param: Tensor,
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    running: list[int],
    step: int,
    settings: OneShotSettings,
    n_rows: int,
) -> None:
    """One Adam step on the ``running`` rows; every other row keeps its value."""
    (grad,) = torch.autograd.grad(loss.sum(), [param])
    keep = torch.ones(n_rows, dtype=torch.bool)
    keep[running] = False
    for i in running:
        if not bool(torch.isfinite(grad[i]).all()):
            raise SteerlensError(
                f"{label(n_rows, i)}loss: its gradient became NaN or inf at step {step}; the "
                "optimization stopped. Lower lr or set max_norm."
            )
    frozen = param.detach()[keep].clone()
    param.grad = grad
    optimizer.step()
    param.grad = None
    with torch.no_grad():
        param[keep] = frozen
        if settings.max_norm is not None:
            row_norms = param.norm(dim=-1, keepdim=True)
            param.mul_(torch.where(row_norms > settings.max_norm, settings.max_norm / row_norms, 1))
