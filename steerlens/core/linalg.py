"""Unit vectors: the one place a direction is normalized (zero directions refused)."""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import SteerlensError


def unit(x: Tensor, what: str = "vector", *, allow_zero: bool = False) -> Tensor:
    """``x / |x|`` along the last axis.

    A zero row has no direction: it raises (naming ``what``) unless ``allow_zero``, which
    leaves it zero.
    """
    norms = x.norm(dim=-1, keepdim=True)
    zero = norms == 0
    if bool(zero.any()):
        if not allow_zero:
            raise SteerlensError(f"{what}: is zero, and a zero vector has no direction")
        norms = torch.where(zero, torch.ones_like(norms), norms)
    return x / norms
