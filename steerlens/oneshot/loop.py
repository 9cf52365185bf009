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
    vector = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([vector], lr=settings.lr, betas=(0.9, 0.999))
    losses: list[float] = []
    norms: list[float] = []
    bar = tqdm(total=settings.max_iters, desc=desc, disable=settings.progress is False, leave=False)
    try:
        for step in range(settings.max_iters + 1):
            loss = loss_fn(vector)
            value = float(loss.detach())
            norm = float(vector.detach().double().norm())
            if not math.isfinite(value):
                last = f"{losses[-1]:.6g}" if losses else "none"
                raise SteerlensError(
                    f"loss: became {value} at step {step} (|v| = {norm:.4g}, last finite loss "
                    f"{last}); the optimization stopped. Lower lr or starting_norm, or set "
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
                    f"|v| = {norm:.4g}); the optimization stopped. Lower lr or set max_norm."
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
